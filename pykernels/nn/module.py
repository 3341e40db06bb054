"""Module and Parameter: the bookkeeping every layer shares.

A Module registers Parameters, buffers (running statistics) and child
Modules as attributes are set, as torch.nn.Module does; parameters(),
zero_grad(), train()/eval(), to(device) and state_dict() walk that tree.
Forward and backward are explicit: forward(x) keeps what backward needs,
backward(dy) returns dx and adds into each parameter's .grad.
"""

from __future__ import annotations

import zipfile
from collections import OrderedDict
from typing import Iterator, Tuple

import numpy as np

from .._backend import is_host_array


def array_module(device: str):
    """NumPy for 'cpu', CuPy for 'cuda'."""
    if device == "cpu":
        return np
    if device == "cuda":
        from .. import cuda

        if not cuda.is_available():
            raise RuntimeError("to('cuda') needs a usable CUDA GPU and CuPy")
        import cupy

        return cupy
    raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")


def move(array, device: str):
    if device == "cpu":
        return array if is_host_array(array) else array.get()
    return array_module("cuda").asarray(array)


class Parameter:
    """A trainable array and the gradient accumulated into it."""

    def __init__(self, data):
        self.data = np.ascontiguousarray(data, dtype=np.float32)
        self.grad = np.zeros_like(self.data)

    @property
    def shape(self):
        return self.data.shape

    def to(self, device: str) -> "Parameter":
        self.data = move(self.data, device)
        self.grad = move(self.grad, device)
        return self

    def __repr__(self):
        return f"Parameter(shape={self.data.shape})"


class Module:
    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", [])  # names of non-trainable arrays
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "device", "cpu")

    # -- registration -----------------------------------------------------
    def __setattr__(self, name, value):
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def register_buffer(self, name: str, array) -> None:
        if name not in self._buffers:
            self._buffers.append(name)
        object.__setattr__(self, name, np.ascontiguousarray(array, dtype=np.float32))

    # -- calling ------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, x):
        raise NotImplementedError

    def backward(self, dy):
        raise NotImplementedError

    def _saved(self, value):
        """What forward saved for backward, or a clear error before forward."""
        if value is None:
            raise RuntimeError(f"{self._name()}.backward called before forward "
                               "(or forward ran in a mode that keeps nothing)")
        return value

    def _name(self) -> str:
        return type(self).__name__

    # -- traversal ----------------------------------------------------------
    def children(self):
        return iter(self._modules.values())

    def modules(self):
        """This module, then every module inside it, depth first (as torch's)."""
        yield self
        for child in self.children():
            yield from child.modules()

    def named_parameters(self, prefix: str = "") -> Iterator[Tuple[str, Parameter]]:
        for name, param in self._parameters.items():
            yield prefix + name, param
        for child_name, child in self._modules.items():
            yield from child.named_parameters(f"{prefix}{child_name}.")

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix: str = ""):
        for name in self._buffers:
            yield prefix + name, getattr(self, name)
        for child_name, child in self._modules.items():
            yield from child.named_buffers(f"{prefix}{child_name}.")

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad[...] = 0

    def train(self, mode: bool = True) -> "Module":
        object.__setattr__(self, "training", mode)
        for child in self.children():
            child.train(mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def to(self, device: str) -> "Module":
        array_module(device)  # validates the name and the GPU
        for p in self._parameters.values():
            p.to(device)
        for name in self._buffers:
            object.__setattr__(self, name, move(getattr(self, name), device))
        object.__setattr__(self, "device", device)
        for child in self.children():
            child.to(device)
        return self

    # -- weights --------------------------------------------------------------
    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """Parameters and buffers by dotted name, as NumPy copies."""
        state = OrderedDict()
        for name, p in self.named_parameters():
            state[name] = move(p.data, "cpu").copy()
        for name, b in self.named_buffers():
            state[name] = move(b, "cpu").copy()
        return state

    def load_state_dict(self, state) -> None:
        """Copy arrays into this module; every key must match, with its shape."""
        own = self.state_dict()
        missing = [k for k in own if k not in state]
        extra = [k for k in state if k not in own]
        wrong = [f"{k}: expected {own[k].shape}, got {tuple(np.shape(state[k]))}"
                 for k in own if k in state and tuple(np.shape(state[k])) != own[k].shape]
        problems = []
        if missing:
            problems.append(f"missing keys {missing}")
        if extra:
            problems.append(f"unexpected keys {extra}")
        if wrong:
            problems.append("wrong shapes: " + "; ".join(wrong))
        if problems:
            raise ValueError(f"cannot load state into {self._name()}: " + ", ".join(problems))
        params = dict(self.named_parameters())
        for name, value in state.items():
            value = np.asarray(value, dtype=np.float32)
            if name in params:
                params[name].data[...] = move(value, self.device)
            else:
                owner, attr = self._locate(name)
                getattr(owner, attr)[...] = move(value, self.device)

    def _locate(self, dotted: str):
        *path, attr = dotted.split(".")
        owner = self
        for part in path:
            owner = owner._modules[part]
        return owner, attr

    def save(self, path) -> None:
        """Write the state dict as a .npz of plain float32 arrays (no pickle)."""
        np.savez(path, **self.state_dict())

    def load(self, path) -> None:
        """Read weights written by save(). Names, shapes and dtypes are checked
        from the array headers before any data is read; pickled objects and
        anything that is not a plain numeric array are refused."""
        self.load_state_dict(read_weights(path, self.state_dict()))

    # -- display --------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self):
        if not self._modules:
            return f"{self._name()}({self.extra_repr()})"
        lines = [f"  ({name}): " + repr(m).replace("\n", "\n  ")
                 for name, m in self._modules.items()]
        return f"{self._name()}(\n" + "\n".join(lines) + "\n)"


def _array_header(member):
    """(shape, dtype) from a .npy member's header, parsed without running it."""
    version = np.lib.format.read_magic(member)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(member)
    else:
        shape, _, dtype = np.lib.format.read_array_header_2_0(member)
    return shape, dtype


def read_weights(path, expected) -> dict:
    """The arrays of the .npz at `path`, after checking every member's name,
    shape and dtype against `expected` (name -> array) from the headers alone,
    so a hostile file can neither run code nor make us allocate its claims."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = {name[:-4]: name for name in archive.namelist()}
            bad = [n for n in archive.namelist() if not n.endswith(".npy")]
            if bad:
                raise ValueError(f"members {bad} are not .npy arrays")
            problems = []
            for key, name in members.items():
                with archive.open(name) as member:
                    shape, dtype = _array_header(member)
                if dtype.kind not in "fiu":
                    problems.append(f"{key!r} has dtype {dtype}, expected numbers")
                elif key in expected and tuple(shape) != expected[key].shape:
                    problems.append(f"{key}: expected {expected[key].shape}, got {tuple(shape)}")
            missing = [k for k in expected if k not in members]
            extra = [k for k in members if k not in expected]
            if missing:
                problems.append(f"missing keys {missing}")
            if extra:
                problems.append(f"unexpected keys {extra}")
            if problems:
                raise ValueError("; ".join(problems))
            state = {}
            for key, name in members.items():
                with archive.open(name) as member:
                    state[key] = np.lib.format.read_array(member, allow_pickle=False)
            return state
    except FileNotFoundError:
        raise
    except (ValueError, OSError, EOFError, KeyError, NotImplementedError, RuntimeError,
            zipfile.BadZipFile) as exc:
        raise ValueError(f"{path}: not a valid weight file for this model ({exc})") from None
