#!/usr/bin/env bash
# The main job on data that ships with the project: train a baseline on the
# example recordings (a real HTTP server under a bounded curl load, recorded
# on a Linux host), then evaluate it on normal and attack recordings.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
chids=target/release/chids
model=target/demo-model
data=examples/data
echo "== chids baseline (modern mode) on $data/training"
$chids baseline --td "$data/training" --od "$model"
echo
echo "== chids evaluate on $data/test/normal (false alarms) and $data/test/normal_and_attack (detections)"
$chids evaluate --model "$model" --ns "$data/test/normal" --ms "$data/test/normal_and_attack"
