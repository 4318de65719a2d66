"""Hydra's local launcher, able to run DDP jobs: `python train.py -m trainer=ddp trainer.devices=2 seed=1,2`.

Jobs run one after another in this process, as with Hydra's basic launcher. For a job whose
trainer would start its own processes (strategy ddp, auto, fsdp or deepspeed on devices > 1, no
launcher such as SLURM or torchrun having started them), the launcher starts the job's ranks 1..N-1 itself, each as this
script for this one job (its overrides, its run directory: the command Lightning gives its extra
processes in a single run), and runs rank 0 here, with the variables that tell Lightning the
processes exist (LOCAL_RANK, WORLD_SIZE, MASTER_ADDR/PORT). Lightning's own start, which re-runs
the whole command line, would start the sweep again in every extra process."""

import logging
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict

log = logging.getLogger(__name__)

# The sweep's own Hydra settings, which a single run of one job must not take (its callbacks run once, in rank 0)
SWEEP_ONLY = ("hydra.sweep", "hydra.launcher", "hydra/launcher", "hydra.sweeper", "hydra/sweeper", "hydra.mode",
              "hydra.run.dir", "hydra.job.name", "hydra.output_subdir", "hydra.callbacks")
EXTERNAL = ("LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")  # ranks a launcher already started


def processes_to_start(config: DictConfig) -> int:
    """How many processes a job's trainer would start itself by re-running the command (1: none)."""
    trainer = config.get("trainer") or {}
    strategy = trainer.get("strategy") or "auto"  # Lightning's auto is ddp on several devices
    if strategy == "auto":
        strategy = "ddp"
    # (the strategies whose processes Lightning starts by re-running the script)
    if not isinstance(strategy, str) or not strategy.startswith(("ddp", "fsdp", "deepspeed")) or any(
            k in strategy for k in ("spawn", "fork", "notebook")):
        return 1
    if any(os.environ.get(key) for key in EXTERNAL) or int(trainer.get("num_nodes") or 1) > 1:
        return 1  # started by torchrun or SLURM; several machines need one of those
    devices = trainer.get("devices")
    if isinstance(devices, int):
        return devices if devices > 0 else _visible_gpus(trainer)
    if isinstance(devices, str) and devices.strip().lstrip("-").isdigit():
        return int(devices) if int(devices) > 0 else _visible_gpus(trainer)
    if isinstance(devices, str) and "," in devices:
        return len([d for d in devices.split(",") if d.strip()])
    if devices is not None and not isinstance(devices, str):  # a list of device indices
        return len(devices)
    return _visible_gpus(trainer) if devices == "auto" else 1


def _visible_gpus(trainer: DictConfig) -> int:
    if trainer.get("accelerator") == "cpu":
        return 1
    import torch

    return max(1, torch.cuda.device_count())


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LocalDDPLauncher(Launcher):
    def __init__(self, timeout_s: int = 600) -> None:
        self.timeout_s = timeout_s
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        log.info(f"Launching {len(job_overrides)} jobs locally")
        runs = []
        for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
            log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
            sweep_config = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
            with open_dict(sweep_config):
                sweep_config.hydra.job.id = idx
                sweep_config.hydra.job.num = idx
            world = processes_to_start(sweep_config)
            runs.append(self._run(sweep_config) if world == 1 else self._run_ddp(sweep_config, overrides, world))
            configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        return runs

    def _run(self, sweep_config: DictConfig) -> JobReturn:
        return run_job(hydra_context=self.hydra_context, task_function=self.task_function, config=sweep_config,
                       job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")

    def _run_ddp(self, sweep_config: DictConfig, overrides: Sequence[str], world: int) -> JobReturn:
        HydraConfig.instance().set_config(sweep_config)  # resolves the job's directory as run_job will
        job_dir = Path(str(sweep_config.hydra.sweep.dir)) / str(sweep_config.hydra.sweep.subdir)
        env = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()), "NODE_RANK": "0",
               "WORLD_SIZE": str(world)}
        name = sweep_config.hydra.job.name
        settings = [o for o in sweep_config.hydra.overrides.hydra if not o.lstrip("+~").startswith(SWEEP_ONLY)]
        command = [sys.executable, os.path.abspath(sys.argv[0]), *settings, *overrides, f'hydra.run.dir="{job_dir}"',
                   "hydra.output_subdir=null"]
        ranks = [subprocess.Popen([*command, f"hydra.job.name={name}_ddp_process_{rank}"],
                                  env={**os.environ, **env, "LOCAL_RANK": str(rank)}, cwd=os.getcwd())
                 for rank in range(1, world)]
        saved = {key: os.environ.get(key) for key in (*env, "LOCAL_RANK")}
        os.environ.update(env, LOCAL_RANK="0")
        watch = _Watch(ranks)
        watch.start()
        try:
            result = self._run(sweep_config)
        finally:
            watch.stop()
            _leave_process_group()
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        # A failed rank 0 (a user error, a crash) leaves the others waiting for it: they are stopped.
        failed = self._wait(ranks, self.timeout_s if result.status == JobStatus.COMPLETED else 0)
        if failed and result.status == JobStatus.COMPLETED:
            result.status = JobStatus.FAILED
            result._return_value = RuntimeError(f"job {sweep_config.hydra.job.num}: {failed}")
        return result

    @staticmethod
    def _wait(ranks: list[subprocess.Popen], timeout_s: float) -> str:
        """Waits for ranks 1..N-1, killing those still running after `timeout_s`; says which failed."""
        failed = []
        for rank, process in enumerate(ranks, start=1):
            try:
                code = process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                code = process.wait()
            if code != 0:
                failed.append(f"rank {rank} exited with code {code}")
        return "; ".join(failed)


def _leave_process_group() -> None:
    """Lightning leaves the job's process group set up; the next job must form its own."""
    import torch.distributed

    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


class _Watch(threading.Thread):
    """While rank 0 trains: when another rank dies, the rest are stopped (rank 0 then fails in its
    next collective, as it loses its peers), so that no process is left waiting for the dead one."""

    def __init__(self, ranks: list[subprocess.Popen]):
        super().__init__(daemon=True, name="ddp-job-watch")
        self.ranks, self.done = ranks, threading.Event()

    def run(self) -> None:
        while not self.done.wait(1.0):
            dead = [(rank, p.returncode) for rank, p in enumerate(self.ranks, 1) if p.poll() not in (None, 0)]
            if dead:
                log.error(f"DDP rank {dead[0][0]} exited with code {dead[0][1]}: stopping this job's other ranks")
                for process in self.ranks:
                    if process.poll() is None:
                        process.kill()
                return

    def stop(self) -> None:
        self.done.set()
        self.join()
