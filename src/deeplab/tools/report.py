"""The sweep report: one row a job with the paper's table columns, mIoU against Multiply-Adds.

Written into the sweep dir when a multirun ends (a Hydra callback) and by
`python tools/report.py SWEEP_DIR`, from each job's summary.json."""

import csv
import json
from pathlib import Path

from hydra.experimental.callback import Callback

from deeplab.training.sweep import REPEATS  # seed and data.fold repeat a setting, on W&B as here

COLUMNS = ("job", "name", "backbone", "train_os", "eval_os", "decoder", "scales", "flip", "separable", "mIoU",
           "madds_billion", "params_million", "train_images_per_sec", "status", "pruned_epoch")
# report.csv: the settings' rows (row=setting, when a setting was repeated over seeds or folds),
# then the runs' (row=run)
CSV_COLUMNS = ("row", "setting", "n", "jobs", *COLUMNS, "mIoU_std", "madds_billion_std", "params_million_std",
               "train_images_per_sec_std")


def _job_dirs(sweep_dir: Path) -> list[Path]:
    jobs = [p for p in sweep_dir.iterdir()
            if p.is_dir() and ((p / ".hydra").is_dir() or (p / "summary.json").is_file())]
    return sorted(jobs, key=lambda p: (0, int(p.name)) if p.name.isdigit() else (1, p.name))


STATS = ("mIoU", "madds_billion", "params_million", "train_images_per_sec")  # aggregated over repeats


def _varying_overrides(jobs: dict[str, Path], leave_out: tuple = ()) -> dict[str, str]:
    """Each job's overrides of the keys whose values differ across the jobs (but `leave_out`):
    its name."""
    from omegaconf import OmegaConf

    overrides = {}
    for label, job in jobs.items():
        path = job / ".hydra" / "overrides.yaml"
        pairs = [o.split("=", 1) for o in OmegaConf.load(path)] if path.is_file() else []
        overrides[label] = {key: value for key, value in pairs}
    keys = {k for o in overrides.values() for k in o}
    varying = [k for k in sorted(keys) if len({o.get(k) for o in overrides.values()}) > 1 and k not in leave_out]
    return {label: ",".join(f"{k}={o[k]}" for k in varying if k in o).replace("'", "")
            for label, o in overrides.items()}


def aggregate(rows: list[dict]) -> list[dict]:
    """One row a setting (the runs' `setting`: their swept overrides but seed and data.fold): how
    many finished runs it has, and the mean and sample standard deviation of each of STATS."""
    import statistics

    groups: dict[str, list[dict]] = {}
    for row in rows:
        if row.get("status") == "ok":
            groups.setdefault(row["setting"], []).append(row)
    table = []
    for setting, members in groups.items():
        row = {"row": "setting", "setting": setting, "name": setting or "(all)", "n": len(members),
               "jobs": " ".join(m["job"] for m in members)}
        for key in STATS:
            values = [m[key] for m in members if m.get(key) is not None]
            row[key] = statistics.fmean(values) if values else None
            row[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else None
        table.append(row)
    return table


def read_rows(sweep_dirs: list[Path]) -> list[dict]:
    """One row a job of the sweeps; with several sweeps, a job is named by its folder below
    their common parent (`14-02-11_203/0`)."""
    import os

    common = Path(os.path.commonpath([d.resolve() for d in sweep_dirs])) if len(sweep_dirs) > 1 else None
    jobs = {str(job.resolve().relative_to(common)) if common else job.name: job
            for sweep_dir in sweep_dirs for job in _job_dirs(sweep_dir)}
    names, settings_of = _varying_overrides(jobs), _varying_overrides(jobs, leave_out=REPEATS)
    rows = []
    for label, job in jobs.items():
        path = job / "summary.json"
        if not path.is_file():  # a job that failed before writing its summary
            rows.append({"row": "run", "job": label, "name": names[label], "setting": settings_of[label],
                         "status": "failed"})
            continue
        summary = json.loads(path.read_text())
        settings = summary.get("settings") or {}
        miou, pruned = summary.get("val/mIoU_best"), summary.get("pruned")
        if pruned:  # the value it was stopped at, as an Optuna trial records it
            miou = pruned["val/mIoU"]
        rows.append({
            "row": "run", "setting": settings_of[label],
            # (across sweeps, what tells their jobs apart; in one, the name its W&B run has)
            "job": label, "name": names[label] if common else settings.get("name", "") or names[label],
            "backbone": settings.get("backbone"),
            "train_os": settings.get("train_os"), "eval_os": settings.get("eval_os"),
            "decoder": settings.get("decoder"), "scales": " ".join(f"{s:g}" for s in settings.get("scales", [])),
            "flip": settings.get("flip"), "separable": settings.get("separable"), "mIoU": miou,
            "madds_billion": summary["madds"] / 1e9 if summary.get("madds") else None,
            "params_million": summary["params"] / 1e6 if summary.get("params") else None,
            "train_images_per_sec": summary.get("train_images_per_sec"),
            "status": "pruned" if pruned else "ok" if miou is not None else "no validation",
            "pruned_epoch": f"{pruned['epoch']:g}" if pruned else None,
        })
    return rows


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}" if value < 10 else f"{value:.2f}"
    return str(value)


def write_report(sweep_dir: str | Path, *more: str | Path, out: str | Path | None = None) -> list[dict]:
    """Writes report.csv, report.md and pareto.png into the sweep dir (or `out`, for the jobs of
    several sweeps together); returns the rows."""
    sweeps = [Path(d) for d in (sweep_dir, *more)]
    out = Path(out) if out is not None else sweeps[0]
    rows = read_rows(sweeps)
    settings = aggregate(rows)
    repeated = any(s["n"] > 1 for s in settings)  # seeds or folds: the settings' table leads
    out.mkdir(parents=True, exist_ok=True)
    with (out / "report.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows({c: row.get(c) for c in CSV_COLUMNS} for row in (settings if repeated else []) + rows)
    lines = [f"# Sweep {' + '.join(str(d) for d in sweeps)}", "",
             "Multiply-Adds: one inference of a 513x513 image at the run's eval settings (every scale and flip "
             "counted). mIoU: the best validation's; a pruned job's is the value it was stopped at (sweep.prune).",
             ""]
    if repeated:
        lines += ["Settings over their seeds and folds: mean +- sample standard deviation of n runs.", "",
                  "| setting | n | jobs | mIoU | Multiply-Adds (B) | params (M) | train img/s |", "|---" * 7 + "|"]
        lines += [f"| {s['name']} | {s['n']} | {s['jobs']} | " + " | ".join(_spread(s, k) for k in STATS) + " |"
                  for s in settings]
        lines += ["", "Runs:", ""]
    lines += ["| job | run | backbone | train OS | eval OS | decoder | scales | flip | separable | mIoU | "
              "Multiply-Adds (B) | params (M) | train img/s | status | pruned after (epochs) |",
              "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_cell(row.get(c)) for c in COLUMNS) + " |" for row in rows]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    plot_pareto(out / "pareto.png", settings if repeated else [r for r in rows if r["status"] == "ok"])
    return rows


def _spread(row: dict, key: str) -> str:
    if row.get(key) is None:
        return ""
    std = row.get(f"{key}_std")
    return _cell(row[key]) + (f" +- {_cell(std)}" if std is not None else "")


def plot_pareto(path: Path, rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [r for r in rows if r.get("mIoU") is not None and r.get("madds_billion") is not None]
    fig, ax = plt.subplots(figsize=(9, 5))
    # Points are numbered and keyed beside the plot: names written at the points overlap as soon
    # as two runs score alike.
    for number, row in enumerate(points, start=1):
        ax.errorbar(row["madds_billion"], row["mIoU"], yerr=row.get("mIoU_std"), fmt="o", color="tab:blue",
                    capsize=3)
        ax.annotate(str(number), (row["madds_billion"], row["mIoU"]), fontsize=8, xytext=(4, 4),
                    textcoords="offset points")
    key = [f"{n}: {r['name'] or 'job ' + str(r.get('job'))}" + (f" (n={r['n']})" if "n" in r else "")
           for n, r in enumerate(points, start=1)]
    if key:
        fig.text(0.72, 0.5, "\n".join(key), fontsize=7, va="center", family="monospace")
        fig.subplots_adjust(right=0.7)
    front, best = [], float("-inf")  # the runs no cheaper run beats
    for row in sorted(points, key=lambda r: (r["madds_billion"], -r["mIoU"])):
        if row["mIoU"] > best:
            front.append(row)
            best = row["mIoU"]
    if len(front) > 1:
        ax.plot([r["madds_billion"] for r in front], [r["mIoU"] for r in front], color="tab:orange",
                label="Pareto front")
        ax.legend()
    ax.set_xlabel("Multiply-Adds per 513x513 image (billions)")
    ax.set_ylabel("val mIoU (best)")
    ax.set_title(f"{len(points)} settings, mean +- std over seeds and folds" if points and "n" in points[0]
                 else f"{len(points)} runs")
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


class SweepReport(Callback):
    """Hydra callback: the report, rewritten as each job of a multirun ends (so that it exists
    even when a failed job stops the sweep, and on SLURM, where jobs end elsewhere) and when the
    multirun ends. Failed jobs are rows too."""

    def on_job_end(self, config, job_return, **kwargs) -> None:
        from hydra.types import RunMode

        if config.hydra.mode == RunMode.MULTIRUN:
            write_report(Path(config.hydra.sweep.dir))

    def on_multirun_end(self, config, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if sweep_dir.is_dir():
            rows = write_report(sweep_dir)
            print(f"sweep report: {sweep_dir / 'report.md'} ({len(rows)} runs)")


def main(argv: list[str]) -> int:
    """`python tools/report.py SWEEP_DIR [SWEEP_DIR ...] [--out DIR]` (`deeplab-report`); returns
    the exit status."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="tools/report.py", description="The report of one sweep, or of the jobs "
                                     "of several sweeps together (seeds run in two sweeps, say), from their run dirs.")
    parser.add_argument("sweep_dirs", nargs="+", metavar="SWEEP_DIR", help="a multirun's directory")
    parser.add_argument("--out", help="where the report goes (default: the one SWEEP_DIR; needed for several)")
    args = parser.parse_args(argv)
    sweeps = [Path(d) for d in args.sweep_dirs]
    for sweep_dir in sweeps:
        if not sweep_dir.is_dir():
            print(f"error: SWEEP_DIR={sweep_dir} is not a directory", file=sys.stderr)
            return 2
        if not _job_dirs(sweep_dir):
            print(f"error: SWEEP_DIR={sweep_dir} holds no job directories (0/, 1/, ... with summary.json)",
                  file=sys.stderr)
            return 2
    if len(sweeps) > 1 and args.out is None:
        print(f"error: {len(sweeps)} sweep dirs: give --out DIR for their report", file=sys.stderr)
        return 2
    rows = write_report(*sweeps, out=args.out)
    out = Path(args.out) if args.out else sweeps[0]
    print(f"wrote {out / 'report.md'}, report.csv and pareto.png ({len(rows)} runs)")
    return 0
