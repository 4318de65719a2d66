"""docs/tutorial.ipynb: kept without outputs, and executed top to bottom (slow) within 10 minutes
from an empty folder, any cell error failing the test."""

import time

import nbformat
import pytest

from .conftest import ROOT

NOTEBOOK = ROOT / "docs" / "tutorial.ipynb"


def test_the_notebook_is_stored_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)


@pytest.mark.slow
def test_the_notebook_runs_top_to_bottom_within_ten_minutes(tmp_path, monkeypatch):
    from nbclient import NotebookClient

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's own inline backend draws the figures
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    start = time.monotonic()
    client = NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})  # run where a user would: anywhere
    client.execute()
    seconds = time.monotonic() - start
    assert seconds < 600, f"the tutorial took {seconds:.0f} s"
    assert (tmp_path / "aug_preview.png").is_file() and list((tmp_path / "outputs" / "runs").glob("*/*"))
    images = sum(output.get("output_type") == "display_data" and "image/png" in output.get("data", {})
                 for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs)
    assert images == 4, images  # the receptive fields, the curve, the masks, the augmentation: each drawn inline
