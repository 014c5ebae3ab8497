"""The layers of minicnn, each with a hand-derived backward."""

from .activations import LeakyReLU, ReLU, Sigmoid, Tanh
from .base import Layer, Parameter
from .conv import Conv2DVolume
from .conv_nd import Conv1D, Conv3D
from .conv_transpose import ConvTranspose2D
from .dense import Dense
from .dropout import Dropout
from .normalization import BatchNorm1D, BatchNorm2D, BatchNorm3D
from .pooling import (
    AvgPool1D,
    AvgPool2D,
    AvgPool3D,
    GlobalAvgPool1D,
    GlobalAvgPool2D,
    GlobalAvgPool3D,
    MaxPool1D,
    MaxPool2D,
    MaxPool3D,
)
from .reshape import Flatten
from .residual import Residual
from .upsample import Upsample2D

__all__ = [
    "AvgPool1D",
    "AvgPool2D",
    "AvgPool3D",
    "BatchNorm1D",
    "BatchNorm2D",
    "BatchNorm3D",
    "Conv1D",
    "Conv2DVolume",
    "Conv3D",
    "ConvTranspose2D",
    "Dense",
    "Dropout",
    "Flatten",
    "GlobalAvgPool1D",
    "GlobalAvgPool2D",
    "GlobalAvgPool3D",
    "Layer",
    "LeakyReLU",
    "MaxPool1D",
    "MaxPool2D",
    "MaxPool3D",
    "Parameter",
    "ReLU",
    "Residual",
    "Sigmoid",
    "Tanh",
    "Upsample2D",
]
