"""Declarative models: a model written as data, Caffe's prototxt idea (and Keras's ``get_config``).

A config is a dict (or a JSON or YAML file) listing named layers, each with a ``type``, its
constructor ``params``, and optionally ``bottom`` (the blobs it reads) and ``top`` (the blob
it writes), so non-sequential graphs such as a residual block can be written down::

    {"inputs": ["x"],
     "layers": [
       {"name": "fc1", "type": "Linear", "params": {"in_features": 8, "out_features": 8}, "bottom": "x"},
       {"name": "act1", "type": "ReLU"},                      # reads the previous layer's top
       {"name": "fc2", "type": "Linear", "params": {"in_features": 8, "out_features": 8}},
       {"name": "skip", "type": "Add", "bottom": ["x", "fc2"], "top": "y"}],
     "outputs": ["y"]}

Defaults keep sequential models short: ``inputs`` is ``["input"]``; a layer without ``bottom``
reads the previous layer's top (the first one reads the first input); a layer without ``top``
writes a blob named after itself; ``outputs`` is the last layer's top. ``from_config`` builds a
``Network``; ``to_config(model)`` (or ``model.to_config()``) writes the dict back.

Why a model as data: it can be stored, diffed, generated and read by other tools without
running Python, and it separates *what* the network is from the code that trains it. Weights
are not part of the config: save them with ``lg.save(model.state_dict(), path)``.
"""
from __future__ import annotations

import difflib
import inspect
import json
import os

from ..errors import LabgradError
from ..tensor import Tensor
from .activation import GELU, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from .conv import AvgPool2d, Conv2d, MaxPool2d
from .dropout import Dropout
from .embedding import Embedding
from .flatten import Flatten
from .linear import Linear
from .merge import Add, Concat
from .module import Module
from .normalization import BatchNorm1d, BatchNorm2d, LayerNorm

LAYER_TYPES = {cls.__name__: cls for cls in (
    Linear, Conv2d, MaxPool2d, AvgPool2d, Flatten, Dropout, ReLU, LeakyReLU, Sigmoid, Tanh, GELU,
    Softmax, BatchNorm1d, BatchNorm2d, LayerNorm, Embedding, Add, Concat)}
MULTI_INPUT = (Add, Concat)
LAYER_KEYS = ("name", "type", "params", "bottom", "top")
TOP_KEYS = ("name", "inputs", "outputs", "layers")
NOT_CONFIG = ("dtype", "device", "dim")   # constructor arguments that describe placement, not the model


class ConfigError(LabgradError, ValueError):
    """A model config that cannot be built; the message names the layer and the field."""


def register_layer(cls, name=None):
    """Make a Module class usable as ``"type": name`` in configs (its constructor arguments are
    the ``params``; ``to_config`` reads them back from attributes of the same names)."""
    if not (isinstance(cls, type) and issubclass(cls, Module)):
        raise TypeError(f"register_layer needs a Module subclass, got {cls!r}")
    LAYER_TYPES[name or cls.__name__] = cls
    return cls


# ---------------------------------------------------------------- reading

def from_config(config):
    """Build a ``Network`` from a dict, or from a ``.json`` / ``.yaml`` / ``.yml`` file path.

    >>> net = nn.from_config({"layers": [
    ...     {"name": "fc", "type": "Linear", "params": {"in_features": 4, "out_features": 2}},
    ...     {"name": "act", "type": "ReLU"}]})
    >>> net(lg.ones(3, 4)).shape
    (3, 2)
    """
    if isinstance(config, (str, os.PathLike)):
        config = load_config(config)
    return Network(config)


def load_config(path):
    """The dict stored in a JSON file, or a YAML file (needs PyYAML)."""
    path = os.fspath(path)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if path.endswith((".yaml", ".yml")):
        try:
            import yaml
        except ImportError:
            raise ImportError(f"reading {path} needs PyYAML (pip install pyyaml); or write the config "
                              f"as JSON, which needs nothing") from None
        return yaml.safe_load(text)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path} is not valid JSON: {e}") from None


def save_config(model, path):
    """Write ``to_config(model)`` to ``path`` as JSON (or YAML for ``.yaml``/``.yml``)."""
    config = to_config(model)
    path = os.fspath(path)
    if path.endswith((".yaml", ".yml")):
        import yaml
        text = yaml.safe_dump(config, sort_keys=False)
    else:
        text = json.dumps(config, indent=2)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text + ("\n" if not text.endswith("\n") else ""))


def _suggest(word, choices):
    """`` Did you mean 'ReLU'?`` for a near miss (case ignored), else ``""``."""
    lowered = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(word.lower(), lowered, n=1)
    return f" Did you mean {lowered[close[0]]!r}?" if close else ""


def _where(i, layer):
    name = layer.get("name") if isinstance(layer, dict) else None
    return f"layer {name!r} (layers[{i}])" if name is not None else f"layers[{i}]"


def _names(value, where, field):
    """``"x"`` or ``["x", "y"]`` -> a list of blob names."""
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        raise ConfigError(f"{where}: field {field!r} must be a blob name or a non-empty list of them, got {value!r}")
    return list(names)


def _build_layer(i, spec):
    where = _where(i, spec)
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: each layer is a dict with 'name', 'type' and optionally 'params', "
                          f"'bottom', 'top'; got {type(spec).__name__}")
    unknown = [k for k in spec if k not in LAYER_KEYS]
    if unknown:
        raise ConfigError(f"{where}: unknown field {unknown[0]!r}; a layer has the fields {', '.join(LAYER_KEYS)}")
    name = spec.get("name")
    if not isinstance(name, str) or not name or "." in name or "/" in name:
        raise ConfigError(f"{where}: field 'name' must be a non-empty string without '.' or '/' (it names "
                          f"the layer's parameters, e.g. 'conv1.weight'), got {name!r}")
    kind = spec.get("type")
    if kind not in LAYER_TYPES:
        hint = _suggest(str(kind), LAYER_TYPES)
        raise ConfigError(f"{where}: field 'type' is {kind!r}, which is not a known layer type.{hint} "
                          f"Known: {', '.join(sorted(LAYER_TYPES))} (add your own with nn.register_layer)")
    cls = LAYER_TYPES[kind]
    params = spec.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise ConfigError(f"{where}: field 'params' must be a dict of {kind}'s arguments, got {type(params).__name__}")
    signature = inspect.signature(cls.__init__)
    accepted = [p for p in list(signature.parameters)[1:] if p not in NOT_CONFIG
                and signature.parameters[p].kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)]
    for key in params:
        if key not in accepted:
            hint = _suggest(key, accepted)
            raise ConfigError(f"{where}: field 'params.{key}' is not a parameter of {kind}.{hint} "
                              f"{kind} takes: {', '.join(accepted) or 'no parameters'}")
    missing = [p for p in accepted if signature.parameters[p].default is inspect.Parameter.empty and p not in params]
    if missing:
        raise ConfigError(f"{where}: field 'params.{missing[0]}' is missing; {kind} needs "
                          f"{', '.join(missing)}")
    try:
        module = cls(**params)
    except (TypeError, ValueError, LabgradError) as e:
        raise ConfigError(f"{where}: {kind}(**params) failed with params {params}: {e}") from None
    return name, module


class Network(Module):
    """A model built from a config: named layers wired by blob names (see ``from_config``).

    Layers are sub-modules under their config names, so parameters are ``"conv1.weight"``,
    drawings group by layer, and ``lg.save(net.state_dict(), ...)`` works as for any module.
    """

    def __init__(self, config):
        super().__init__()
        if not isinstance(config, dict):
            raise ConfigError(f"a model config is a dict with a 'layers' list, got {type(config).__name__}")
        unknown = [k for k in config if k not in TOP_KEYS]
        if unknown:
            raise ConfigError(f"config: unknown field {unknown[0]!r}; a config has the fields {', '.join(TOP_KEYS)}")
        layers = config.get("layers")
        if not isinstance(layers, list) or not layers:
            raise ConfigError("config: field 'layers' must be a non-empty list of layer dicts")
        self.__dict__["name"] = config.get("name")
        inputs = _names(config.get("inputs", ["input"]), "config", "inputs")
        blobs = list(inputs)
        wiring = []
        previous = inputs[0]
        for i, spec in enumerate(layers):
            name, module = _build_layer(i, spec)
            where = _where(i, spec)
            if name in self._modules:
                raise ConfigError(f"{where}: field 'name' repeats {name!r}; layer names must be unique")
            bottoms = _names(spec.get("bottom", previous), where, "bottom")
            for b in bottoms:
                if b not in blobs:
                    raise ConfigError(f"{where}: field 'bottom' names blob {b!r}, which nothing before this "
                                      f"layer produces; available: {', '.join(blobs)}")
            multi = isinstance(module, MULTI_INPUT)
            if isinstance(module, Add) and len(bottoms) < 2:
                raise ConfigError(f"{where}: field 'bottom' must list at least two blobs for Add, got {bottoms}")
            if not multi and len(bottoms) != 1:
                raise ConfigError(f"{where}: field 'bottom' lists {len(bottoms)} blobs, but "
                                  f"{spec['type']} takes one input")
            tops = _names(spec.get("top", name), where, "top")
            if len(tops) != 1:
                raise ConfigError(f"{where}: field 'top' must name exactly one blob (each layer writes one), got {tops}")
            setattr(self, name, module)
            wiring.append((name, tuple(bottoms), tops[0]))
            blobs.append(tops[0])
            previous = tops[0]
        outputs = _names(config.get("outputs", [previous]), "config", "outputs")
        for o in outputs:
            if o not in blobs:
                raise ConfigError(f"config: field 'outputs' names blob {o!r}, which no layer produces; "
                                  f"available: {', '.join(blobs)}")
        self.__dict__["inputs"] = tuple(inputs)
        self.__dict__["outputs"] = tuple(outputs)
        self.__dict__["wiring"] = tuple(wiring)
        self.__dict__["_scope_name"] = config.get("name") or "Network"

    def forward(self, *args, **kwargs):
        if len(args) + len(kwargs) != len(self.inputs):
            raise TypeError(f"this Network takes {len(self.inputs)} input(s) ({', '.join(self.inputs)}), "
                            f"got {len(args) + len(kwargs)}")
        blobs = dict(zip(self.inputs, args))
        for k, v in kwargs.items():
            if k not in self.inputs:
                raise TypeError(f"this Network has no input {k!r}; its inputs are {', '.join(self.inputs)}")
            blobs[k] = v
        for name, bottoms, top in self.wiring:
            blobs[top] = self._modules[name](*(blobs[b] for b in bottoms))
        outs = tuple(blobs[o] for o in self.outputs)
        return outs[0] if len(outs) == 1 else outs

    def to_config(self):
        """The config that builds this network again (with the current layer settings)."""
        return to_config(self)

    def extra_repr(self):
        return f"inputs={list(self.inputs)}, outputs={list(self.outputs)}"


# ---------------------------------------------------------------- writing

def layer_params(module):
    """A layer's constructor arguments, read back from its attributes (as JSON-friendly values)."""
    cls = type(module)
    kind = next((k for k, c in LAYER_TYPES.items() if c is cls), None)
    if kind is None:
        raise ConfigError(f"{cls.__name__} is not a config layer type; known: {', '.join(sorted(LAYER_TYPES))} "
                          f"(register it with nn.register_layer({cls.__name__}))")
    signature = inspect.signature(cls.__init__)
    params = {}
    for p in list(signature.parameters)[1:]:
        if p in NOT_CONFIG or not hasattr(module, p):
            continue
        value = getattr(module, p)
        if value is None or isinstance(value, Tensor):      # bias=True/False, stored as a tensor or None
            value = value is not None
        elif isinstance(value, tuple):
            value = list(value)
        params[p] = value
    return kind, params


def to_config(model):
    """The config dict of a ``Network`` or of a ``Sequential`` of config layer types."""
    if isinstance(model, Network):
        layers = []
        for name, bottoms, top in model.wiring:
            kind, params = layer_params(model._modules[name])
            layers.append({"name": name, "type": kind, "params": params,
                           "bottom": list(bottoms) if len(bottoms) > 1 else bottoms[0], "top": top})
        config = {"inputs": list(model.inputs), "layers": layers, "outputs": list(model.outputs)}
        if model.name:
            config = {"name": model.name, **config}
        return config
    children = list(model.named_children())
    if type(model).__name__ != "Sequential" or not children:
        raise ConfigError(f"to_config: a {type(model).__name__} with its own forward() cannot be written as "
                          f"a config (its wiring is Python code); build it with nn.from_config, or use a "
                          f"Sequential of layers")
    layers = []
    for name, m in children:
        kind, params = layer_params(m)
        layers.append({"name": name, "type": kind, "params": params})
    return {"inputs": ["input"], "layers": layers}
