"""viz.TrainingMonitor: a Trainer callback that records and draws the curves of fit, shows them
through one display handle updated per epoch, and keeps a stable plain-text form (nbval)."""
import numpy as np
import pytest

import labgrad as lg
import viz
from labgrad import nn
from labgrad.data import datasets
from viz import monitor as monitor_module

PNG = b"\x89PNG\r\n\x1a\n"


def fit(monitor, epochs=3, validation=True, metrics=("accuracy",)):
    lg.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 2))
    trainer = nn.Trainer(model, lg.optim.Adam(model.parameters(), lr=0.05), metrics=list(metrics))
    train, test = datasets.two_moons("train"), datasets.two_moons("test")
    return trainer.fit(train, epochs=epochs, batch_size=64, seed=0, progress=False,
                       validation_data=test if validation else None, callbacks=[monitor])


class FakeHandle:
    def __init__(self, shown):
        self.shown = shown

    def update(self, obj):
        self.shown.append(("update", obj))


@pytest.fixture
def shown(monkeypatch):
    """What the monitor would show in a notebook: ("display" | "update", frame) in order."""
    log = []

    def display(obj):
        log.append(("display", obj))
        return FakeHandle(log)

    monkeypatch.setattr(monitor_module, "_display", display)
    return log


def test_it_is_a_callback_and_records_what_fit_logged(shown):
    m = viz.TrainingMonitor()
    assert isinstance(m, nn.Callback)
    history = fit(m)
    assert m.epochs == [0, 1, 2]
    assert set(m.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    for key in m.history:
        np.testing.assert_allclose(m.history[key], history[key])
    # every batch's loss, placed inside its epoch: 320 training examples in batches of 64
    assert len(m.batch_losses) == 3 * 5
    assert m.batch_losses[4][0] == pytest.approx(1.0) and m.batch_losses[-1][0] == pytest.approx(3.0)


def test_one_output_displayed_then_updated_every_epoch(shown):
    fit(viz.TrainingMonitor(), epochs=4)
    assert [kind for kind, _ in shown] == ["display", "update", "update", "update"]
    for _, frame in shown:
        bundle = frame._repr_mimebundle_()
        assert set(bundle) == {"image/png", "text/plain"}
        assert bundle["image/png"].startswith(PNG)
    # the plain text is the same after every epoch: nbval compares the first display with the
    # saved (last) state of the output
    texts = {frame._repr_mimebundle_()["text/plain"] for _, frame in shown}
    assert texts == {"TrainingMonitor: loss, val_loss | accuracy, val_accuracy"}


def test_a_second_fit_gets_a_new_output_and_continues_the_curves(shown):
    lg.manual_seed(0)
    m = viz.TrainingMonitor()
    model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 2))
    trainer = nn.Trainer(model, lg.optim.SGD(model.parameters(), lr=0.1))
    data = datasets.two_moons("train")
    trainer.fit(data, epochs=2, callbacks=[m], progress=False, seed=0)
    trainer.fit(data, epochs=1, callbacks=[m], progress=False, seed=0)
    assert [kind for kind, _ in shown] == ["display", "update", "display"]
    assert m.epochs == [0, 1, 2] and len(m.history["loss"]) == 3


def test_the_picture_is_deterministic_and_has_no_timestamp(shown):
    a, b = viz.TrainingMonitor(show=False), viz.TrainingMonitor(show=False)
    fit(a)
    fit(b)
    assert shown == []          # show=False: nothing displayed
    assert a.png() == b.png()
    assert b"Software" not in a.png() and b"matplotlib" not in a.png()


def test_panels_follow_the_metrics_asked_for():
    m = viz.TrainingMonitor(metrics="accuracy", show=False)
    fit(m, validation=False)
    assert m.panels() == [("loss", ["loss"]), ("accuracy", ["accuracy"])]
    fig = m.figure()
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy"]
    unknown = viz.TrainingMonitor(metrics=["mae"], show=False)
    unknown.on_epoch_end(None, 0, {"loss": 1.0})
    with pytest.raises(KeyError, match="'mae' was not logged"):
        unknown.panels()


def test_repr_and_summary_give_the_numbers():
    m = viz.TrainingMonitor(show=False)
    assert repr(m) == "TrainingMonitor(no epochs yet)"
    assert set(m._repr_mimebundle_()) == {"text/plain"}
    fit(m, epochs=2)
    text = repr(m)
    assert text.startswith("TrainingMonitor(2 epochs)")
    last = m.history["val_accuracy"][-1]
    assert f"val_accuracy: last {last:.4f}" in text
    assert "0x" not in text
    best = min(m.history["loss"])
    assert f"best {best:.4f}" in m.summary()


def test_outside_a_notebook_nothing_is_displayed():
    assert monitor_module._display(object()) is None   # no IPython kernel under pytest
    m = viz.TrainingMonitor()
    fit(m, epochs=1)                                     # runs, draws nothing, records
    assert len(m.history["loss"]) == 1
