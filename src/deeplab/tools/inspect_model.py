"""tools/inspect_model.py: what a trained (or randomly initialised) model computes for an image:
the strongest feature maps of each encoder stage, ASPP branch and the decoder (features.png), and
the empirical receptive field of the centre pixel at each output stride, for the logits and each
ASPP branch alone (receptive_field.png, receptive_field.json)."""

import copy
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig

from deeplab.builders.checkpoint import model_from_checkpoint
from deeplab.evaluation.predict import list_images
from deeplab.evaluation.segmenter import read_image
from deeplab.inference.by_module import encoder_run_order
from deeplab.inference.pixels import normaliser
from deeplab.inference.receptive_field import MASS, aspp_branch_names, feature_maps, receptive_fields
from deeplab.schema import validate_inspect


def load_images(cfg: DictConfig, config: DictConfig) -> tuple[torch.Tensor, list[str]]:
    """Up to `num_images` images of `input`, resized to size x size and normalised as in training."""
    files = list_images(Path(cfg.input))[: cfg.num_images]
    bands = config.data.get("in_channels", 3)
    pixels = [read_image(p, bands) for p in files]
    batch = torch.stack([F.interpolate(torch.from_numpy(np.ascontiguousarray(p)).permute(2, 0, 1)[None].float(),
                                       size=(cfg.size, cfg.size), mode="bilinear", align_corners=True)[0]
                         for p in pixels])
    return normaliser(config.data)(batch), [p.name for p in files]


def feature_modules(model) -> dict[str, str]:
    """Labels and module names of the rows of features.png: the encoder stage ends, each ASPP
    branch, and the decoder's (or, without one, the ASPP's) output."""
    order = encoder_run_order(model, torch.zeros(1, getattr(model, "in_channels", 3), 65, 65))
    rows = {f"encoder stage {i + 1}": name for i, name in enumerate(order["ends"])}
    for label, index in zip(aspp_branch_names(model), range(len(model.aspp.branches)), strict=True):
        rows[f"aspp {label}"] = f"aspp.branches.{index}"
    rows["decoder" if model.decoder is not None else "aspp output"] = "decoder" if model.decoder is not None else "aspp"
    return rows


def _normalised(array: np.ndarray) -> np.ndarray:
    low, high = float(array.min()), float(array.max())
    return (array - low) / (high - low) if high > low else np.zeros_like(array)


def draw_features(rows: list[dict], path: Path, image: np.ndarray) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = 1 + max(len(r["maps"]) for r in rows)
    figure, axes = plt.subplots(len(rows), columns, figsize=(1.6 * columns, 1.6 * len(rows)), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for r, row in enumerate(rows):
        axes[r, 0].imshow(image)
        axes[r, 0].set_title(f"{row['label']}\nstride {row['stride']}, {row['size'][0]}x{row['size'][1]}",
                             fontsize=7, loc="left")
        for c, (channel, feature) in enumerate(zip(row["channels"], row["maps"], strict=True)):
            axes[r, c + 1].imshow(_normalised(feature), cmap="viridis", interpolation="nearest")
            axes[r, c + 1].set_title(f"channel {channel}", fontsize=6)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def draw_receptive_fields(fields: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = 1 + len(fields[0]["aspp"])
    figure, axes = plt.subplots(len(fields), columns, figsize=(2.0 * columns, 2.1 * len(fields)), squeeze=False)
    for r, field in enumerate(fields):
        panels = [("logits", field["logits"])] + [(f"aspp {k}", v) for k, v in field["aspp"].items()]
        for c, (label, entry) in enumerate(panels):
            axis, gradient = axes[r, c], entry["map"]
            axis.imshow(np.sqrt(_normalised(gradient)), cmap="magma")  # the square root shows the tails
            centre = (gradient.shape[1] // 2, gradient.shape[0] // 2)
            axis.add_patch(plt.Circle(centre, entry["radius95"], fill=False, color="cyan", linewidth=0.8))
            axis.set_title(f"OS{field['output_stride']} {label}\n{int(MASS * 100)}% within {entry['radius95']:.0f} px",
                           fontsize=7)
            axis.axis("off")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def output_dir(cfg: DictConfig) -> Path:
    """`output`, or beside the checkpoint's run: RUN/inspect for RUN/checkpoints/NAME.ckpt."""
    if cfg.output:
        return Path(cfg.output)
    checkpoint = Path(cfg.ckpt_path)
    run = checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent
    return run / "inspect"


def run(cfg: DictConfig) -> dict:
    validate_inspect(cfg)
    model, config = model_from_checkpoint(cfg.ckpt_path)
    images, names = load_images(cfg, config)
    out = output_dir(cfg)
    out.mkdir(parents=True, exist_ok=True)

    shown = ((images[0] * images.new_tensor(config.data.std).view(-1, 1, 1)
              + images.new_tensor(config.data.mean).view(-1, 1, 1)).clamp(0, 1) * 255)
    shown = shown[:3].permute(1, 2, 0).round().byte().numpy() if shown.shape[0] >= 3 else shown[0].byte().numpy()
    rows = feature_maps(model, images[:1], feature_modules(model), cfg.channels)
    draw_features(rows, out / "features.png", shown)

    trained = model.output_stride
    fields, report = [], {"ckpt_path": str(cfg.ckpt_path), "images": names, "size": cfg.size, "mass": MASS,
                          "backbone": config.model.backbone.name, "trained_output_stride": trained,
                          "output_strides": {}}
    for stride in sorted({8, 16, trained}):
        at = copy.deepcopy(model)
        at.set_output_stride(stride)  # re-dilated: the same weights, seeing wider or narrower
        field = receptive_fields(at, images)
        fields.append(field)
        rates = [int(r) for r in at.aspp.rates]
        report["output_strides"][str(stride)] = {
            "rates": rates, "logits_radius95": field["logits"]["radius95"],
            "aspp_radius95": {name: entry["radius95"] for name, entry in field["aspp"].items()}}
        beyond = [r for r in rates if r * stride > cfg.size // 2]
        if beyond:
            print(f"note: at OS{stride} the rate(s) {beyond} reach beyond half of a {cfg.size}-pixel image: their "
                  "outer taps see only padding (DeepLabV3, Sec. 3.3); a larger size= shows them")
    draw_receptive_fields(fields, out / "receptive_field.png")
    (out / "receptive_field.json").write_text(json.dumps(report, indent=2) + "\n")
    for stride, entry in report["output_strides"].items():
        branches = ", ".join(f"{k} {v:.0f}" for k, v in entry["aspp_radius95"].items())
        print(f"OS{stride}: {int(MASS * 100)}% radius of the logits {entry['logits_radius95']:.0f} px; "
              f"ASPP branches: {branches}")
    print(f"wrote {out / 'features.png'}, {out / 'receptive_field.png'} and {out / 'receptive_field.json'}")
    return report
