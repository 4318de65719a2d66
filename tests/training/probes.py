"""A callback tests add on the command line (+callbacks.probe._target_=...): it saves the model's
weights as training starts, before the first step changes them."""

from pathlib import Path

import torch
from hydra.experimental.callback import Callback as HydraCallback
from pytorch_lightning.callbacks import Callback


class SaveWeightsAtStart(Callback):
    def __init__(self, path: str):
        self.path = Path(path)

    def on_train_start(self, trainer, pl_module) -> None:
        torch.save({k: v.detach().clone() for k, v in pl_module.model.state_dict().items()}, self.path)


class RecordReturn(HydraCallback):
    """A Hydra callback (+hydra.callbacks.probe._target_=...): appends each job's return value, what
    a sweeper such as Optuna's records, to `path` as a JSON line."""

    def __init__(self, path: str):
        self.path = Path(path)

    def on_job_end(self, config, job_return, **kwargs) -> None:
        import json

        with self.path.open("a") as handle:
            handle.write(json.dumps({"dir": config.hydra.runtime.output_dir, "value": job_return._return_value}) + "\n")
