"""A callback tests add on the command line (+callbacks.probe._target_=...): it saves the model's
weights as training starts, before the first step changes them."""

from pathlib import Path

import torch
from pytorch_lightning.callbacks import Callback


class SaveWeightsAtStart(Callback):
    def __init__(self, path: str):
        self.path = Path(path)

    def on_train_start(self, trainer, pl_module) -> None:
        torch.save({k: v.detach().clone() for k, v in pl_module.model.state_dict().items()}, self.path)

