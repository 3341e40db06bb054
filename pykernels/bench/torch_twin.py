"""The PyTorch twin of a pykernels network: same structure, same parameter
names, so a state dict copies across key by key. Used by the equivalence
tests and by the training-step benchmark; imports torch only when called."""

from __future__ import annotations

from .. import models, nn


def _simple_twins(tnn):
    return {
        nn.ReLU: lambda m: tnn.ReLU(),
        nn.Flatten: lambda m: tnn.Flatten(),
        nn.Dropout: lambda m: tnn.Dropout(m.p),
        nn.MaxPool2d: lambda m: tnn.MaxPool2d(m.kernel_size, m.stride, m.padding),
        nn.AvgPool2d: lambda m: tnn.AvgPool2d(m.kernel_size, m.stride, m.padding),
        nn.AdaptiveAvgPool2d: lambda m: tnn.AdaptiveAvgPool2d(m.output_size),
        nn.Linear: lambda m: tnn.Linear(m.in_features, m.out_features, m.bias is not None),
        nn.Conv2d: lambda m: tnn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride,
                                        m.padding, m.dilation, m.groups, m.bias is not None),
        nn.BatchNorm2d: lambda m: tnn.BatchNorm2d(m.num_features, m.eps, m.momentum),
        nn.BatchNorm1d: lambda m: tnn.BatchNorm1d(m.num_features, m.eps, m.momentum),
    }


def to_torch(module, torch):
    """Build the PyTorch twin of `module` (weights not copied: see copy_weights)."""
    tnn = torch.nn
    simple = _simple_twins(tnn)
    if type(module) in simple:
        return simple[type(module)](module)
    if isinstance(module, nn.Sequential):
        return tnn.Sequential(*[to_torch(m, torch) for m in module])
    if isinstance(module, nn.Residual):
        class TorchResidual(tnn.Module):
            def __init__(self, block, projection):
                super().__init__()
                self.block, self.projection = block, projection

            def forward(self, x):
                return self.block(x) + (x if self.projection is None else self.projection(x))

        proj = None if module.projection is None else to_torch(module.projection, torch)
        return TorchResidual(to_torch(module.block, torch), proj)
    if isinstance(module, models.AlexNet):
        twin = tnn.Module()
        for name in ("features", "avgpool", "flatten", "classifier"):
            setattr(twin, name, to_torch(getattr(module, name), torch))
        twin.forward = lambda x: twin.classifier(twin.flatten(twin.avgpool(twin.features(x))))
        return twin
    if isinstance(module, models.LSTMClassifier):
        twin = tnn.Module()
        twin.lstm = tnn.LSTM(module.lstm.input_size, module.lstm.hidden_size,
                             module.lstm.num_layers, batch_first=True)
        twin.fc = tnn.Linear(module.fc.in_features, module.fc.out_features)
        twin.forward = lambda x: twin.fc(twin.lstm(x)[0][:, -1])
        return twin
    raise TypeError(f"no torch twin for {type(module).__name__}")


def copy_weights(ours, theirs, torch) -> None:
    """Load our state dict into the twin (torch's BN step counters aside)."""
    state = {k: torch.from_numpy(v) for k, v in ours.state_dict().items()}
    missing, unexpected = theirs.load_state_dict(state, strict=False)
    if unexpected or not all(k.endswith("num_batches_tracked") for k in missing):
        raise ValueError(f"state dicts differ: missing {missing}, unexpected {unexpected}")
