"""Data-parallel training across processes on MPI (mpi4py), and an alpha-beta
cost model of ring allreduce.

Every rank holds a full copy of the model. Each global batch of B samples is
split across the p ranks; a rank runs forward and backward on its shard, then
the gradients are summed across ranks with MPI Allreduce and divided by p, so
every rank applies the same SGD step to the same weights.

- Gradients live in a few contiguous float32 buckets (about 25 MB each): each
  Parameter's .grad is rebound to a view of its bucket, so layers accumulate
  straight into the buffer that is reduced, in place (MPI.IN_PLACE), one
  Allreduce per bucket instead of one per tensor.
- Rank 0's weights and batch-norm buffers are broadcast at start.
- ShardedBatches: every rank draws the same permutation from a shared seed and
  takes its slice of each global batch.
- Unequal shards (a last batch that does not split evenly) stay exact: a rank
  with n_r of the N samples scales its loss gradient by n_r * p / N, so the
  average over ranks is the gradient of the mean loss over all N samples.
- SyncBatchNorm2d/1d average the batch mean and variance over all ranks in
  forward and the two per-channel sums that backward needs; plain BatchNorm
  stays per rank (as in PyTorch's DistributedDataParallel).
- CuPy arrays are reduced with NCCL through cupy.cuda.nccl when it is
  available, else staged through host memory and MPI. NOTE: the GPU paths
  have never run (no GPU where this was written); only the NumPy/MPI path is
  tested.

mpi4py is imported lazily, so `import pykernels` works without it; install
the `mpi` extra (`pip install "pykernels[mpi]"`, needs an MPI library such as
Debian's openmpi-bin + libopenmpi-dev).
"""

from __future__ import annotations

import math
import os
import sys
import time
import traceback
from dataclasses import dataclass, field

import numpy as np

from . import functional as F
from ._backend import is_host_array
from .nn.layers import BatchNorm1d, BatchNorm2d, _BatchNorm
from .nn.module import Module

DEFAULT_BUCKET_BYTES = 25 * 2**20


# -- MPI access ----------------------------------------------------------------
def is_available() -> bool:
    """True when mpi4py imports (it initialises MPI on first import)."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


def mpi():
    """The mpi4py.MPI module, or an ImportError that says what to install."""
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise ImportError("pykernels.distributed needs mpi4py: pip install 'pykernels[mpi]' "
                          "(and an MPI library, e.g. apt-get install openmpi-bin "
                          "libopenmpi-dev)") from exc
    return MPI


def world():
    return mpi().COMM_WORLD


def launched_by_mpi() -> bool:
    """True when an MPI launcher started this process (checked without
    initialising MPI, so a plain run never pays for it)."""
    keys = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS", "SLURM_PROCID")
    return any(k in os.environ for k in keys)


def local_size(comm) -> int:
    """How many ranks share this node (to split its cores between them)."""
    try:
        node = comm.Split_type(mpi().COMM_TYPE_SHARED)
    except Exception:  # an MPI without MPI-3 shared split: assume one rank per node
        return 1
    try:
        return node.Get_size()
    finally:
        node.Free()


def run_or_abort(main, comm=None):
    """Run main(); if it raises on any rank, print the error with the rank and
    abort every rank (MPI_Abort), so no rank hangs in a collective waiting for
    the one that failed."""
    try:
        return main()
    except SystemExit as exc:
        if exc.code in (None, 0):
            raise
        error = f"exit status {exc.code}"
    except BaseException as exc:  # noqa: BLE001 -- any failure must reach the other ranks
        error = f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
    comm = comm if comm is not None else world()
    sys.stdout.flush()
    print(f"pykernels.distributed: rank {comm.Get_rank()} of {comm.Get_size()} failed "
          f"({error}); aborting all ranks", file=sys.stderr, flush=True)
    comm.Abort(1)
    return 1  # only reached with a fake communicator


# -- CuPy / NCCL ---------------------------------------------------------------
def _is_cupy(array) -> bool:
    return type(array).__module__.startswith("cupy")


class _Nccl:
    """An NCCL communicator over the same ranks as an MPI communicator.
    UNTESTED: written without a GPU."""

    def __init__(self, comm):
        from cupy.cuda import nccl

        self.nccl = nccl
        uid = nccl.get_unique_id() if comm.Get_rank() == 0 else None
        uid = comm.bcast(uid, root=0)
        self.comm = nccl.NcclCommunicator(comm.Get_size(), uid, comm.Get_rank())

    def allreduce_sum(self, buffer):
        import cupy

        stream = cupy.cuda.get_current_stream().ptr
        self.comm.allReduce(buffer.data.ptr, buffer.data.ptr, buffer.size,
                            self.nccl.NCCL_FLOAT32, self.nccl.NCCL_SUM, stream)

    def bcast(self, buffer, root=0):
        import cupy

        stream = cupy.cuda.get_current_stream().ptr
        self.comm.bcast(buffer.data.ptr, buffer.size, self.nccl.NCCL_FLOAT32, root, stream)


def nccl_available() -> bool:
    try:
        from cupy.cuda import nccl
    except Exception:
        return False
    return getattr(nccl, "available", True)


class _Collectives:
    """In-place sum-allreduce and broadcast of float32 buffers: MPI on NumPy
    arrays, NCCL (or MPI through host copies) on CuPy arrays."""

    def __init__(self, comm):
        self.comm = comm
        self._nccl = None

    def _gpu(self):
        if self._nccl is None and nccl_available():
            self._nccl = _Nccl(self.comm)
        return self._nccl

    def allreduce_sum(self, buffer) -> None:
        if self.comm.Get_size() == 1:
            return None
        if _is_cupy(buffer):
            gpu = self._gpu()
            if gpu is not None:
                return gpu.allreduce_sum(buffer)
            host = buffer.get()
            self.comm.Allreduce(mpi().IN_PLACE, host, op=mpi().SUM)
            buffer.set(host)
            return None
        self.comm.Allreduce(mpi().IN_PLACE, buffer, op=mpi().SUM)
        return None

    def bcast(self, buffer, root: int = 0) -> None:
        if self.comm.Get_size() == 1:
            return None
        if _is_cupy(buffer):
            gpu = self._gpu()
            if gpu is not None:
                return gpu.bcast(buffer, root)
            host = buffer.get()
            self.comm.Bcast(host, root=root)
            buffer.set(host)
            return None
        self.comm.Bcast(buffer, root=root)
        return None


# -- gradient buckets ----------------------------------------------------------
class GradientBuckets:
    """The parameters' gradients packed into a few flat float32 buffers.

    Each Parameter's .grad becomes a view of its bucket, so backward's `+=`
    writes into the buffer that Allreduce reduces in place. A grad array that
    was replaced since (e.g. by Parameter.to) is copied in and rebound."""

    def __init__(self, params, collectives: _Collectives,
                 bucket_bytes: int = DEFAULT_BUCKET_BYTES, measure_wait: bool = False):
        if bucket_bytes < 4:
            raise ValueError(f"bucket_bytes must be >= 4, got {bucket_bytes}")
        self.params = list(params)
        self.collectives = collectives
        self.buckets = []   # flat buffers
        self.slots = []     # per bucket: [(param, its view of the bucket)]
        self.seconds = 0.0       # in allreduce_mean (includes waiting for slower ranks)
        self.wait_seconds = 0.0  # of which in a Barrier first (only with measure_wait)
        self.calls = 0
        self.measure_wait = measure_wait
        self._pack(bucket_bytes // 4)

    def _pack(self, bucket_elems: int) -> None:
        groups, current, filled = [], [], 0
        for p in self.params:
            if current and filled + p.grad.size > bucket_elems:
                groups.append(current)
                current, filled = [], 0
            current.append(p)
            filled += p.grad.size
        if current:
            groups.append(current)
        for group in groups:
            xp = sys.modules["cupy"] if _is_cupy(group[0].grad) else np
            flat = xp.zeros(sum(p.grad.size for p in group), dtype=xp.float32)
            slots, offset = [], 0
            for p in group:
                view = flat[offset:offset + p.grad.size].reshape(p.grad.shape)
                view[...] = p.grad
                p.grad = view
                slots.append((p, view))
                offset += view.size
            self.buckets.append(flat)
            self.slots.append(slots)

    def _rebind(self, index: int) -> None:
        for p, view in self.slots[index]:
            if p.grad is not view:
                view[...] = p.grad
                p.grad = view

    @property
    def nbytes(self) -> int:
        return sum(int(b.nbytes) for b in self.buckets)

    def allreduce_mean(self) -> None:
        """Average every gradient over the ranks, in place."""
        size = self.collectives.comm.Get_size()
        start = time.perf_counter()
        if self.measure_wait and size > 1:
            # Separates load imbalance (time until the slowest rank arrives)
            # from the transfer itself; costs one extra latency per step.
            self.collectives.comm.Barrier()
            self.wait_seconds += time.perf_counter() - start
        for index, flat in enumerate(self.buckets):
            self._rebind(index)
            self.collectives.allreduce_sum(flat)
            if size > 1:
                flat *= np.float32(1.0 / size)
        self.seconds += time.perf_counter() - start
        self.calls += 1


# -- synchronized batch norm -------------------------------------------------
class _SyncBatchNorm(_BatchNorm):
    """Batch norm whose training statistics are those of the global batch:
    per-channel count, sum and sum of squares are summed over the ranks (one
    small Allreduce, in float64) before normalising, and backward sums
    sum(dy) and sum(dy * xhat) the same way:

        dx = w * invstd * (dy - sum_all(dy) / M - xhat * sum_all(dy * xhat) / M)

    with M the global count per channel. dweight and dbias stay the local sums
    (the gradient allreduce averages them like any other gradient). In eval
    mode it is plain batch norm on the running statistics."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1,
                 affine: bool = True, comm=None):
        super().__init__(num_features, eps, momentum, affine)
        object.__setattr__(self, "comm", comm)

    def _axes(self, x):
        return (0,) + tuple(range(2, x.ndim))

    def _channel(self, v, ndim):
        return v.reshape((1, -1) + (1,) * (ndim - 2))

    def _allreduce(self, values):
        comm = self.comm if self.comm is not None else world()
        if comm.Get_size() > 1:
            comm.Allreduce(mpi().IN_PLACE, values, op=mpi().SUM)
        return values

    def forward(self, x):
        if not self.training:
            return super().forward(x)
        if x.ndim != self._expected_ndim or x.shape[1] != self.num_features:
            raise ValueError(f"{self!r}: expected input of shape "
                             f"{self._layout.replace('C', str(self.num_features))}, "
                             f"got {tuple(x.shape)}")
        if _is_cupy(x):
            raise NotImplementedError("SyncBatchNorm runs on NumPy arrays only")
        x = np.ascontiguousarray(x, dtype=np.float32)
        c, axes = self.num_features, self._axes(x)
        local = np.empty(2 * c + 1, np.float64)
        local[:c] = x.sum(axis=axes, dtype=np.float64)
        local[c:2 * c] = np.square(x, dtype=np.float64).sum(axis=axes)
        local[2 * c] = x.size // c
        total = self._allreduce(local)
        count = total[2 * c]
        if count < 2:
            raise ValueError(f"{self!r}: batch statistics need more than one value per "
                             f"channel over all ranks, got {int(count)}")
        mean = total[:c] / count
        var = np.maximum(total[c:2 * c] / count - mean * mean, 0.0)
        invstd = 1.0 / np.sqrt(var + self.eps)
        weight, bias = self._params()
        # Normalising with given statistics is batch norm in eval mode.
        y, _, _ = F.batch_norm(x, mean.astype(np.float32), var.astype(np.float32), weight, bias,
                               False, self.momentum, self.eps)
        m = self.momentum
        self.running_mean[...] = (1 - m) * self.running_mean + m * mean
        self.running_var[...] = (1 - m) * self.running_var + m * var * (count / (count - 1))
        self._saved_state = (x, mean, invstd, count)
        return y

    def backward(self, dy):
        if not self.training:
            return super().backward(dy)
        x, mean, invstd, count = self._saved(self._saved_state)
        dy = np.ascontiguousarray(dy, dtype=np.float32)
        c, axes, nd = self.num_features, self._axes(x), x.ndim
        xhat = (x - self._channel(mean, nd)) * self._channel(invstd, nd)
        local = np.empty(2 * c, np.float64)
        local[:c] = dy.sum(axis=axes, dtype=np.float64)
        local[c:] = (dy * xhat).sum(axis=axes, dtype=np.float64)
        sum_dy, sum_dy_xhat = local[:c].copy(), local[c:].copy()
        total = self._allreduce(local)
        scale = invstd if self.weight is None else invstd * self.weight.data
        dx = self._channel(scale, nd) * (dy - self._channel(total[:c] / count, nd)
                                         - xhat * self._channel(total[c:] / count, nd))
        if self.weight is not None:
            self.weight.grad += sum_dy_xhat.astype(np.float32)
            self.bias.grad += sum_dy.astype(np.float32)
        return dx.astype(np.float32)


class SyncBatchNorm2d(_SyncBatchNorm):
    _expected_ndim = 4
    _layout = "(N, C, H, W)"


class SyncBatchNorm1d(_SyncBatchNorm):
    _expected_ndim = 2
    _layout = "(N, C)"


def convert_sync_batchnorm(module: Module, comm=None) -> Module:
    """Replace every BatchNorm1d/2d in `module` by its synchronized twin that
    shares the same Parameter objects and buffers (so an optimizer built
    before or after sees the same parameters). Returns the module (a new one
    only if `module` itself is a batch norm)."""
    if isinstance(module, (BatchNorm2d, BatchNorm1d)) and not isinstance(module, _SyncBatchNorm):
        cls = SyncBatchNorm2d if isinstance(module, BatchNorm2d) else SyncBatchNorm1d
        sync = cls(module.num_features, module.eps, module.momentum,
                   module.weight is not None, comm)
        if module.weight is not None:
            sync.weight, sync.bias = module.weight, module.bias
        for name in ("running_mean", "running_var"):
            object.__setattr__(sync, name, getattr(module, name))
        sync.train(module.training)
        object.__setattr__(sync, "device", module.device)
        return sync
    for name, child in list(module._modules.items()):
        if child is None:
            continue
        new = convert_sync_batchnorm(child, comm)
        if new is not child:
            setattr(module, name, new)
    return module


# -- data ----------------------------------------------------------------------
class ShardedBatches:
    """Each rank's shard of every global mini-batch.

    Every rank draws the same permutation per epoch from the shared seed (the
    same sequence as data.Batches with that seed) and takes its part of each
    global batch of `batch_size` samples (np.array_split: sizes differ by at
    most one). A last global batch smaller than the number of ranks is
    dropped, so no rank ever gets an empty shard. Iteration yields
    (x_local, y_local, global_count)."""

    def __init__(self, x, y, batch_size: int, rank: int, size: int, shuffle: bool = True,
                 seed: int = 0):
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} samples but y has {len(y)}")
        if not 0 <= rank < size:
            raise ValueError(f"rank must be in [0, {size}), got {rank}")
        if batch_size < size:
            raise ValueError(f"the global batch_size {batch_size} must be at least the "
                             f"number of ranks {size}")
        self.x, self.y, self.batch_size = x, y, batch_size
        self.rank, self.size, self.shuffle = rank, size, shuffle
        self._rng = np.random.default_rng(seed)  # same name as data.Batches (checkpoints)

    def __len__(self):
        full, rest = divmod(len(self.x), self.batch_size)
        return full + (1 if rest >= self.size else 0)

    def __iter__(self):
        order = self._rng.permutation(len(self.x)) if self.shuffle else np.arange(len(self.x))
        for start in range(0, len(order), self.batch_size):
            index = order[start:start + self.batch_size]
            if len(index) < self.size:
                return
            mine = np.array_split(index, self.size)[self.rank]
            yield np.ascontiguousarray(self.x[mine]), self.y[mine], len(index)


# -- the data-parallel wrapper -------------------------------------------------
class DataParallel:
    """Wraps a model for data-parallel SGD over an MPI communicator.

    On construction: optionally converts batch norm to SyncBatchNorm,
    broadcasts rank 0's parameters and buffers, and packs the gradients into
    buckets. train_step() then runs forward/backward on the local shard,
    averages the gradients, and steps the optimizer."""

    def __init__(self, model: Module, comm=None, sync_bn: bool = False,
                 bucket_bytes: int = DEFAULT_BUCKET_BYTES, broadcast: bool = True,
                 measure_wait: bool = False):
        self.comm = comm if comm is not None else world()
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.collectives = _Collectives(self.comm)
        self.model = convert_sync_batchnorm(model, self.comm) if sync_bn else model
        if broadcast:
            self.broadcast_state()
        self.buckets = GradientBuckets(self.model.parameters(), self.collectives, bucket_bytes,
                                       measure_wait)

    def broadcast_state(self, root: int = 0) -> None:
        """Every rank takes root's parameters and buffers (running stats)."""
        for _, p in self.model.named_parameters():
            self.collectives.bcast(p.data, root)
        for _, b in self.model.named_buffers():
            self.collectives.bcast(b, root)

    def grad_scale(self, local_count: int, global_count: int) -> float:
        """Factor on a rank's mean-loss gradient so that the average over
        ranks is the gradient of the mean loss over the global batch."""
        return local_count * self.size / global_count

    def train_step(self, loss_fn, optimizer, xb, yb, global_count: int | None = None):
        """One data-parallel SGD step; returns the local (loss, correct)."""
        global_count = len(yb) * self.size if global_count is None else global_count
        optimizer.zero_grad()
        logits = self.model(xb)
        loss = loss_fn(logits, yb)
        scale = self.grad_scale(len(yb), global_count)
        self.model.backward(loss_fn.backward(scale))
        self.buckets.allreduce_mean()
        optimizer.step()
        return loss, int((logits.argmax(axis=1) == yb).sum())

    def seed_epoch(self, seed: int, epoch: int) -> None:
        """Reseed layer randomness (dropout) from (seed, rank, epoch): masks
        differ between ranks, and a resumed run draws the same ones."""
        from .nn import manual_seed

        manual_seed(int(np.random.SeedSequence([seed, self.rank, epoch]).generate_state(1)[0]))

    def sum(self, values) -> np.ndarray:
        """Sum float64 values (e.g. loss totals and counts) over the ranks."""
        values = np.array(values, dtype=np.float64)
        self.comm.Allreduce(mpi().IN_PLACE, values, op=mpi().SUM)
        return values

    @property
    def allreduce_seconds(self) -> float:
        return self.buckets.seconds


# -- checkpoints ---------------------------------------------------------------
def save_checkpoint(path, model_name: str, epoch: int, model: Module, optimizer, schedule,
                    batches) -> None:
    """Everything a run needs to continue after `epoch` epochs, as a .npz of
    plain arrays (no pickle), written atomically (a crash mid-write leaves the
    previous checkpoint): weights and buffers, momentum buffers, the epoch,
    the learning-rate schedule and the RNG states of the batch order and of
    the layer initialiser (dropout seeds)."""
    import json

    from .nn import init

    entries = {f"model.{k}": v for k, v in model.state_dict().items()}
    for index, velocity in enumerate(getattr(optimizer, "_velocity", [])):
        if velocity is not None:
            entries[f"velocity.{index}"] = np.asarray(
                velocity if is_host_array(velocity) else velocity.get())
    entries["meta.model"] = np.array(model_name)
    entries["meta.epoch"] = np.array(epoch, np.int64)
    entries["meta.schedule_epoch"] = np.array(schedule.epoch, np.int64)
    entries["meta.lr"] = np.array(optimizer.lr, np.float64)
    entries["meta.batches_rng"] = np.array(json.dumps(batches._rng.bit_generator.state))
    entries["meta.init_rng"] = np.array(json.dumps(init._generator.bit_generator.state))
    path = os.fspath(path)
    tmp = path + ".tmp"
    with open(tmp, "wb") as fh:
        np.savez(fh, **entries)
    os.replace(tmp, path)


def load_checkpoint(path, model_name: str, model: Module, optimizer, schedule, batches) -> int:
    """Restore what save_checkpoint wrote; returns the number of epochs done
    (0, with a note on stderr, when `path` does not exist yet)."""
    import json

    from .nn import init

    if not path:
        raise ValueError("resume needs a checkpoint path")
    if not os.path.exists(path):
        print(f"no checkpoint at {path}; starting from epoch 1", file=sys.stderr, flush=True)
        return 0
    with np.load(path, allow_pickle=False) as archive:
        state = {k: archive[k] for k in archive.files}
    saved_model = str(state["meta.model"])
    if saved_model != model_name:
        raise ValueError(f"{path} holds a checkpoint of {saved_model!r}, not {model_name!r}")
    model.load_state_dict({k[len("model."):]: v for k, v in state.items()
                           if k.startswith("model.")})
    params = optimizer.params
    for key, value in state.items():
        if key.startswith("velocity."):
            index = int(key.split(".", 1)[1])
            if index >= len(params) or params[index].data.shape != value.shape:
                raise ValueError(f"{path}: momentum buffer {index} does not fit this model")
            xp = sys.modules["cupy"] if _is_cupy(params[index].data) else np
            optimizer._velocity[index] = xp.asarray(value, dtype=xp.float32).copy()
    schedule.epoch = int(state["meta.schedule_epoch"])
    optimizer.lr = float(state["meta.lr"])
    batches._rng.bit_generator.state = json.loads(str(state["meta.batches_rng"]))
    init._generator.bit_generator.state = json.loads(str(state["meta.init_rng"]))
    return int(state["meta.epoch"])


# -- alpha-beta cost model of ring allreduce ----------------------------------
def ring_allreduce_seconds(n_elements: float, ranks: int, bandwidth_bytes_per_s: float,
                           alpha_s: float, bytes_per_element: int = 4) -> float:
    """Ring allreduce (reduce-scatter + allgather): 2(p-1) steps, each sending
    n/p elements, so

        T = 2 (p-1)/p * n * bytes / B + 2 (p-1) * alpha

    (the reduction arithmetic is ignored; it hides under the transfer)."""
    if ranks < 1:
        raise ValueError(f"ranks must be >= 1, got {ranks}")
    if ranks == 1:
        return 0.0
    steps = 2 * (ranks - 1)
    return steps / ranks * n_elements * bytes_per_element / bandwidth_bytes_per_s + steps * alpha_s


def scaling_efficiency(compute_s: float, comm_s: float, overlap: float = 0.0) -> float:
    """Weak-scaling efficiency with a fixed per-rank batch: compute time over
    step time, where `overlap` (0..1) of the communication hides under
    backward."""
    if not 0.0 <= overlap <= 1.0:
        raise ValueError(f"overlap must be in [0, 1], got {overlap}")
    exposed = max(0.0, comm_s - overlap * min(comm_s, compute_s))
    return compute_s / (compute_s + exposed)


def fit_alpha_beta(message_bytes, seconds, ranks: int):
    """Least-squares alpha (s) and B (bytes/s) of the ring model from measured
    allreduce times of several message sizes: T = a * bytes + b with
    a = 2(p-1)/p / B and b = 2(p-1) alpha. Residuals are weighted by 1/T
    (relative error), so microsecond latencies are not drowned by the
    millisecond transfers of large messages."""
    message_bytes = np.asarray(message_bytes, np.float64)
    seconds = np.asarray(seconds, np.float64)
    if message_bytes.shape != seconds.shape or message_bytes.size < 2:
        raise ValueError("need at least two (bytes, seconds) pairs of equal length")
    if ranks < 2:
        raise ValueError(f"ranks must be >= 2 to fit the model, got {ranks}")
    slope, intercept = np.polyfit(message_bytes, seconds, 1, w=1.0 / seconds)
    steps = 2 * (ranks - 1)
    bandwidth = steps / ranks / slope if slope > 0 else math.inf
    return max(intercept, 0.0) / steps, bandwidth


@dataclass
class ScalingRow:
    model: str
    params: float
    network: str
    ranks: int
    compute_s: float
    comm_s: float
    efficiency: float
    efficiency_overlap: float = field(default=0.0)


def scaling_table(models: dict, networks: dict, ranks=(8, 64, 512), alpha_s: float = 5e-6):
    """Rows of predicted weak-scaling efficiency. `models` maps a name to
    (parameter count, compute seconds per step); `networks` maps a name to
    bandwidth in bytes/s."""
    rows = []
    for name, (params, compute) in models.items():
        for net, bandwidth in networks.items():
            for p in ranks:
                comm = ring_allreduce_seconds(params, p, bandwidth, alpha_s)
                rows.append(ScalingRow(name, params, net, p, compute, comm,
                                       scaling_efficiency(compute, comm),
                                       scaling_efficiency(compute, comm, overlap=1.0)))
    return rows
