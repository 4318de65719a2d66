"""Deployment beyond the FP32 ONNX graph: INT8 by post-training static quantisation, and what a
conversion costs, measured against the PyTorch model on real images. Needs the optional
packages of `pip install 'deeplab[deploy]'`."""
