"""Config to objects without Lightning: the model a config describes, the model a checkpoint holds,
the evaluation data and inference settings. Shared by training, evaluation and the tools."""
