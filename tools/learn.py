"""Learning against a plain loop: `python tools/learn.py data=camvid data.root=... backbone=resnet18`."""

from deeplab.cli.verbs import learn

if __name__ == "__main__":
    learn()
