"""Optimizers: they own every weight update, reading each ``param.grad`` that ``backward`` filled.

``Optimizer`` is the base class (parameters, per-parameter state keyed by the Parameter,
validated hyperparameters, ``state_dict``); ``SGD``, ``Adam``, ``AdamW`` and ``RMSprop``
are its subclasses, each with ``torch.optim``'s update rule. ``Real``, ``Flag`` and
``RealPair`` declare the hyperparameters of a new optimizer.
"""

from .adam import Adam, AdamW
from .base import Optimizer
from .hyperparameters import Flag, Hyperparameter, Real, RealPair
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["SGD", "Adam", "AdamW", "Flag", "Hyperparameter", "Optimizer", "RMSprop", "Real", "RealPair"]
