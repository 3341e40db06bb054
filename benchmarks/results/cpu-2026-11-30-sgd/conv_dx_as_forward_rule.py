import numpy as np, pykernels
import pykernels.functional as F
from pykernels import _cpu
from pykernels.bench.timing import interleaved_medians, pinned_threads
rng=np.random.default_rng(0)
def toggled(flag, fn):
    def run():
        prev=_cpu.conv_dx_as_forward(flag)
        try: fn()
        finally: _cpu.conv_dx_as_forward(prev)
    return run
for (N,c,o,hw,k,p) in [(64,1,6,32,5,0),(64,6,16,14,5,0),(64,3,16,32,3,1),(64,16,16,32,3,1),(64,32,32,16,3,1),(64,64,64,8,3,1)]:
    x=rng.standard_normal((N,c,hw,hw),dtype=np.float32); w=rng.standard_normal((o,c,k,k),dtype=np.float32)
    oh=hw+2*p-k+1
    dy=rng.standard_normal((N,o,oh,oh),dtype=np.float32)
    f=lambda: F.conv2d_backward(dy,x,w,padding=p,algo="im2col")
    with pinned_threads(2):
        med=interleaved_medians({"as forward":toggled(True,f),"col2im":toggled(False,f)},repeats=7)
    print(f"N{N} {c}->{o} @{hw} k{k} p{p}", {k_:round(v*1e3,2) for k_,v in med.items()}, "gain", round(med["col2im"]/med["as forward"],2), flush=True)
