"""Layers and models: ``lg.nn.Sequential(lg.nn.Linear(64, 128), lg.nn.ReLU(), ...)``.

A ``Module`` owns parameters (plain Tensors that require grad) and sub-modules, found by
assignment; ``parameters()`` hands them to an optimizer, ``state_dict()`` to ``lg.save``.
Note that ``Linear.weight`` is ``(in_features, out_features)``: ``y = x @ W + b``.

Above the layers: ``Trainer`` (fit / evaluate / predict, with callbacks such as
``ModelCheckpoint`` and ``EarlyStopping``) and declarative models (``from_config`` /
``to_config``: a model as a dict, JSON or YAML file).
"""
from .module import Module, Parameter, StateDictError  # noqa: F401
from .container import ModuleList, Sequential  # noqa: F401
from .linear import Linear  # noqa: F401
from .activation import GELU, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh  # noqa: F401
from .flatten import Flatten  # noqa: F401
from .dropout import Dropout  # noqa: F401
from .conv import AvgPool2d, Conv2d, MaxPool2d  # noqa: F401
from .loss import BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss  # noqa: F401
from .normalization import BatchNorm1d, BatchNorm2d, LayerNorm  # noqa: F401
from .embedding import Embedding  # noqa: F401
from . import init  # noqa: F401
from .callbacks import Callback, EarlyStopping, ModelCheckpoint  # noqa: F401
from .trainer import History, Trainer  # noqa: F401
from . import callbacks, metrics  # noqa: F401
from .merge import Add, Concat  # noqa: F401
from .config import (ConfigError, Network, from_config, load_config, register_layer,  # noqa: F401
                     save_config, to_config)
