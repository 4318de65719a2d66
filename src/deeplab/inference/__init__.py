"""Running a trained network as the paper evaluates it, and measuring it: multi-scale, flip and
sliding-window inference, the segmentation metric, Multiply-Add counting (plain PyTorch)."""
