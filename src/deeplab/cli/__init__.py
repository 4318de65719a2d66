"""The command line: what Hydra's grammar cannot say for the user (command_line), the checks of
the composed config before a run (checks), the one-line error convention (entry), and the shared
entry point of every user verb (verbs)."""

from deeplab import CONF_DIR

__all__ = ["CONF_DIR"]
