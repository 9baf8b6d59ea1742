#!/usr/bin/env bash
# Trains the demo model's fc 1000 + head with `xray-qc train` on synthetic captures, on the demo's
# own seeded backbone, and stores what is small in models/demo-trained/ (the head as .npy, the
# model card, the training predictions, demo.json). `xray-qc model demo` then builds the 90 MB
# graph from the seeded backbone and this head. Deterministic; ~15 min on a 2-core CPU.
# Usage: scripts/train-demo.sh [WORKDIR] (default: a temporary folder, removed afterwards).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -gt 0 ]; then work=$1; mkdir -p "$work"; else work=$(mktemp -d); trap 'rm -rf "$work"' EXIT; fi
out=models/demo-trained
node bin/xray-qc.js synth --out "$work/data" --count 80 --bundle-size 10 --abnormal-rate 0.4 --seed 2026
node bin/xray-qc.js model demo --backbone-out "$work/backbone"
node bin/xray-qc.js train --data "$work/data" --out "$work/bundle" --name electrode-resnet34-demo --version 2 \
  --conversion local --backbone folded --backbone-weights "$work/backbone" --seed 0 \
  --evaluate local --review-band auto:0.1 --synthetic --head-out "$work/head"
mkdir -p "$out"
cp "$work"/head/fc_*.npy "$work"/bundle/model-card.json "$work"/bundle/model-card.md "$work"/bundle/train-predictions.csv "$out"/
node -e '
const m = require(process.argv[1] + "/manifest.json");
const spec = { version: m.version, conversion: m.preprocess.conversion, bounds: m.preprocess.bounds,
  threshold: m.decision.threshold, review_band: m.decision.review_band, metrics: m.metrics,
  description: "Demo model: ResNet-34 + FC 512/256/2; seeded backbone (not ImageNet), fc 1000 + head trained by xray-qc train on 80 synthetic captures (scripts/train-demo.sh). It tells synthetic parts apart; it knows nothing of real electrodes.",
  synth: { count: 80, bundle_size: 10, abnormal_rate: 0.4, seed: 2026 } };
process.stdout.write(JSON.stringify(spec, null, 2) + "\n");
' "$work/bundle" > "$out/demo.json"
cat "$out/demo.json"
