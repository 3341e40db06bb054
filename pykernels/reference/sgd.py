"""One SGD step in NumPy, torch.optim.SGD's update, in place: one array
operation per term, each rounded in the arrays' dtype (the kernels round the
same way: csrc/include/pykernels/sgd_update.h)."""


def sgd_step(param, grad, velocity=None, *, lr, momentum=0.0, dampening=0.0,
             weight_decay=0.0, nesterov=False, first_step=False):
    # Scalars in the arrays' dtype: a NumPy float64 scalar would otherwise
    # promote each product to float64 and round it twice.
    scalar = param.dtype.type
    lr, momentum, weight_decay = scalar(lr), scalar(momentum), scalar(weight_decay)
    step = grad
    if weight_decay:
        step = step + weight_decay * param
    if momentum:
        if first_step:
            velocity[...] = step
        else:
            velocity *= momentum
            velocity += scalar(1.0 - float(dampening)) * step
        step = step + momentum * velocity if nesterov else velocity
    param -= lr * step
