"""Exception types raised by pykernels."""


class CudaError(RuntimeError):
    """A CUDA runtime call or kernel launch failed; the message names it."""
