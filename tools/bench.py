"""Speed of the composed model: `python tools/bench.py backbone=resnet50 data.batch_size=2`."""

from deeplab.cli.verbs import bench

if __name__ == "__main__":
    bench()
