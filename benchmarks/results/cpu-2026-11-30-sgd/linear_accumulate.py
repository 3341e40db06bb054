import numpy as np, pykernels
import pykernels.functional as F
from pykernels.bench.timing import interleaved_medians, pinned_threads
rng=np.random.default_rng(0)
for (i,o) in [(9216,4096),(4096,4096)]:
    x=rng.standard_normal((8,i),dtype=np.float32); w=rng.standard_normal((o,i),dtype=np.float32)*0.01
    dy=rng.standard_normal((8,o),dtype=np.float32); grad=np.zeros_like(w)
    def old():
        dx,dw,db=F.linear_backward(dy,x,w); grad.__iadd__(dw)
    def new():
        dx=F.gemm(dy,w); F.gemm(dy,x,grad,beta=1.0,trans_a=True); dy.sum(axis=0,dtype=np.float32)
    with pinned_threads(2):
        med=interleaved_medians({"old":old,"new":new},repeats=9)
    print(i,o,{k:round(v*1e3,1) for k,v in med.items()}, "gain", round(med["old"]/med["new"],2))
