#!/usr/bin/env bash
# The GPU figures of docs/performance.md in one run (an H200 and 16 CPUs: ~10 minutes).
#   bash bench/gpu.sh [OUT_DIR]
# Needs: the package's dependencies with a CUDA torch, and demucs (`pip install --no-deps demucs` is enough:
# its speed is measured with an untrained HTDemucs, so no weights are downloaded).
set -euo pipefail
OUT=${1:-${OUT:-bench-gpu-out}}
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
W=$(mktemp -d)
# 1. the seed's 150 x 30 songs end to end: build, prepare sample (+ demucs x realtime, 8 windows a batch),
#    one epoch of each trainer with the default schedule (GPU busy % from nvidia-smi), embed, index,
#    recommend, evaluate, plot
python bench/scale.py --device cuda --dir "$W" --keep --prepare-songs 16 --json "$OUT/scale.json" \
  2>&1 | tee "$OUT/scale.txt"
# 2. torch.compile on vs off (the default is off until this says it pays)
python bench/scale.py --device cuda --dir "$W" --keep --steps train-contrastive,train-tcae \
  --set contrastive.train.compile=true --set tcae.train.compile=true --json "$OUT/compile.json" \
  2>&1 | tee "$OUT/compile.txt"
# 3. a bigger batch than the automatic 4x (does the GPU get busier?)
python bench/scale.py --device cuda --dir "$W" --keep --steps train-contrastive,train-tcae \
  --set contrastive.train.gpu_batch_size=256 --set tcae.train.gpu_batch_size=64 --json "$OUT/batch8x.json" \
  2>&1 | tee "$OUT/batch8x.txt"
# 4. embedding: songs per batch vs one at a time
python bench/embed.py --project "$W/project" --device cuda --songs 512 --batch 16,64,128 2>&1 | tee "$OUT/embed.txt"
rm -rf "$W"
