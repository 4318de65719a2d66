"""Which jobs the local launcher starts the DDP processes of: every strategy against every way of
giving devices, and the launchers that start ranks themselves."""

import pytest
from omegaconf import OmegaConf

from hydra_plugins.deeplab_launcher.local_ddp import processes_to_start

DEVICES = [(1, 1), (2, 2), ("2", 2), ([0, 1], 2), ("0,1", 2), ("auto", 1), (-1, 1)]  # CPU: auto and -1 are 1


@pytest.mark.parametrize("devices, world", DEVICES)
@pytest.mark.parametrize("strategy, starts", [("ddp", True), ("ddp_find_unused_parameters_true", True),
                                              ("ddp_spawn", False), ("ddp_notebook", False), ("auto", True),
                                              (None, True), ("fsdp", True), ("xla", False)])
def test_processes_to_start(strategy, starts, devices, world, monkeypatch):
    for key in ("LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK"):
        monkeypatch.delenv(key, raising=False)
    config = OmegaConf.create({"trainer": {"strategy": strategy, "devices": devices, "accelerator": "cpu",
                                           "num_nodes": 1}})
    assert processes_to_start(config) == (world if starts else 1)
    config.trainer.num_nodes = 2  # several machines: torchrun or SLURM start the ranks
    assert processes_to_start(config) == 1


@pytest.mark.parametrize("variable", ["LOCAL_RANK", "SLURM_PROCID"])
def test_ranks_already_started_are_not_started_again(variable, monkeypatch):
    monkeypatch.setenv(variable, "0")
    config = OmegaConf.create({"trainer": {"strategy": "ddp", "devices": 2, "accelerator": "cpu"}})
    assert processes_to_start(config) == 1
