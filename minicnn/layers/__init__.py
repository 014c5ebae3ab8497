"""The layers of minicnn, each with a hand-derived backward."""

from .activations import LeakyReLU, ReLU, Sigmoid, Tanh
from .base import Layer, Parameter
from .conv import Conv2DVolume
from .conv_nd import Conv1D, Conv3D
from .conv_transpose import ConvTranspose2D
from .dense import Dense
from .dropout import Dropout
from .normalization import BatchNorm2D
from .pooling import AvgPool2D, GlobalAvgPool2D, MaxPool2D
from .reshape import Flatten
from .residual import Residual
from .upsample import Upsample2D

__all__ = [
    "AvgPool2D",
    "BatchNorm2D",
    "Conv1D",
    "Conv2DVolume",
    "Conv3D",
    "ConvTranspose2D",
    "Dense",
    "Dropout",
    "Flatten",
    "GlobalAvgPool2D",
    "Layer",
    "LeakyReLU",
    "MaxPool2D",
    "Parameter",
    "ReLU",
    "Residual",
    "Sigmoid",
    "Tanh",
    "Upsample2D",
]
