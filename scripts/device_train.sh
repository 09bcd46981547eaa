#!/usr/bin/env bash
# Train on a lent GPU for a fixed number of minutes and bring the run's model back.
#
# Sessions lent a GPU (the device tool) get about 15 minutes of it, start-up included, so a run there must
# stop on time *and* keep what it learned: `timeout` sends SIGTERM, on which `ganedit train` finishes
# the step in hand, saves its state and exports model.safetensors (ganedit.train.common). What comes back
# from the machine is the folder $OUT: the model, the run's config and log, and its last sample grid.
#
#   bash scripts/device_train.sh MINUTES ganedit-train-arguments...
#
# From the device tool, in the repository root, with the training photos carried (data/ is git-ignored;
# data/photos/train is about 36 MiB, under the tool's 64 MiB):
#
#   run(command="bash scripts/device_train.sh 7 train pan --config configs/pan-inpaint.toml \
#         --data data/photos/train --set init=src/ganedit/weights/pan-inpaint.safetensors \
#         --set batch_size=32 --set workers=12 --steps 200000",
#       carry=["data/photos/train"], timeout_s=600)
#
# The device's own python3 has torch, click, rich, pillow, safetensors and huggingface-hub, so the
# checkout runs from src/ without an install. --out and --device are this script's (a run folder on the
# machine's disk, cuda); give --steps larger than the minutes allow and let the clock stop the run. On a
# machine without a GPU the same command runs on the CPU (how this script was checked), with --device cpu.
set -euo pipefail

if [[ $# -lt 2 || ! $1 =~ ^[0-9]+([.][0-9]+)?$ ]]; then
    echo "usage: bash scripts/device_train.sh MINUTES ganedit-train-arguments..." >&2
    exit 2
fi
minutes=$1
shift
out=${OUT:-runs/device}
run=${DEVICE_RUN:-/tmp/ganedit-device-run}
device=${DEVICE:-cuda}
mkdir -p "$out"
rm -rf "$run"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"

status=0
timeout -s TERM -k 60 "${minutes}m" python3 -m ganedit "$@" --out "$run" --device "$device" || status=$?
# 124: the clock stopped it (the model was exported on SIGTERM); anything else non-zero is a failure.
if [[ $status -ne 0 && $status -ne 124 ]]; then
    echo "training failed with exit code $status" >&2
fi
for name in model.safetensors config.toml log.jsonl; do
    if [[ -f "$run/$name" ]]; then cp "$run/$name" "$out/"; fi
done
last_grid=$(ls "$run"/samples/*.png 2>/dev/null | tail -n 1 || true)
if [[ -n $last_grid ]]; then cp "$last_grid" "$out/last-samples.png"; fi
ls -l "$out"
if [[ ! -f "$out/model.safetensors" ]]; then
    echo "no model came out of the run" >&2
    exit 1
fi
if [[ $status -ne 0 && $status -ne 124 ]]; then exit "$status"; fi
