"""Command-line tools built on the other packages."""
