"""The command line: what Hydra's grammar cannot say for the user (command_line), the checks of
the composed config before a run (checks), the one-line error convention (entry), and the shared
entry point of every user verb (verbs)."""

from pathlib import Path

CONF_DIR = Path(__file__).resolve().parents[3] / "conf"  # the checkout's conf/ (an editable install)
