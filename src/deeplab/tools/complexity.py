"""tools/complexity.py: the parameters and Multiply-Adds of the model a config describes."""

import json

from deeplab.builders.model import build_network
from deeplab.errors import ConfigError
from deeplab.inference.by_module import count_by_module
from deeplab.inference.complexity import CONVENTIONS, count_madds
from deeplab.schema import validate_complexity


def report(cfg) -> dict:
    """Builds the model a config describes, counts one inference, prints a table and, last, one JSON line."""
    validate_complexity(cfg)
    if cfg.convention not in CONVENTIONS:
        raise ConfigError(f"convention={cfg.convention} is not allowed; allowed: {', '.join(CONVENTIONS)}")
    if cfg.complexity.by_module and cfg.convention != "plain":
        raise ConfigError(f"complexity.by_module=true is not allowed with convention={cfg.convention}; allowed: "
                          "convention=plain (the table counts what PyTorch runs)")
    size = [int(s) for s in cfg.input_size]
    model = build_network(cfg)
    if cfg.eval.output_stride:
        model.set_output_stride(cfg.eval.output_stride)
    result = count_madds(model, size, list(cfg.eval.scales), cfg.eval.flip, cfg.convention)
    decoder = "deeplabv3plus" if cfg.model.decoder is not None else "deeplabv3"
    result.update(backbone=cfg.model.backbone.name, train_os=cfg.model.output_stride,
                  eval_os=model.output_stride, decoder=decoder, input_size=size)
    print(f"{cfg.model.backbone.name}  {decoder}  train OS {cfg.model.output_stride}  eval OS {model.output_stride}  "
          f"convention {cfg.convention}  params {result['params'] / 1e6:.2f} M")
    print(f"{'scale':>6} {'input':>11} {'Multiply-Adds':>16}")
    for p in result["passes"]:
        print(f"{p['scale']:>6} {p['size'][0]:>5}x{p['size'][1]:<5} {p['madds'] / 1e9:>15.2f}B")
    if cfg.eval.flip:
        print(f"{'flip':>6} {'':>11} {'x2':>16}")
    print(f"{'total':>6} {'':>11} {result['madds'] / 1e9:>15.2f}B")
    if cfg.complexity.by_module:
        result["by_module"] = count_by_module(model, size, list(cfg.eval.scales), cfg.eval.flip)
        print_by_module(result["by_module"])
    print(json.dumps(result))
    return result


def print_by_module(table: dict) -> None:
    """Each module's parameters and Multiply-Adds; for the rows with depthwise separable convs,
    what standard convs in their place would have, and the saving (standard / separable)."""
    print(f"\n{'module':<34}{'params':>12}{'MAdds':>16}{'separable':>10}{'as standard':>14}{'MAdds':>16}"
          f"{'saving':>8}")

    def line(name, params, madds, count, std_params, std_madds):
        saving = f"{std_madds / madds:.2f}x" if count and madds else ""
        standard = (f"{std_params:>14,}{std_madds:>16,}" if count else f"{'':>14}{'':>16}")
        print(f"{name:<34}{params:>12,}{madds:>16,}{count or '':>10}{standard}{saving:>8}")

    for row in table["rows"]:
        line(row["module"], row["params"], row["madds"], row["separable"], row["standard_params"],
             row["standard_madds"])
    count = sum(r["separable"] for r in table["rows"])
    line("total", table["params"], table["madds"], count, table["standard_params"], table["standard_madds"])
