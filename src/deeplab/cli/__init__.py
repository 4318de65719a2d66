"""The command line: checks of a command line against the config tree, the one-line error
convention, and the shared entry point of every user verb."""
