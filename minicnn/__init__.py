"""minicnn: a small, readable, fast, from-scratch trainable CNN framework in numpy."""

from . import functional, kernels, ops, schedules
from .early_stopping import EarlyStopping
from .gradcheck import GradcheckError, gradcheck
from .kernels.threads import get_num_threads, set_num_threads
from .layers import (
    AvgPool1D,
    AvgPool2D,
    AvgPool3D,
    BatchNorm1D,
    BatchNorm2D,
    BatchNorm3D,
    Conv1D,
    Conv2DVolume,
    Conv3D,
    ConvTranspose2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool1D,
    GlobalAvgPool2D,
    GlobalAvgPool3D,
    Layer,
    LeakyReLU,
    MaxPool1D,
    MaxPool2D,
    MaxPool3D,
    Parameter,
    ReLU,
    Residual,
    Sigmoid,
    Tanh,
    Upsample2D,
)
from .layers.base import Buffer
from .losses import MSE, Loss, SoftmaxCrossEntropy
from .model import Sequential, load_model
from .optim import SGD, Adam, AdamW, Optimizer, RMSprop
from .training import TrainingDiverged

__version__ = "0.1.0"

__all__ = [
    "MSE",
    "SGD",
    "Adam",
    "AdamW",
    "AvgPool1D",
    "AvgPool2D",
    "AvgPool3D",
    "BatchNorm1D",
    "BatchNorm2D",
    "BatchNorm3D",
    "Buffer",
    "Conv1D",
    "Conv2DVolume",
    "Conv3D",
    "ConvTranspose2D",
    "Dense",
    "Dropout",
    "EarlyStopping",
    "Flatten",
    "GlobalAvgPool1D",
    "GlobalAvgPool2D",
    "GlobalAvgPool3D",
    "GradcheckError",
    "Layer",
    "LeakyReLU",
    "Loss",
    "MaxPool1D",
    "MaxPool2D",
    "MaxPool3D",
    "Optimizer",
    "Parameter",
    "RMSprop",
    "ReLU",
    "Residual",
    "Sequential",
    "Sigmoid",
    "SoftmaxCrossEntropy",
    "Tanh",
    "TrainingDiverged",
    "Upsample2D",
    "functional",
    "get_num_threads",
    "gradcheck",
    "kernels",
    "load_model",
    "ops",
    "schedules",
    "set_num_threads",
]
