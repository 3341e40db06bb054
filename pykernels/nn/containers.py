"""Sequential and Residual: composition, with backward running in reverse."""

from __future__ import annotations

from .module import Module


class Sequential(Module):
    def __init__(self, *layers: Module):
        super().__init__()
        for index, layer in enumerate(layers):
            setattr(self, str(index), layer)

    def __iter__(self):
        return iter(self._modules.values())

    def __len__(self):
        return len(self._modules)

    def __getitem__(self, index):
        return list(self._modules.values())[index]

    def forward(self, x):
        for layer in self:
            x = layer(x)
        return x

    def backward(self, dy):
        for layer in reversed(list(self)):
            dy = layer.backward(dy)
        return dy


class Residual(Module):
    """y = block(x) + shortcut(x), where shortcut is a projection module (for
    a change of shape) or the identity."""

    def __init__(self, block: Module, projection: Module | None = None):
        super().__init__()
        self.block = block
        self.projection = projection

    def forward(self, x):
        out = self.block(x)
        skip = x if self.projection is None else self.projection(x)
        if out.shape != skip.shape:
            raise ValueError(f"Residual: block output {tuple(out.shape)} and shortcut "
                             f"{tuple(skip.shape)} differ; give a projection")
        return out + skip

    def backward(self, dy):
        dx = self.block.backward(dy)
        return dx + (dy if self.projection is None else self.projection.backward(dy))
