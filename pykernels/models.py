"""Reference networks built from pykernels.nn: LeNet-5, AlexNet (torchvision
layout), a CIFAR-style ResNet-20 and an LSTM sequence classifier. Parameter
names follow the PyTorch versions so state dicts line up key by key."""

from __future__ import annotations

import numpy as np

from . import nn
from ._backend import array_module


class LeNet5(nn.Sequential):
    """LeNet-5 with ReLU and max pooling, sized to its input: 32x32 inputs get
    the classic valid convolutions (32 -> 28 -> 14 -> 10 -> 5); smaller ones
    (e.g. the 8x8 digits) pad the 5x5 convolutions by 2 to keep their size."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, input_size: int = 32):
        pad = 0 if input_size >= 28 else 2
        side = (input_size + 2 * pad - 4) // 2
        side = (side + 2 * pad - 4) // 2
        if side < 1:
            raise ValueError(f"LeNet5: input_size {input_size} is too small")
        super().__init__(
            nn.Conv2d(in_channels, 6, 5, padding=pad), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5, padding=pad), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(16 * side * side, 120), nn.ReLU(),
            nn.Linear(120, 84), nn.ReLU(),
            nn.Linear(84, num_classes))


class AlexNet(nn.Module):
    """torchvision's AlexNet: features, a 6x6 adaptive average pool and the
    classifier. `width` scales every channel count and the hidden layers
    (1.0 is the real network); any input of at least 63x63 works."""

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, width: float = 1.0,
                 dropout: float = 0.5):
        super().__init__()
        c1, c2, c3, c4, c5 = (max(1, int(round(c * width))) for c in (64, 192, 384, 256, 256))
        hidden = max(1, int(round(4096 * width)))
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, 11, stride=4, padding=2), nn.ReLU(),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(c1, c2, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c3, c4, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c4, c5, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2))
        self.avgpool = nn.AdaptiveAvgPool2d(6)
        self.flatten = nn.Flatten()
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(c5 * 36, hidden), nn.ReLU(),
            nn.Dropout(dropout), nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, num_classes))

    def forward(self, x):
        return self.classifier(self.flatten(self.avgpool(self.features(x))))

    def backward(self, dy):
        dy = self.classifier.backward(dy)
        return self.features.backward(self.avgpool.backward(self.flatten.backward(dy)))


def basic_block(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    """conv-BN-ReLU-conv-BN plus the shortcut (a 1x1 conv + BN projection when
    the shape changes), then ReLU."""
    body = nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels), nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels))
    projection = None
    if stride != 1 or in_channels != out_channels:
        projection = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
            nn.BatchNorm2d(out_channels))
    return nn.Sequential(nn.Residual(body, projection), nn.ReLU())


class ResNet20(nn.Sequential):
    """He et al.'s CIFAR ResNet-20: a 3x3 stem and three stages of three basic
    blocks (16, 32, 64 channels, the last two stages starting at stride 2),
    global average pooling and a linear classifier."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3, width: int = 16,
                 blocks_per_stage: int = 3):
        layers = [nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
                  nn.BatchNorm2d(width), nn.ReLU()]
        channels = width
        for stage in range(3):
            out = width * 2**stage
            for block in range(blocks_per_stage):
                stride = 2 if stage > 0 and block == 0 else 1
                layers.append(basic_block(channels, out, stride))
                channels = out
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes)]
        super().__init__(*layers)


class LSTMClassifier(nn.Module):
    """Reads a sequence (N, T, I) with a stacked LSTM and classifies its last
    hidden state with a linear layer."""

    def __init__(self, input_size: int, hidden_size: int, num_classes: int,
                 num_layers: int = 1):
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers, batch_first=True)
        self.fc = nn.Linear(hidden_size, num_classes)
        self._seq_shape = None

    def forward(self, x):
        y, _ = self.lstm(x)
        self._seq_shape = y.shape
        return self.fc(array_module(y).ascontiguousarray(y[:, -1]))

    def backward(self, dlogits):
        shape = self._saved(self._seq_shape)
        dy = array_module(dlogits).zeros(shape, np.float32)
        dy[:, -1] = self.fc.backward(dlogits)
        return self.lstm.backward(dy)
