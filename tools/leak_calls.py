"""Calls every public op of pykernels.functional (forward and backward, plus
the error paths of the bindings) ROUNDS times on small inputs, for leak checks:

    python tools/leak_calls.py ROUNDS [--rss] [--control-leak]

Under LeakSanitizer (tools/sanitize.sh) the process exit reports what was
never freed. With --rss it prints the resident set size after a warm-up and
after the rounds (KiB) as JSON, for the cheap RSS-growth test.
"""

from __future__ import annotations

import json
import sys

import numpy as np

import pykernels.functional as F
from pykernels import _cpu


def _inputs():
    rng = np.random.default_rng(3)

    def a(*shape):
        return rng.uniform(-1, 1, shape).astype(np.float32)

    x, w, dy = a(2, 3, 9, 9), a(4, 3, 3, 3), a(2, 4, 5, 5)
    seq, h0, c0, w_ih, w_hh = a(3, 2, 5), a(2, 4), a(2, 4), a(16, 5), a(16, 4)
    logits, labels = a(6, 5), rng.integers(0, 5, 6)
    return dict(x=x, w=w, dy=dy, seq=seq, h0=h0, c0=c0, w_ih=w_ih, w_hh=w_hh, logits=logits,
                labels=labels, a=a(17, 9), b=a(9, 13), bias=a(4), lin_w=a(4, 9))


def calls(d):
    """(name, thunk) for every op; the last few fail on purpose inside the
    binding (exception paths must not leak either)."""
    y, idx = F.max_pool2d(d["x"], 3, 2, 1)
    _, mean, invstd = F.batch_norm(d["x"], None, None, None, None, True)
    _, mask = F.dropout(d["x"], 0.5, seed=1)
    _, probs = F.cross_entropy(d["logits"], d["labels"])
    _, _, gates = F.lstm_cell(d["seq"][0], d["h0"], d["c0"], d["w_ih"], d["w_hh"])
    _, _, _, cache = F.lstm(d["seq"], d["h0"], d["c0"], d["w_ih"], d["w_hh"])
    cols = F.im2col(d["x"], 3, 2, 1)
    dy_same = np.ones(F.conv2d(d["x"], d["w"], None, 1, 1).shape, np.float32)
    param, grad, velocity = (np.full(50, v, np.float32) for v in (1.0, 0.5, 0.0))
    bad = np.ones(3, np.float32)

    def expect_error(fn):
        try:
            fn()
        except (ValueError, TypeError):
            return
        raise AssertionError("expected an error")

    return [
        ("relu", lambda: F.relu(d["x"])),
        ("relu_backward", lambda: F.relu_backward(d["x"], d["x"])),
        ("gemm", lambda: F.gemm(d["a"], d["b"])),
        ("linear", lambda: F.linear(d["a"], d["lin_w"], d["bias"])),
        ("linear_backward", lambda: F.linear_backward(d["a"][:, :4], d["a"], d["lin_w"])),
        ("conv2d", lambda: F.conv2d(d["x"], d["w"], d["bias"], 2, 1)),
        ("conv2d_backward", lambda: F.conv2d_backward(d["dy"], d["x"], d["w"], 2, 1)),
        # stride 1: dx as the forward convolution of dy with the flipped kernel
        ("conv2d_backward-stride-1", lambda: F.conv2d_backward(dy_same, d["x"], d["w"], 1, 1)),
        ("im2col", lambda: F.im2col(d["x"], 3, 2, 1)),
        ("col2im", lambda: F.col2im(cols, d["x"].shape, 3, 2, 1)),
        ("max_pool2d", lambda: F.max_pool2d(d["x"], 3, 2, 1)),
        ("max_pool2d_backward", lambda: F.max_pool2d_backward(y, idx, d["x"].shape)),
        ("avg_pool2d", lambda: F.avg_pool2d(d["x"], 3, 2, 1)),
        ("avg_pool2d_backward", lambda: F.avg_pool2d_backward(y, d["x"].shape, 3, 2, 1)),
        ("adaptive_avg_pool2d", lambda: F.adaptive_avg_pool2d(d["x"], 4)),
        ("adaptive_avg_pool2d_backward",
         lambda: F.adaptive_avg_pool2d_backward(y[:, :, :4, :4], d["x"].shape)),
        ("batch_norm", lambda: F.batch_norm(d["x"], None, None, None, None, True)),
        ("batch_norm_backward", lambda: F.batch_norm_backward(d["x"], d["x"], None, mean, invstd)),
        ("dropout", lambda: F.dropout(d["x"], 0.5, seed=2)),
        ("dropout_backward", lambda: F.dropout_backward(d["x"], mask, 0.5)),
        ("cross_entropy", lambda: F.cross_entropy(d["logits"], d["labels"])),
        ("cross_entropy_backward", lambda: F.cross_entropy_backward(probs, d["labels"])),
        ("lstm_cell", lambda: F.lstm_cell(d["seq"][0], d["h0"], d["c0"], d["w_ih"], d["w_hh"])),
        ("lstm_cell_backward", lambda: F.lstm_cell_backward(d["h0"], d["c0"], d["seq"][0],
                                                            d["h0"], d["c0"], d["w_ih"],
                                                            d["w_hh"], gates)),
        ("lstm", lambda: F.lstm(d["seq"], d["h0"], d["c0"], d["w_ih"], d["w_hh"])),
        ("lstm_backward", lambda: F.lstm_backward(cache.y, d["h0"], d["c0"], cache)),
        ("sgd_step", lambda: F.sgd_step(param, grad, velocity, lr=1e-3, momentum=0.9,
                                        nesterov=True, weight_decay=1e-4)),
        ("binding-error-conv", lambda: expect_error(
            lambda: _cpu.conv2d_forward(d["x"], d["w"], None, bad, (1, 1), (0, 0), (1, 1), 1))),
        ("binding-error-gemm", lambda: expect_error(
            lambda: _cpu.gemm(d["a"], d["a"], bad.reshape(1, 3), 1.0, 0.0, False, False, "auto"))),
        ("binding-error-pool", lambda: expect_error(
            lambda: _cpu.max_pool2d_backward(y, idx + 10**6, np.empty_like(d["x"])))),
    ]


def _rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4


def count_ours(log_path):
    """Leak records (LeakSanitizer or valgrind "definitely lost") whose stack
    has a pykernels frame; the interpreter's own exit-time leaks do not count."""
    import re

    text = open(log_path).read()
    records = re.split(r"\n(?=(?:==\d+== )?(?:Direct|Indirect) leak of|==\d+== \S.* definitely lost)",
                       text)
    mine = [r for r in records if ("leak of" in r or "definitely lost" in r)
            and re.search(r"pk::|_cpu\.cpython", r)]
    for r in mine[:5]:
        print(r[:3000], file=sys.stderr)
    return len(mine)


def main(argv):
    if argv[1:2] == ["--count-ours"]:
        print(count_ours(argv[2]))
        return
    rounds = int(argv[1]) if len(argv) > 1 else 1000
    todo = calls(_inputs())
    for _ in range(min(rounds, 200)):  # warm-up: allocator pools, caches, lazy imports
        for _, fn in todo:
            fn()
    before = _rss_kib()
    for _ in range(rounds):
        for _, fn in todo:
            fn()
    after = _rss_kib()
    if "--control-leak" in argv:  # a known leak, to prove the leak checker works
        import ctypes

        libc = ctypes.CDLL(None)
        libc.malloc.restype = ctypes.c_void_p
        for _ in range(16):  # one pointer may linger in a register or on the stack
            libc.malloc(4321)
    if "--rss" in argv:
        print(json.dumps({"ops": len(todo), "rounds": rounds, "rss_before_kib": before,
                          "rss_after_kib": after}))
    else:
        print(f"{len(todo)} ops x {rounds} rounds; RSS {before} -> {after} KiB")


if __name__ == "__main__":
    main(sys.argv)
