"""Where a ResNet-20 training step (batch 64) spends its time: pykernels per
leaf layer (forward and backward wrapped with timers, summed by layer kind,
mean of 5 steps) and PyTorch's twin per aten op and input shape (profiler
self time). `python resnet_layer_profile.py THREADS [im2col]`; `im2col` runs
pykernels with `_cpu.conv_dw_from_image(False)`."""
import sys, time, collections
import numpy as np
import torch
from pykernels import models, nn
from pykernels.bench.training import sgd_step, _torch_step
from pykernels.bench.torch_twin import to_torch, copy_weights
from pykernels.bench.timing import pinned_threads

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
if 'im2col' in sys.argv[2:]:
    from pykernels import _cpu
    _cpu.conv_dw_from_image(False)
acc = collections.defaultdict(float)

def key(m):
    if isinstance(m, nn.Conv2d):
        return f"conv {m.weight.shape[1]}->{m.weight.shape[0]} k{m.weight.shape[2]} s{m.stride}"
    return type(m).__name__

def wrap(m):
    f, b = m.forward, m.backward
    k = key(m)
    def fw(x):
        t = time.perf_counter(); r = f(x); acc[k + " fwd"] += time.perf_counter() - t; return r
    def bw(dy):
        t = time.perf_counter(); r = b(dy); acc[k + " bwd"] += time.perf_counter() - t; return r
    m.forward, m.backward = fw, bw

nn.manual_seed(0)
model = models.ResNet20(10, 3); model.train()
rng = np.random.default_rng(0)
x = rng.standard_normal((64, 3, 32, 32), dtype=np.float32); y = rng.integers(0, 10, 64)
twin = to_torch(model, torch); copy_weights(model, twin, torch); twin.train()
leaves = [m for m in model.modules() if not list(m.children())]
for m in leaves: wrap(m)
step = sgd_step(model, x, y)
tstep = _torch_step(torch, twin, x, y)
with pinned_threads(threads):
    for _ in range(2): step(); tstep()
    acc.clear(); reps = 5
    t0 = time.perf_counter()
    for _ in range(reps): step()
    ours_total = (time.perf_counter() - t0) / reps
    from torch.profiler import profile, ProfilerActivity
    t0 = time.perf_counter()
    for _ in range(reps): tstep()
    torch_total = (time.perf_counter() - t0) / reps
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(reps): tstep()
print(f"threads {threads}: ours step {ours_total*1e3:.1f} ms, torch step {torch_total*1e3:.1f} ms")
for k, v in sorted(acc.items(), key=lambda kv: -kv[1]):
    print(f"  {k:32s} {v/reps*1e3:8.2f} ms")
print(f"  {'(outside leaves)':32s} {(ours_total - sum(acc.values())/reps)*1e3:8.2f} ms")
for e in prof.key_averages(group_by_input_shape=True):
    if e.key in ("aten::convolution_backward", "aten::mkldnn_convolution", "aten::native_batch_norm", "aten::native_batch_norm_backward"):
        print(f"  {e.key:32s} {str(e.input_shapes[:2])[:70]:70s} {e.self_cpu_time_total/reps/1e3:8.2f} ms  n={e.count//reps}")
