"""Weight files: Module.load on truncated, malformed and hostile .npz files
raises a clear error and leaves the module as it was; nothing in a weight
file is ever executed (pickled object arrays are refused before unpickling).
"""

from __future__ import annotations

import io
import os
import zipfile

import numpy as np
import pytest

from pykernels import nn

# What a failed load may raise: each says what is wrong with the file.
CLEAR = (ValueError, OSError, EOFError, zipfile.BadZipFile)


def _model():
    nn.manual_seed(3)
    return nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1))


def _snapshot(model):
    return {k: v.copy() for k, v in model.state_dict().items()}


def _assert_unchanged(model, before):
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k], err_msg=f"{k} changed by a failed load")


@pytest.fixture
def good(tmp_path):
    path = tmp_path / "good.npz"
    _model().save(path)
    return path


def _expect_refused(model, path, match=None):
    before = _snapshot(model)
    with pytest.raises(CLEAR) as err:
        model.load(path)
    assert str(err.value), "the error must say something"
    if match:
        assert match in str(err.value), str(err.value)
    _assert_unchanged(model, before)
    return err.value


def test_round_trip(good):
    model = _model()
    other = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1))
    other.load(good)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(other.state_dict()[k], v)


@pytest.mark.parametrize("keep", [0, 1, 4, 22, 30, 100, 0.5, -1, -22])
def test_truncated(good, tmp_path, keep):
    data = good.read_bytes()
    cut = int(len(data) * keep) if isinstance(keep, float) else keep
    path = tmp_path / "truncated.npz"
    path.write_bytes(data[:cut])
    _expect_refused(nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1)), path)


@pytest.mark.parametrize("seed", range(5))
def test_random_bytes_and_flipped_bytes(good, tmp_path, seed):
    rng = np.random.default_rng(seed)
    path = tmp_path / "noise.npz"
    path.write_bytes(rng.integers(0, 256, 2000, dtype=np.uint8).tobytes())
    _expect_refused(_model(), path)
    data = bytearray(good.read_bytes())
    for pos in rng.integers(0, len(data), 20):  # corrupt the archive here and there
        data[pos] ^= 0xFF
    path.write_bytes(bytes(data))
    model = _model()
    try:
        model.load(path)  # a flip inside padding may go unnoticed, and is harmless
    except CLEAR:
        pass


def _zip(path, members):
    with zipfile.ZipFile(path, "w") as z:
        for name, payload in members.items():
            z.writestr(name, payload)


def _npy(array, **kwargs):
    buf = io.BytesIO()
    np.save(buf, array, **kwargs)
    return buf.getvalue()


class Exploit:
    """Unpickling this runs code: it creates the file named by `marker`."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickled_object_array_is_never_unpickled(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "hostile.npz"
    payload = np.array([Exploit(marker)], dtype=object)
    np.savez(path, **{"0.weight": payload, "0.bias": np.zeros(2, np.float32)})
    model = _model()
    _expect_refused(model, path)
    assert not marker.exists(), "loading executed code from the weight file"
    # the same payload in a member that is not even a parameter name
    _zip(path, {"evil.npy": _npy(payload, allow_pickle=True)})
    _expect_refused(model, path)
    assert not marker.exists()


def test_raw_pickle_member_is_never_unpickled(tmp_path):
    import pickle

    marker = tmp_path / "pwned2"
    path = tmp_path / "hostile.npz"
    _zip(path, {"0.weight.npy": pickle.dumps(Exploit(marker))})  # not even a .npy header
    _refused_without_running(path, marker)


def test_member_with_bad_magic(tmp_path):
    marker = tmp_path / "never"
    path = tmp_path / "w.npz"
    ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"
    _zip(path, {"0.weight.npy": b"\x93NUMPX" + _raw_npy(ok)[6:]})
    _refused_without_running(path, marker)


def _refused_without_running(path, marker):
    model = _model()
    before = _snapshot(model)
    error = None
    try:
        model.load(path)
    except Exception as exc:  # noqa: BLE001 - which one is the point of the test
        error = exc
    assert not marker.exists(), "loading executed code from the weight file"
    _assert_unchanged(model, before)
    assert isinstance(error, CLEAR), f"not a clear error: {error!r}"


@pytest.mark.parametrize("bad", [
    np.array([["a", "b", "c"], ["d", "e", "f"]]),              # strings
    np.zeros((2, 3), dtype=[("x", "<f4")]),                      # structured
    np.zeros((2, 3), np.complex64),                              # complex
    np.zeros((2, 3), np.bool_),                                  # booleans
    np.zeros((2, 3), "datetime64[s]"),                           # dates
], ids=["str", "structured", "complex", "bool", "datetime"])
def test_non_numeric_dtypes_refused(tmp_path, bad):
    model = _model()
    state = {k: v.copy() for k, v in model.state_dict().items()}
    state["0.weight"] = bad
    path = tmp_path / "w.npz"
    np.savez(path, **state)
    _expect_refused(model, path, "0.weight")


def test_wrong_names_and_shapes_named(tmp_path):
    model = _model()
    state = dict(model.state_dict())
    state["0.weight"] = np.zeros((5, 5), np.float32)
    state["../../etc/passwd"] = np.zeros(1, np.float32)  # a path-like name is just a key
    del state["2.bias"]
    path = tmp_path / "w.npz"
    np.savez(path, **state)
    err = _expect_refused(model, path)
    msg = str(err)
    assert "0.weight" in msg and "2.bias" in msg and "../../etc/passwd" in msg
    assert not os.path.exists(tmp_path / "etc")


def _raw_npy(header: str, data: bytes = b"\0" * 24) -> bytes:
    """A version 1.0 .npy with `header` as its (unchecked) header text."""
    text = header.encode("latin1")
    text += b" " * (-(10 + len(text) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text + data


def test_bad_npy_headers(tmp_path):
    model = _model()
    marker = tmp_path / "pwned3"
    others = {f"{k}.npy": _npy(v) for k, v in model.state_dict().items() if k != "0.weight"}
    path = tmp_path / "w.npz"
    ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"
    cases = {
        "header not a dict": _raw_npy("['descr', '<f4']"),
        "code in header": _raw_npy(f"{{'descr': __import__('os').system('touch {marker}'), "
                                   "'fortran_order': False, 'shape': (2, 3), }"),
        "object dtype": _raw_npy("{'descr': '|O', 'fortran_order': False, 'shape': (2, 3), }"),
        "huge shape": _raw_npy("{'descr': '<f4', 'fortran_order': False, "
                               "'shape': (2, 3000000000000), }"),
        "negative shape": _raw_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }"),
        "data short": _raw_npy(ok, b"\0" * 16),
        "unknown dtype": _raw_npy("{'descr': '<q9', 'fortran_order': False, 'shape': (2, 3), }"),
    }
    for label, member in cases.items():
        _zip(path, {"0.weight.npy": member, **others})
        before = _snapshot(model)
        with pytest.raises(CLEAR + (MemoryError,)) as err:
            model.load(path)
        assert str(err.value), label
        _assert_unchanged(model, before)
    assert not marker.exists()
    _zip(path, {"0.weight.npy": _raw_npy(ok), **others})  # the well-formed control
    model.load(path)
    assert not model.state_dict()["0.weight"].any()


def test_other_byte_orders_and_layouts_load_correctly(tmp_path):
    """Valid but unusual encodings are read as the numbers they hold."""
    model = _model()
    state = model.state_dict()
    varied = {k: (v.astype(">f4") if i % 2 else np.asfortranarray(v.astype(np.float64)))
              for i, (k, v) in enumerate(state.items())}
    path = tmp_path / "w.npz"
    np.savez(path, **varied)
    other = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1))
    other.load(path)
    for k, v in state.items():
        np.testing.assert_array_equal(other.state_dict()[k], v)


@pytest.mark.parametrize("what", ["missing", "directory", "empty"])
def test_not_a_file(tmp_path, what):
    path = {"missing": tmp_path / "nope.npz", "directory": tmp_path,
            "empty": tmp_path / "empty.npz"}[what]
    if what == "empty":
        path.write_bytes(b"")
    _expect_refused(_model(), path)


def test_header_claiming_a_huge_array_is_refused_before_reading(tmp_path):
    # 4 TB claimed in the header, a few bytes of data: the shape check on the
    # header must refuse it before anything is allocated or read.
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000,), }"
    path = tmp_path / "bomb.npz"
    _zip(path, {"0.weight.npy": _raw_npy(header) + b"\0" * 16})
    _refused_without_running(path, tmp_path / "never")
