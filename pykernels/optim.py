"""SGD with momentum, weight decay and Nesterov (torch.optim.SGD's update),
and a step learning-rate schedule."""

from __future__ import annotations

from ._backend import array_module


class SGD:
    """torch.optim.SGD's update. `fused` (the default) runs functional.sgd_step,
    one pass over each parameter; fused=False runs the NumPy (or CuPy)
    reference, one array operation per term: same numbers, kept as the slower
    rung for the benchmarks."""

    def __init__(self, params, lr: float, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, fused: bool = True):
        from ._functional.sgd import checked_hyperparameters

        checked_hyperparameters(lr, momentum, dampening, weight_decay, nesterov)  # fail early
        self.params = list(params)
        self.lr, self.momentum, self.dampening = lr, momentum, dampening
        self.weight_decay, self.nesterov = weight_decay, nesterov
        self._velocity = [None] * len(self.params)
        self.fused = fused

    def zero_grad(self) -> None:
        from ._functional.sgd import zero_fill

        for p in self.params:
            zero_fill(p.grad)

    def step(self) -> None:
        from .functional import sgd_step as fused_step
        from .reference import sgd_step as reference_step

        sgd_step = fused_step if self.fused else reference_step
        for index, p in enumerate(self.params):
            velocity = self._velocity[index]
            first_step = bool(self.momentum) and velocity is None
            if first_step:
                velocity = array_module(p.data).empty_like(p.data)
            sgd_step(p.data, p.grad, velocity, lr=self.lr, momentum=self.momentum,
                     dampening=self.dampening, weight_decay=self.weight_decay,
                     nesterov=self.nesterov, first_step=first_step)
            # Kept only once a step has filled it: after a refused first step
            # the next one must start the velocity again.
            self._velocity[index] = velocity


class StepLR:
    """Multiply the learning rate by gamma every step_size epochs."""

    def __init__(self, optimizer: SGD, step_size: int, gamma: float = 0.1):
        if step_size < 1:
            raise ValueError(f"step_size must be >= 1, got {step_size}")
        self.optimizer, self.step_size, self.gamma = optimizer, step_size, gamma
        self.base_lr = optimizer.lr
        self.epoch = 0

    def step(self) -> None:
        self.epoch += 1
        self.optimizer.lr = self.base_lr * self.gamma ** (self.epoch // self.step_size)
