"""Data: the 8x8 digits that ship with the package, a reader for MNIST-format
IDX files, a seeded train/test split, normalisation and shuffled batches."""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def load_digits():
    """The UCI 8x8 handwritten digits (as bundled with scikit-learn, BSD
    licence; see datasets/DIGITS_LICENSE.txt): images (1797, 8, 8) float32 in
    [0, 16] and labels (1797,) int64."""
    raw = resources.files("pykernels.datasets").joinpath("digits.csv.gz").read_bytes()
    table = np.loadtxt(gzip.decompress(raw).decode().splitlines(), delimiter=",")
    return table[:, :64].reshape(-1, 8, 8).astype(np.float32), table[:, 64].astype(np.int64)


def read_idx(path) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzipped or not."""
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path}: not an IDX file (bad magic number)")
    dtype, ndim = np.dtype(_IDX_DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * d: 8 + 4 * d], "big") for d in range(ndim))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(f"{path}: expected {expected} bytes of data for shape {shape}, "
                         f"found {len(raw) - header}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def load_mnist(directory, split: str = "train"):
    """MNIST from the four standard IDX files in `directory` (optionally .gz):
    images (N, 28, 28) float32 in [0, 255], labels int64."""
    prefix = {"train": "train", "test": "t10k"}[split]
    directory = Path(directory)

    def find(stem):
        for name in (stem, stem + ".gz"):
            if (directory / name).exists():
                return directory / name
        raise FileNotFoundError(f"{directory / stem}[.gz] not found")

    images = read_idx(find(f"{prefix}-images-idx3-ubyte")).astype(np.float32)
    labels = read_idx(find(f"{prefix}-labels-idx1-ubyte")).astype(np.int64)
    return images, labels


def train_test_split(x, y, test_fraction: float = 0.2, seed: int = 0):
    """Shuffle with `seed` and hold out `test_fraction` of the samples."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(len(x) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]


@dataclass
class Normalizer:
    """Standardise with the training set's mean and standard deviation."""

    mean: float
    std: float

    @classmethod
    def fit(cls, x) -> "Normalizer":
        return cls(float(x.mean()), float(x.std()) or 1.0)

    def __call__(self, x):
        return ((x - self.mean) / self.std).astype(np.float32)


class Batches:
    """Mini-batches of (x, y), reshuffled every epoch from a fixed seed."""

    def __init__(self, x, y, batch_size: int, shuffle: bool = True, seed: int = 0,
                 drop_last: bool = False):
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} samples but y has {len(y)}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.x, self.y, self.batch_size = x, y, batch_size
        self.shuffle, self.drop_last = shuffle, drop_last
        self._rng = np.random.default_rng(seed)

    def __len__(self):
        full, rest = divmod(len(self.x), self.batch_size)
        return full if self.drop_last or not rest else full + 1

    def __iter__(self):
        order = self._rng.permutation(len(self.x)) if self.shuffle else np.arange(len(self.x))
        for start in range(0, len(order), self.batch_size):
            index = order[start:start + self.batch_size]
            if self.drop_last and len(index) < self.batch_size:
                return
            yield np.ascontiguousarray(self.x[index]), self.y[index]
