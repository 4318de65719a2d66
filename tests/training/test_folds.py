"""Cross-validation: data.num_folds=K data.fold=k validates on fold k of the training split and
trains on the rest; a sweep over the folds is one setting of n=K in the report."""

import csv

import pytest

from deeplab.training.datamodule import build_datamodule

from ..conftest import SMALL, TINY_NET, compose_config, run_script


def fold_sets(data_dir, fold: int) -> tuple[set, set]:
    cfg = compose_config(f"paths.data_dir={data_dir}", *SMALL, "data.num_folds=3", f"data.fold={fold}")
    cfg.data.mean, cfg.data.std = [0.5] * 3, [0.5] * 3
    datamodule = build_datamodule(cfg.data, cfg.aug, seed=0)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return {s.name for s in datamodule.train_set.samples}, {s.name for s in datamodule.val_set.samples}


def test_folds_are_disjoint_and_cover_the_training_list(small_synthetic):
    folds = [fold_sets(small_synthetic, k) for k in range(3)]  # (the first writes the set if it is not there)
    training = (small_synthetic / "synthetic_voc" / "ImageSets" / "Segmentation" / "train.txt").read_text().split()
    held_out = [val for _, val in folds]
    assert all(held_out) and sum(len(v) for v in held_out) == len(training) == 48
    assert set().union(*held_out) == set(training)
    for train, val in folds:  # each fold trains on exactly the others
        assert not train & val and train | val == set(training)


@pytest.mark.slow
def test_a_sweep_over_the_folds_is_one_setting(tmp_path, small_synthetic):
    result = run_script("train.py", "-m", *SMALL, *TINY_NET, "trainer.max_epochs=1",
                        f"paths.data_dir={small_synthetic}", f"paths.log_dir={tmp_path}",
                        f"hydra.sweep.dir={tmp_path / 'sweep'}", "data.num_folds=3", "data.fold=0,1,2")
    assert result.returncode == 0, result.stderr[-3000:]
    with (tmp_path / "sweep" / "report.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    settings = [r for r in rows if r["row"] == "setting"]
    assert len(settings) == 1 and settings[0]["n"] == "3" and settings[0]["jobs"] == "0 1 2"
