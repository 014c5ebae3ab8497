"""The layers of minicnn, each with a hand-derived backward."""

from .activations import ReLU
from .base import Layer, Parameter
from .conv import Conv2DVolume
from .dense import Dense
from .pooling import MaxPool2D
from .reshape import Flatten

__all__ = ["Layer", "Parameter", "Conv2DVolume", "Dense", "ReLU", "Flatten", "MaxPool2D"]
