"""Training loader throughput: `python tools/bench_loader.py data=voc data.root=PATH workers=[0,1,2]`."""

from deeplab.cli.verbs import bench_loader

if __name__ == "__main__":
    bench_loader()
