"""SGD with momentum, weight decay and Nesterov (torch.optim.SGD's update),
and a step learning-rate schedule."""

from __future__ import annotations


class SGD:
    def __init__(self, params, lr: float, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"lr, momentum and weight_decay must be >= 0, got {lr}, "
                             f"{momentum}, {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum needs momentum > 0 and dampening = 0")
        self.params = list(params)
        self.lr, self.momentum, self.dampening = lr, momentum, dampening
        self.weight_decay, self.nesterov = weight_decay, nesterov
        self._velocity = [None] * len(self.params)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad[...] = 0

    def step(self) -> None:
        for index, p in enumerate(self.params):
            step = p.grad
            if self.weight_decay:
                step = step + self.weight_decay * p.data
            if self.momentum:
                velocity = self._velocity[index]
                if velocity is None:
                    velocity = step.copy()
                    self._velocity[index] = velocity
                else:
                    velocity *= self.momentum
                    velocity += (1.0 - self.dampening) * step
                step = step + self.momentum * velocity if self.nesterov else velocity
            p.data -= self.lr * step


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
