#!/usr/bin/env bash
# The GPU measurement of the fast path, prepared for a lent device (see docs/performance.md):
# ResNet-101 and Xception-65, OS16, 513x513, batch 16: fp32, bf16 + channels_last, and + compile.
# Here, first: ../shared/device/wheels.sh   (gathers the wheels the GPU image lacks into .whl/)
# On the device, from the project root, with .whl carried:  bash tools/gpu_bench.sh "$OUT"
# PEAK_TFLOPS: the card's dense bf16 matrix rate for model FLOP utilisation (H100 SXM: 989).
set -euo pipefail
out=${1:-gpu_bench}
mkdir -p "$out"
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD/src
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
peak=${PEAK_TFLOPS:-989}
common=(os=16 data.batch_size=16 bench.input_size=[513,513] bench.warmup=5 bench.iterations=20 bench.repeats=3
        bench.loader_batches=0 bench.peak_tflops=$peak trainer=gpu data=voc)
for backbone in resnet101 xception65; do
  python3 tools/bench.py backbone=$backbone "${common[@]}" trainer.precision=32-true model.channels_last=false \
    bench.output="$out/$backbone-fp32.json"
  python3 tools/bench.py backbone=$backbone "${common[@]}" \
    bench.output="$out/$backbone-bf16-cl.json"
  python3 tools/bench.py backbone=$backbone "${common[@]}" \
    model.compile=true bench.output="$out/$backbone-bf16-cl-compile.json"
done
