"""tools/bench_loader.py times the training loader alone for each worker count."""

import json

from ..conftest import run_script


def test_loader_benchmark_reports_throughput(tmp_path):
    result = run_script("tools/bench_loader.py", f"paths.data_dir={tmp_path}", "data.prepare.num_train=16",
                        "data.prepare.num_val=2", "data.batch_size=4", "workers=[0,1]", "batches=2")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads(result.stdout.strip().splitlines()[-1])
    assert [r["workers"] for r in rows] == [0, 1]
    assert all(r["images"] == 8 and r["images_per_sec"] > 0 for r in rows)
