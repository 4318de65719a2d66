"""A Hydra launcher plugin of this project (Hydra finds launchers in the hydra_plugins namespace)."""
