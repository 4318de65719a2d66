"""What a pixel's output means: one class of several (softmax over `num_classes` channels), one
foreground against background (a single sigmoid channel and a threshold), or several labels that
may overlap (a sigmoid channel a label, each with the threshold). The model is the same network
with another number of output channels; this says how many, how logits become probabilities, and
how probabilities become masks."""

from dataclasses import dataclass

import torch
from omegaconf import DictConfig

TASKS = ("multiclass", "binary", "multilabel")


@dataclass(frozen=True)
class Task:
    name: str = "multiclass"
    threshold: float = 0.5  # binary and multilabel: a pixel is foreground (has the label) above it

    @property
    def activation(self) -> str:
        return "softmax" if self.name == "multiclass" else "sigmoid"

    def out_channels(self, num_classes: int) -> int:
        """binary counts background and foreground in data.num_classes=2, with one output channel."""
        return 1 if self.name == "binary" else num_classes

    def classes(self, probs: torch.Tensor) -> torch.Tensor:
        """Masks from probabilities (N, C, H, W): multiclass, the class ids (N, H, W) by argmax;
        binary, 0/1 (N, H, W); multilabel, 0/1 a label (N, L, H, W)."""
        if self.name == "multiclass":
            if probs.device.type == "cpu":
                # the argmax is 3-6x faster with the classes innermost in memory on the CPU (5 classes
                # at 375x500: 13.9 ms strided, 2.2 ms with the conversion); ties go to the lower class
                probs = probs.contiguous(memory_format=torch.channels_last)
            return probs.argmax(dim=1)
        above = (probs > self.threshold).long()
        return above[:, 0] if self.name == "binary" else above


MULTICLASS = Task()


def task_of(config: DictConfig, threshold: float | None = None) -> Task:
    """The task of a run config (configs stored before tasks existed are multiclass); `threshold`
    replaces the stored one (eval.threshold; builders.model.evaluation_task refuses it for multiclass)."""
    node = config.get("task")
    if node is None or node.get("name") == "multiclass":
        return MULTICLASS
    stored = node.get("threshold")
    chosen = threshold if threshold is not None else stored if stored is not None else 0.5
    return Task(str(node.name), float(chosen))
