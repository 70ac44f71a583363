"""Declarative models: nn.from_config (dict, JSON, YAML), bottom/top wiring, to_config round
trips, a LeNet-style config that trains on digits, and errors that name the layer and field."""
import copy
import json

import numpy as np
import pytest

import labgrad as lg
from labgrad import nn
from labgrad.data import TensorDataset, datasets
from labgrad.nn import ConfigError

LENET = {
    "name": "lenet",
    "inputs": ["image"],
    "layers": [
        {"name": "conv1", "type": "Conv2d", "params": {"in_channels": 1, "out_channels": 8, "kernel_size": 3, "padding": 1}},
        {"name": "relu1", "type": "ReLU"},
        {"name": "pool1", "type": "MaxPool2d", "params": {"kernel_size": 2}},
        {"name": "conv2", "type": "Conv2d", "params": {"in_channels": 8, "out_channels": 16, "kernel_size": 3, "padding": 1}},
        {"name": "relu2", "type": "ReLU"},
        {"name": "pool2", "type": "MaxPool2d", "params": {"kernel_size": 2}},
        {"name": "flat", "type": "Flatten"},
        {"name": "fc1", "type": "Linear", "params": {"in_features": 64, "out_features": 32}},
        {"name": "relu3", "type": "ReLU"},
        {"name": "fc2", "type": "Linear", "params": {"in_features": 32, "out_features": 10}, "top": "logits"},
    ],
    "outputs": ["logits"],
}

RESIDUAL = {
    "inputs": ["x"],
    "layers": [
        {"name": "fc1", "type": "Linear", "params": {"in_features": 6, "out_features": 6}, "bottom": "x", "top": "h1"},
        {"name": "act1", "type": "ReLU", "bottom": "h1", "top": "a1"},
        {"name": "fc2", "type": "Linear", "params": {"in_features": 6, "out_features": 6}, "bottom": "a1", "top": "h2"},
        {"name": "skip", "type": "Add", "bottom": ["x", "h2"], "top": "sum"},
        {"name": "out", "type": "ReLU", "bottom": "sum", "top": "y"},
    ],
    "outputs": ["y"],
}


def test_a_residual_block_is_wired_by_bottom_and_top():
    lg.manual_seed(0)
    net = nn.from_config(RESIDUAL)
    assert [n for n, _ in net.named_parameters()] == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    x = lg.tensor(np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32))
    expected = (x + net.fc2(net.fc1(x).relu())).relu()
    np.testing.assert_allclose(net(x).numpy(), expected.numpy(), rtol=1e-6)
    net(x).sum().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_sequential_defaults_and_name_scopes():
    net = nn.from_config({"layers": [{"name": "fc", "type": "Linear", "params": {"in_features": 4, "out_features": 3}},
                                     {"name": "act", "type": "Tanh"}]})
    assert net.inputs == ("input",) and net.outputs == ("act",)
    y = net(lg.ones(2, 4))
    assert y.shape == (2, 3) and y.grad_fn.scope == "Network/act"
    assert nn.from_config(LENET)(lg.ones(1, 1, 8, 8)).grad_fn.scope == "lenet/fc2"


@pytest.mark.parametrize("config", [LENET, RESIDUAL], ids=["lenet", "residual"])
def test_to_config_round_trips(config, tmp_path):
    net = nn.from_config(copy.deepcopy(config))
    written = net.to_config()
    again = nn.from_config(json.loads(json.dumps(written)))          # survives JSON
    assert again.to_config() == written
    again.load_state_dict(net.state_dict())                          # same parameter names and shapes
    x = lg.ones(2, 1, 8, 8) if config is LENET else lg.ones(2, 6)
    np.testing.assert_allclose(again(x).numpy(), net(x).numpy(), rtol=1e-6)
    path = tmp_path / "model.json"
    nn.save_config(net, path)
    assert nn.from_config(path).to_config() == written
    assert nn.from_config(str(path)).to_config() == written


def test_a_sequential_writes_its_config():
    lg.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.LeakyReLU(0.2), nn.Dropout(0.1), nn.Linear(8, 2))
    config = model.to_config()
    assert config["layers"][2] == {"name": "2", "type": "LeakyReLU", "params": {"negative_slope": 0.2}}
    net = nn.from_config(config)
    net.load_state_dict(model.state_dict())
    model.eval(), net.eval()
    x = lg.ones(3, 4)
    np.testing.assert_allclose(net(x).numpy(), model(x).numpy(), rtol=1e-6)


def test_yaml_configs(tmp_path):
    yaml = pytest.importorskip("yaml")
    path = tmp_path / "residual.yaml"
    path.write_text(yaml.safe_dump(RESIDUAL))
    assert nn.from_config(path).to_config() == nn.from_config(RESIDUAL).to_config()
    nn.save_config(nn.from_config(RESIDUAL), tmp_path / "out.yml")
    assert yaml.safe_load((tmp_path / "out.yml").read_text())["layers"][3]["bottom"] == ["x", "h2"]


def test_a_lenet_config_trains_on_digits():
    pytest.importorskip("sklearn")
    lg.manual_seed(0)
    net = nn.from_config(LENET)

    def images(split):
        d = datasets.digits(split)
        return TensorDataset(d.features.reshape(-1, 1, 8, 8), d.labels)

    trainer = nn.Trainer(net, lg.optim.Adam(net.parameters(), lr=3e-3), metrics=["accuracy"], jit=True)
    history = trainer.fit(images("train"), epochs=8, validation_data=images("test"), progress=False, seed=0)
    assert history["val_accuracy"][-1] >= 0.95


def broken(path, value):
    """LENET with one field replaced: path is like ("layers", 3, "params", "kernel_size")."""
    config = copy.deepcopy(LENET)
    target = config
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return config


@pytest.mark.parametrize("path, value, message", [
    (("layers", 3, "params", "kernel_sise"), 3, r"layer 'conv2' \(layers\[3\]\): field 'params.kernel_sise' is not a parameter of Conv2d\. Did you mean 'kernel_size'\?"),
    (("layers", 3, "params", "kernel_size"), KeyError, r"layer 'conv2' \(layers\[3\]\): field 'params.kernel_size' is missing"),
    (("layers", 3, "params", "kernel_size"), -1, r"layer 'conv2' \(layers\[3\]\): Conv2d\(\*\*params\) failed.*kernel_size"),
    (("layers", 1, "type"), "Relu", r"layer 'relu1' \(layers\[1\]\): field 'type' is 'Relu'.*Did you mean 'ReLU'\?"),
    (("layers", 7, "bottom"), "flatten", r"layer 'fc1' \(layers\[7\]\): field 'bottom' names blob 'flatten'.*available: image, conv1"),
    (("layers", 4, "name"), "conv1", r"layer 'conv1' \(layers\[4\]\): field 'name' repeats 'conv1'"),
    (("layers", 2, "name"), "pool.1", r"field 'name' must be a non-empty string without '\.'"),
    (("layers", 0, "weights"), [1, 2], r"layer 'conv1' \(layers\[0\]\): unknown field 'weights'"),
    (("layers", 9, "top"), ["a", "b"], r"layer 'fc2' \(layers\[9\]\): field 'top' must name exactly one blob"),
    (("outputs",), ["probs"], r"config: field 'outputs' names blob 'probs'"),
    (("layer",), [], r"config: unknown field 'layer'"),
])
def test_invalid_configs_name_the_layer_and_the_field(path, value, message):
    with pytest.raises(ConfigError, match=message):
        nn.from_config(broken(path, value))


def test_more_invalid_configs():
    with pytest.raises(ConfigError, match="'layers' must be a non-empty list"):
        nn.from_config({"layers": []})
    with pytest.raises(ConfigError, match=r"layer 'skip' \(layers\[3\]\): field 'bottom' must list at least two"):
        bad = copy.deepcopy(RESIDUAL)
        bad["layers"][3]["bottom"] = "h2"
        nn.from_config(bad)
    with pytest.raises(ConfigError, match=r"layer 'act1' \(layers\[1\]\): field 'bottom' lists 2 blobs, but ReLU takes one"):
        bad = copy.deepcopy(RESIDUAL)
        bad["layers"][1]["bottom"] = ["x", "h1"]
        nn.from_config(bad)

    class Custom(nn.Module):
        def forward(self, x):
            return x

    with pytest.raises(ConfigError, match="cannot be written as a config"):
        nn.to_config(Custom())
    with pytest.raises(ConfigError, match=r"Custom is not a config layer type.*register_layer"):
        nn.Sequential(Custom()).to_config()


def test_registered_layers_can_be_used_in_configs():
    class Scale(nn.Module):
        def __init__(self, factor=2.0):
            super().__init__()
            self.factor = factor

        def forward(self, x):
            return x * self.factor

    nn.register_layer(Scale)
    try:
        net = nn.from_config({"layers": [{"name": "s", "type": "Scale", "params": {"factor": 3.0}}]})
        assert net(lg.ones(2)).tolist() == [3.0, 3.0]
        assert net.to_config()["layers"][0]["params"] == {"factor": 3.0}
    finally:
        del nn.config.LAYER_TYPES["Scale"]
