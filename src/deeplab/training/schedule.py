"""The poly learning-rate policy: lr = initial_lr * (1 - step / total_steps) ** power."""

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler


class PolyLR(LRScheduler):
    """Stepped once per iteration; scales every parameter group's own initial lr alike, groups
    added while training included (a fine-tuning stage brings its own `initial_lr`)."""

    def __init__(self, optimizer: Optimizer, total_steps: int, power: float = 0.9, last_epoch: int = -1):
        self.total_steps, self.power = max(1, int(total_steps)), power
        super().__init__(optimizer, last_epoch)

    def factor(self, step: int | None = None) -> float:
        step = self.last_epoch if step is None else step
        return max(0.0, 1.0 - min(step, self.total_steps) / self.total_steps) ** self.power

    def get_lr(self) -> list[float]:
        return [group["initial_lr"] * self.factor() for group in self.optimizer.param_groups]


def poly_schedule(optimizer: Optimizer, total_steps: int, power: float = 0.9) -> PolyLR:
    return PolyLR(optimizer, total_steps, power)
