from deeplab.training.run_dir import resume_command_line


def test_a_resume_reads_a_run_stored_while_os_was_a_group(tmp_path):
    """Runs written while `os` was a config group stored it quoted; a resume passes it as a number."""
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "last.ckpt").write_bytes(b"")
    (run / ".hydra" / "overrides.yaml").write_text("- os='8'\n- backbone=resnet18\n")
    args = resume_command_line([f"ckpt_path={run}"])
    assert args[:2] == ["os=8", "backbone=resnet18"]
    assert f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}" in args
