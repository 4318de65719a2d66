"""A callback the resume tests add on the command line: SIGKILL this process as a step begins,
once (a marker file says it already happened, so the resumed run goes on)."""

import os
import signal
from pathlib import Path

from pytorch_lightning.callbacks import Callback


class KillAt(Callback):
    def __init__(self, step: int, marker: str):
        self.step, self.marker = step, Path(marker)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step and not self.marker.exists():
            self.marker.write_text(str(self.step))
            os.kill(os.getpid(), signal.SIGKILL)


class CtrlCInValidation(Callback):
    """A Ctrl-C (SIGINT to this process) as the second batch of the first validation begins, once
    (the marker file says it happened, so the resumed run goes on)."""

    def __init__(self, marker: str):
        self.marker = Path(marker)

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        if batch_idx == 1 and not trainer.sanity_checking and not self.marker.exists():
            self.marker.write_text("sent")
            os.kill(os.getpid(), signal.SIGINT)
