"""ImageNet weights: read from the Hugging Face cache when present, one clear line when not."""

import os
import subprocess
import sys
import time

import pytest
import segmentation_models_pytorch as smp
import torch
from safetensors.torch import save_file


def run_python(script: str, cache, offline: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_CACHE": str(cache)}
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_missing_weights_fail_at_once_with_the_ways_out(tmp_path):
    script = ("from deeplab.model import DeepLab\n"
              "try:\n    DeepLab(num_classes=21, backbone='tu-xception65', weights='imagenet')\n"
              "except ValueError as err:\n    print(err)\n")
    start = time.perf_counter()
    result = run_python(script, tmp_path / "hub", offline=False)  # this machine has no network
    assert time.perf_counter() - start < 60
    message = result.stdout.strip()
    assert "\n" not in message
    assert message.startswith("model.backbone.weights=imagenet needs timm/xception65")
    assert f"not in the Hugging Face cache {tmp_path / 'hub'}" in message
    assert "model.backbone.weights=null" in message and "place the file in that cache" in message


@pytest.mark.slow
def test_cached_weights_load_offline(tmp_path):
    settings = smp.encoders.encoders["resnet18"]["pretrained_settings"]["imagenet"]
    torch.manual_seed(3)
    reference = smp.encoders.get_encoder("resnet18", weights=None).state_dict()
    snapshot = tmp_path / "hub" / f"models--{settings['repo_id'].replace('/', '--')}" / "snapshots" / \
        settings["revision"]
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    save_file({k: v.contiguous() for k, v in reference.items()}, str(snapshot / "model.safetensors"))
    torch.save(reference, tmp_path / "reference.pt")
    # Four bands: smp's adaptation of the first convolution, the RGB filters repeated over the
    # bands and scaled by 3 / 4; every other tensor as cached.
    script = ("import torch\nfrom deeplab.model import build_encoder\n"
              "encoder = build_encoder('resnet18', weights='imagenet', output_stride=16)\n"
              f"reference = torch.load({str(tmp_path / 'reference.pt')!r})\n"
              "print(all(torch.equal(v, reference[k]) for k, v in encoder.state_dict().items()))\n"
              "bands = build_encoder('resnet18', weights='imagenet', output_stride=16, in_channels=4).state_dict()\n"
              "stem = reference['conv1.weight']\n"
              "expected = torch.stack([stem[:, i % 3] for i in range(4)], dim=1) * 3 / 4\n"
              "print(bands['conv1.weight'].shape[1] == 4 and torch.allclose(bands['conv1.weight'], expected), "
              "all(torch.equal(v, reference[k]) for k, v in bands.items() if k != 'conv1.weight'))\n")
    result = run_python(script, tmp_path / "hub")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["True", "True", "True"]
