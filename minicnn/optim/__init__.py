"""Optimizers: they own every weight update, reading each ``param.grad`` that ``backward`` filled.

``Optimizer`` is the base class (parameters, the checked learning rate, per-parameter
state keyed by the Parameter, the step loop with its gradient checks, ``state_dict``): a
new optimizer is one subclass with an ``__init__`` and an ``update``. ``SGD``, ``Adam``,
``AdamW`` and ``RMSprop`` are its subclasses, each with ``torch.optim``'s update rule.
"""

from .adam import Adam, AdamW
from .base import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "RMSprop"]
