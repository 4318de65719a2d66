"""Lightning training: the module, callbacks, loggers, and the run that ties them to a config."""
