"""nn.Trainer: fit / evaluate / predict, metrics, validation, callbacks, jit, the progress bar,
and the digits targets (MLP >= 95%, small CNN >= 97%)."""
import time

import numpy as np
import pytest

import labgrad as lg
from labgrad import nn
from labgrad.data import DataLoader, TensorDataset, datasets
from labgrad.nn import progress


def mlp():
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))


def digits(split):
    pytest.importorskip("sklearn")
    return datasets.digits(split)


def digit_images(split):
    d = digits(split)
    return TensorDataset(d.features.reshape(-1, 1, 8, 8), d.labels, num_classes=10)


def small_cnn():
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(128, 10))


def fit_digits(make_model, data, opt, epochs, jit=False, **fit_kw):
    lg.manual_seed(0)
    model = make_model()
    trainer = nn.Trainer(model, opt(model.parameters()), loss="cross_entropy", metrics=["accuracy"], jit=jit)
    history = trainer.fit(data("train"), epochs=epochs, batch_size=32, validation_data=data("test"),
                          progress=False, seed=0, **fit_kw)
    return trainer, history


# ---------------------------------------------------------------- the targets

@pytest.mark.parametrize("jit", [False, True])
def test_mlp_reaches_95_percent_on_digits_in_20_epochs(jit):
    start = time.perf_counter()
    trainer, history = fit_digits(mlp, digits, lambda ps: lg.optim.SGD(ps, lr=0.1), 20, jit=jit)
    accuracy = trainer.evaluate(digits("test"))["accuracy"]
    assert accuracy >= 0.95, f"{accuracy:.3f} after 20 epochs ({time.perf_counter() - start:.1f} s)"
    assert accuracy == history["val_accuracy"][-1]


def test_small_cnn_reaches_97_percent_on_digits():
    start = time.perf_counter()
    trainer, history = fit_digits(small_cnn, digit_images, lambda ps: lg.optim.Adam(ps, lr=3e-3), 12, jit=True)
    accuracy = history["val_accuracy"][-1]
    assert accuracy >= 0.97, f"{accuracy:.3f} after 12 epochs ({time.perf_counter() - start:.1f} s)"


# ---------------------------------------------------------------- fit, evaluate, predict

def test_jit_training_follows_eager_training_step_for_step():
    data = lambda split: datasets.two_moons(split, n=200)                        # noqa: E731
    # (no bias before the batch norm: its gradient is zero up to rounding, and Adam would turn
    # that rounding, which fused kernels do differently, into steps of size lr)
    model = lambda: nn.Sequential(nn.Linear(2, 16, bias=False), nn.BatchNorm1d(16), nn.Tanh(), nn.Linear(16, 2))  # noqa: E731
    eager, h_eager = fit_digits(model, data, lambda ps: lg.optim.Adam(ps, lr=0.01), 4)
    jitted, h_jit = fit_digits(model, data, lambda ps: lg.optim.Adam(ps, lr=0.01), 4, jit=True)
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(h_jit[key], h_eager[key], rtol=1e-4, atol=1e-6, err_msg=key)
    for (name, a), (_, b) in zip(eager.model.state_dict().items(), jitted.model.state_dict().items()):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-4, atol=1e-5, err_msg=name)
    assert jitted._train_step.cache_info.misses == 1      # 160 examples: 5 full batches, one trace


def test_history_evaluate_and_predict():
    trainer, history = fit_digits(mlp, digits, lambda ps: lg.optim.SGD(ps, lr=0.1), 3)
    assert len(history) == 3 and history.epochs == [0, 1, 2]
    assert list(history.history) == ["loss", "accuracy", "val_loss", "val_accuracy"]
    assert history["loss"][0] > history["loss"][-1]
    assert "epoch" in repr(history) and "val_accuracy" in repr(history)
    with pytest.raises(KeyError, match="recorded loss, accuracy"):
        history["val_mae"]
    test = digits("test")
    scores = trainer.predict(test.features)
    assert scores.shape == (360, 10) and not scores.requires_grad
    assert trainer.predict(test).shape == (360, 10)
    accuracy = float((scores.numpy().argmax(1) == test.labels).mean())
    assert trainer.evaluate(test)["accuracy"] == pytest.approx(accuracy)
    assert trainer.evaluate((test.features, test.labels)) == trainer.evaluate(test)
    again = trainer.fit(digits("train"), epochs=1, progress=False)          # fit continues the history
    assert again is history and history.epochs == [0, 1, 2, 3]


def test_eval_mode_for_evaluate_and_predict_even_under_jit():
    lg.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 2))
    trainer = nn.Trainer(model, lg.optim.SGD(model.parameters(), lr=0.1), jit=True)
    moons = datasets.two_moons("train")
    trainer.fit(moons, epochs=1, progress=False)
    assert model.training                                                   # fit leaves the mode as it was
    running = model[1].running_mean.numpy().copy()
    first, second = trainer.evaluate(moons), trainer.evaluate(moons)
    assert first == second                                                  # running statistics, not the batch's
    np.testing.assert_array_equal(model[1].running_mean.numpy(), running)   # and evaluation does not move them
    model.eval()
    with lg.no_grad():
        expected = model(lg.tensor(moons.features[:5])).numpy()
    model.train()
    np.testing.assert_allclose(trainer.predict(moons.features[:5]).numpy(), expected, rtol=1e-6)


def test_regression_with_a_loss_function_and_a_metric_function():
    lg.manual_seed(0)
    model = nn.Sequential(nn.Linear(1, 32), nn.Tanh(), nn.Linear(32, 1))
    def rmse(out, target):
        return float(np.sqrt(((out - target) ** 2).mean()))
    trainer = nn.Trainer(model, lg.optim.Adam(model.parameters(), lr=0.02), loss=lg.functional.mse_loss,
                         metrics=["mae", rmse])
    history = trainer.fit(datasets.sine("train"), epochs=60, validation_data=datasets.sine("test"),
                          progress=False, seed=0)
    assert set(history.history) == {"loss", "mae", "rmse", "val_loss", "val_mae", "val_rmse"}
    assert history["val_rmse"][-1] < 0.2                                   # the noise is 0.1


def test_a_dataloader_is_used_as_given():
    loader = DataLoader(datasets.two_moons("train"), batch_size=40, drop_last=True)
    lg.manual_seed(0)
    model = nn.Linear(2, 2)
    seen = []

    class Count(nn.Callback):
        def on_batch_end(self, trainer, batch, logs):
            seen.append(logs["size"])

    nn.Trainer(model, lg.optim.SGD(model.parameters(), lr=0.1)).fit(loader, epochs=1, callbacks=[Count()],
                                                                     progress=False)
    assert seen == [40] * 8


# ---------------------------------------------------------------- callbacks

def test_model_checkpoint_keeps_the_best_epoch(tmp_path):
    path = tmp_path / "best.npz"
    checkpoint = nn.ModelCheckpoint(path, monitor="val_loss")
    trainer, history = fit_digits(mlp, digits, lambda ps: lg.optim.SGD(ps, lr=0.5, momentum=0.9), 6,
                                  callbacks=[checkpoint])
    best = int(np.argmin(history["val_loss"]))
    assert checkpoint.best_epoch == best and checkpoint.best == history["val_loss"][best]
    with np.load(path, allow_pickle=False):                                  # plain arrays, no pickle
        pass
    model = mlp()
    model.load_state_dict(lg.load(path))
    restored = nn.Trainer(model, lg.optim.SGD(model.parameters(), lr=0.1)).evaluate(digits("test"))
    assert restored["loss"] == pytest.approx(history["val_loss"][best], rel=1e-6)


def test_early_stopping_stops_after_patience_and_restores_the_best_weights():
    lg.manual_seed(0)
    model = nn.Linear(2, 2)
    stop = nn.EarlyStopping(monitor="loss", patience=2, min_delta=1e9, restore_best_weights=True)
    snapshots = []

    class Snapshot(nn.Callback):
        def on_epoch_end(self, trainer, epoch, logs):
            snapshots.append(model.weight.numpy().copy())

    trainer = nn.Trainer(model, lg.optim.SGD(model.parameters(), lr=0.1))
    history = trainer.fit(datasets.two_moons("train"), epochs=10, callbacks=[Snapshot(), stop], progress=False)
    assert len(history) == 4 and stop.stopped_epoch == 3 and stop.best_epoch == 0   # 1 best + 3 without progress
    np.testing.assert_array_equal(model.weight.numpy(), snapshots[0])


def test_monitoring_a_missing_number_says_what_to_do():
    model = nn.Linear(2, 2)
    trainer = nn.Trainer(model, lg.optim.SGD(model.parameters(), lr=0.1))
    with pytest.raises(KeyError, match="Pass validation_data"):
        trainer.fit(datasets.two_moons("train"), epochs=1, callbacks=[nn.EarlyStopping()], progress=False)


def test_trainer_errors_teach():
    model = nn.Linear(2, 2)
    opt = lg.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="unknown loss 'hinge'.*cross_entropy"):
        nn.Trainer(model, opt, loss="hinge")
    with pytest.raises(ValueError, match="unknown metric 'f1'"):
        nn.Trainer(model, opt, metrics=["f1"])
    with pytest.raises(TypeError, match="lg.optim"):
        nn.Trainer(model, "sgd")
    with pytest.raises(TypeError, match="callbacks"):
        nn.Trainer(model, opt).fit(datasets.two_moons("train"), callbacks=[print], progress=False)
    with pytest.raises(ValueError, match=r"pair \(inputs, targets\)"):
        nn.Trainer(model, opt).fit(TensorDataset(np.zeros((4, 2), np.float32)), progress=False)


# ---------------------------------------------------------------- the progress bar

def test_progress_bar_with_tqdm_without_it_and_off(capsys, monkeypatch):
    pytest.importorskip("tqdm")
    model = nn.Linear(2, 2)
    trainer = nn.Trainer(model, lg.optim.SGD(model.parameters(), lr=0.1))
    moons = datasets.two_moons("train")
    trainer.fit(moons, epochs=1, progress=True)
    out = capsys.readouterr()
    assert "epoch 1/1" in out.err and "loss" in out.err                     # tqdm writes to stderr
    monkeypatch.setattr(progress, "_tqdm", lambda: None)                    # as if tqdm were not installed
    trainer.fit(moons, epochs=1, progress=True)
    out = capsys.readouterr()
    assert out.out.startswith("epoch 2/2: loss ") and out.err == ""
    trainer.fit(moons, epochs=1, progress=False)
    assert capsys.readouterr() == ("", "")


def test_dropout_under_jit_says_what_to_do_instead():
    model = nn.Sequential(nn.Linear(2, 4), nn.Dropout(0.5), nn.Linear(4, 2))
    trainer = nn.Trainer(model, lg.optim.SGD(model.parameters(), lr=0.1), jit=True)
    with pytest.raises(TypeError, match=r"no random op yet.*jit=False"):
        trainer.fit(datasets.two_moons("train"), epochs=1, progress=False)
    assert model.training                                    # the mode is restored after the error
    assert trainer.evaluate(datasets.two_moons("test"))["loss"] > 0     # evaluation compiles fine
