"""The one error type for a user's mistake: every entry point prints its message as one line,
`error: ...`, and exits with its exit code. Each package raises its own subclass, so a message
also says where it came from in a traceback (HYDRA_FULL_ERROR=1)."""


class UserError(ValueError):
    """Something the user gave cannot work; the message is one line naming the key or file."""

    exit_code = 2  # what argparse and Hydra exit with on a usage error


class ConfigError(UserError):
    """A configuration value that cannot work."""


def required(key: str) -> ConfigError:
    """A mandatory value (`???` in the YAML) the user left out."""
    return ConfigError(f"{key} is required; give it on the command line: {key}=VALUE")


class DatasetError(UserError):
    """A dataset on disk is missing or malformed; the message names the path."""


class CheckpointError(UserError):
    """A checkpoint that cannot be used; the message names the file."""


class NothingToDo(UserError):
    """The command asks for nothing that is not done already (a finished run resumed): said in one
    line, exit status 0, no file touched."""

    exit_code = 0
