"""The command line composes through Hydra alone and checks the config once per command."""

import json

import pytest
from hydra._internal.config_loader_impl import ConfigLoaderImpl

from deeplab import schema

from ..conftest import SMALL, TINY_NET, run_entry


@pytest.mark.parametrize("extra", [[], ["trainer.limit_train_batches=2", "trainer.limit_val_batches=1"]])
def test_a_run_is_composed_by_hydra_alone_and_validated_once(extra, small_synthetic, tmp_path, capsys, monkeypatch):
    """No composition besides Hydra's own run (an argument of the Trainer by name included), and
    the train config's rules run once. Hydra's run composes twice: once to read hydra.mode
    (Hydra.get_mode), once for the job; the count reads Hydra's private loader on purpose, so
    that a Hydra that composes otherwise fails here loudly."""
    composed, checked = [], []
    load, check = ConfigLoaderImpl.load_configuration, schema.check
    monkeypatch.setattr(ConfigLoaderImpl, "load_configuration",
                        lambda self, *a, **k: composed.append(k.get("run_mode")) or load(self, *a, **k))
    monkeypatch.setattr(schema, "check", lambda node, section, prefix="": (
        checked.append(section.__name__), check(node, section, prefix))[1])
    code, stderr = run_entry("train.py", f"hydra.run.dir={tmp_path / 'run'}", f"paths.data_dir={small_synthetic}",
                             *SMALL, *TINY_NET, "trainer.max_epochs=1", *extra, capsys=capsys,
                             monkeypatch=monkeypatch)
    assert code == 0, stderr[-2000:]
    assert len(composed) == 2, composed
    assert checked.count("TrainConfig") == 1, checked
    assert "val/mIoU_best" in json.loads((tmp_path / "run" / "summary.json").read_text())
