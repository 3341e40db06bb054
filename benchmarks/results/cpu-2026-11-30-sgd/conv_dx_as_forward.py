import numpy as np, pykernels
import pykernels.functional as F
from pykernels import _cpu
from pykernels.bench.timing import interleaved_medians, pinned_threads
import torch
rng=np.random.default_rng(0)
def toggled(flag, fn):
    def run():
        prev=_cpu.conv_dx_as_forward(flag)
        try: fn()
        finally: _cpu.conv_dx_as_forward(prev)
    return run
shapes=[(64,16,16,32,1,3),(64,32,32,16,1,3),(64,64,64,8,1,3),(16,64,192,27,2,5),(16,192,384,13,1,3),(16,384,256,13,1,3)]
for t in (1,2):
  for N,c,o,hw,p,k in shapes:
    x=rng.standard_normal((N,c,hw,hw),dtype=np.float32); w=rng.standard_normal((o,c,k,k),dtype=np.float32)*0.1
    dy=rng.standard_normal((N,o,hw,hw),dtype=np.float32)
    tx=torch.from_numpy(x).requires_grad_(); tw=torch.from_numpy(w).requires_grad_(); tdy=torch.from_numpy(dy)
    f=lambda: F.conv2d_backward(dy,x,w,padding=p,algo="im2col")
    def tb(): torch.ops.aten.convolution_backward(tdy, tx, tw, [o], [1,1],[p,p],[1,1],False,[0,0],1,[True,True,True])
    with pinned_threads(t):
        med=interleaved_medians({"as forward":toggled(True,f),"col2im":toggled(False,f),"torch":tb},repeats=7)
    print(f"t{t} N{N} {c}->{o} @{hw} k{k}", {k_:round(v*1e3,2) for k_,v in med.items()}, "gain", round(med["col2im"]/med["as forward"],2), "vs torch", round(med["torch"]/med["as forward"],2), "(col2im vs torch", round(med["torch"]/med["col2im"],2),")", flush=True)
