"""The network API: modules with explicit forward and backward."""

from .containers import Residual, Sequential
from .init import manual_seed
from .layers import (AdaptiveAvgPool2d, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, Dropout,
                     Flatten, Linear, MaxPool2d, ReLU)
from .loss import CrossEntropyLoss
from .lstm import LSTM
from .module import Module, Parameter

__all__ = [
    "AdaptiveAvgPool2d", "AvgPool2d", "BatchNorm1d", "BatchNorm2d", "Conv2d",
    "CrossEntropyLoss", "Dropout", "Flatten", "LSTM", "Linear", "MaxPool2d", "Module",
    "Parameter", "ReLU", "Residual", "Sequential", "manual_seed",
]
