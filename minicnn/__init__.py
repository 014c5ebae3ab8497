"""minicnn: a small, readable, fast, from-scratch trainable CNN framework in numpy."""

from . import functional
from .gradcheck import GradcheckError, gradcheck
from .layers import Conv2DVolume, Dense, Flatten, Layer, MaxPool2D, Parameter, ReLU
from .losses import MSE, SoftmaxCrossEntropy
from .model import Sequential
from .optim import SGD

__version__ = "0.1.0"

__all__ = [
    "MSE",
    "SGD",
    "Conv2DVolume",
    "Dense",
    "Flatten",
    "GradcheckError",
    "Layer",
    "MaxPool2D",
    "Parameter",
    "ReLU",
    "Sequential",
    "SoftmaxCrossEntropy",
    "functional",
    "gradcheck",
]
