"""One SGD step in NumPy, torch.optim.SGD's update, in place: one array
operation per term, each rounded in the arrays' dtype (the kernels round the
same way: csrc/include/pykernels/sgd_update.h)."""


def sgd_step(param, grad, velocity=None, *, lr, momentum=0.0, dampening=0.0,
             weight_decay=0.0, nesterov=False, first_step=False):
    step = grad
    if weight_decay:
        step = step + weight_decay * param
    if momentum:
        if first_step:
            velocity[...] = step
        else:
            velocity *= momentum
            velocity += (1.0 - dampening) * step
        step = step + momentum * velocity if nesterov else velocity
    param -= lr * step
