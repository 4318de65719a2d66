"""trainer.precision=auto (the synthetic quick start's): bf16 autocast only where the device
computes bf16 natively, said in one line; any other value is left as given."""

import logging

import pytest
import torch

from deeplab.training.precision import native_bf16, resolve_precision

from ..conftest import compose_config


@pytest.mark.parametrize("amx, avx512_bf16, expected", [
    (True, False, (True, "this CPU has AMX")),
    (False, True, (True, "this CPU has AVX512-BF16")),
    (False, False, (False, "this CPU has no native bf16 (AVX512-BF16 or AMX)")),
])
def test_cpus_with_native_bf16_are_told_apart(monkeypatch, amx, avx512_bf16, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    assert native_bf16("auto") == expected
    assert native_bf16("cpu") == expected


@pytest.mark.parametrize("native, picked", [(True, "bf16-mixed"), (False, "32-true")])
def test_auto_is_replaced_by_what_it_picks_and_says_why(monkeypatch, caplog, native, picked):
    monkeypatch.setattr("deeplab.training.precision.native_bf16", lambda accelerator: (native, "because"))
    cfg = compose_config()  # data=synthetic brings trainer=quick, trainer=mixed's precision for 3 epochs
    assert cfg.trainer.precision == "auto" and cfg.trainer.max_epochs == 3
    with caplog.at_level(logging.INFO, logger="deeplab"):
        assert resolve_precision(cfg.trainer) == picked
    assert cfg.trainer.precision == picked
    assert f"trainer.precision=auto: {picked} (because)" in caplog.text


def test_a_given_precision_is_kept(monkeypatch):
    monkeypatch.setattr("deeplab.training.precision.native_bf16", lambda accelerator: pytest.fail("not asked"))
    for overrides, expected in ((["trainer.precision=32-true"], "32-true"), (["data=voc"], "32-true"),
                                (["trainer=gpu"], "bf16-mixed")):
        cfg = compose_config(*overrides)
        assert resolve_precision(cfg.trainer) == expected and cfg.trainer.precision == expected
