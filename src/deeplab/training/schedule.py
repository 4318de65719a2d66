"""The poly learning-rate policy: lr = base_lr * (1 - step / total_steps) ** power."""

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def poly_schedule(optimizer: Optimizer, total_steps: int, power: float = 0.9) -> LambdaLR:
    """Stepped once per iteration; scales every parameter group's own base lr alike."""
    total_steps = max(1, int(total_steps))
    return LambdaLR(optimizer, lambda step: max(0.0, 1.0 - min(step, total_steps) / total_steps) ** power)
