"""minicnn: a small, readable, fast, from-scratch trainable CNN framework in numpy."""

from . import functional, schedules
from .early_stopping import EarlyStopping
from .gradcheck import GradcheckError, gradcheck
from .layers import Conv2DVolume, Dense, Flatten, Layer, MaxPool2D, Parameter, ReLU
from .layers.base import Buffer
from .losses import MSE, SoftmaxCrossEntropy
from .model import Sequential
from .optim import SGD, Adam, AdamW, Optimizer, RMSprop

__version__ = "0.1.0"

__all__ = [
    "MSE",
    "SGD",
    "Adam",
    "AdamW",
    "Buffer",
    "Conv2DVolume",
    "Dense",
    "EarlyStopping",
    "Flatten",
    "GradcheckError",
    "Layer",
    "MaxPool2D",
    "Optimizer",
    "Parameter",
    "RMSprop",
    "ReLU",
    "Sequential",
    "SoftmaxCrossEntropy",
    "functional",
    "gradcheck",
    "schedules",
]
