import gzip

import numpy as np
import pytest

from pykernels import data


def test_digits_ship_with_the_package():
    x, y = data.load_digits()
    assert x.shape == (1797, 8, 8) and x.dtype == np.float32
    assert y.shape == (1797,) and set(np.unique(y)) == set(range(10))
    assert 0 <= x.min() and x.max() == 16


def write_idx(path, array, type_code):
    header = bytes([0, 0, type_code, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.tobytes())


def test_idx_reader_round_trip(tmp_path):
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    labels = np.array([3, 7], np.uint8)
    write_idx(tmp_path / "train-images-idx3-ubyte", images, 0x08)
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(bytes([0, 0, 8, 1]) + (2).to_bytes(4, "big") + labels.tobytes()))
    x, y = data.load_mnist(tmp_path)
    np.testing.assert_array_equal(x, images.astype(np.float32))
    np.testing.assert_array_equal(y, [3, 7])
    floats = np.linspace(0, 1, 6, dtype=">f4").reshape(2, 3)
    write_idx(tmp_path / "f.idx", floats, 0x0D)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "f.idx"), floats)


def test_idx_reader_refuses_bad_files(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="magic"):
        data.read_idx(tmp_path / "bad")
    write_idx(tmp_path / "short", np.zeros((4, 4), np.uint8), 0x08)
    (tmp_path / "short").write_bytes((tmp_path / "short").read_bytes()[:-3])
    with pytest.raises(ValueError, match="expected 16 bytes"):
        data.read_idx(tmp_path / "short")


def test_split_normalise_and_batches():
    x, y = np.arange(100, dtype=np.float32).reshape(50, 2), np.arange(50)
    xtr, ytr, xte, yte = data.train_test_split(x, y, 0.2, seed=3)
    assert len(xte) == 10 and len(xtr) == 40
    assert sorted(np.concatenate([ytr, yte]).tolist()) == list(range(50))
    again = data.train_test_split(x, y, 0.2, seed=3)
    np.testing.assert_array_equal(again[3], yte)
    norm = data.Normalizer.fit(xtr)
    assert abs(norm(xtr).mean()) < 1e-5 and abs(norm(xtr).std() - 1) < 1e-5
    batches = data.Batches(xtr, ytr, 16, seed=1)
    assert len(batches) == 3
    seen = np.concatenate([yb for _, yb in batches])
    assert sorted(seen.tolist()) == sorted(ytr.tolist())
    first = [yb.tolist() for _, yb in data.Batches(xtr, ytr, 16, seed=1)]
    assert first == [yb.tolist() for _, yb in data.Batches(xtr, ytr, 16, seed=1)]
