"""The layers of minicnn, each with a hand-derived backward."""

from .activations import ReLU
from .base import Layer, Parameter
from .conv import Conv2DVolume
from .dense import Dense
from .pooling import MaxPool2D
from .reshape import Flatten

__all__ = ["Conv2DVolume", "Dense", "Flatten", "Layer", "MaxPool2D", "Parameter", "ReLU"]
