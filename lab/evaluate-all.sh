#!/usr/bin/env bash
# Trains and evaluates chids on every scenario recorded under OUT (default
# lab/out): a modern model (per-thread edges, the default), a --compat
# model and a STIDE baseline, each on training/ with its operating
# threshold set from validation/ (normal data only; attack recordings play
# no part in choosing it). Writes per scenario and detector
# OUT/results/<scenario>/<detector>.json (chids evaluate --json, at the
# operating point) and the summary table OUT/results/summary.md (every
# detector with results there, also from earlier runs).
# usage: lab/evaluate-all.sh [SCENARIO...]
# knobs: OUT, CHIDS (default target/release/chids), EPOCHS, TRAIN_SEED,
#   DETECTORS (default "modern compat stide"; also modern-stream: modern
#   with --edges stream, for comparison)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
die() { echo "lab: $*" >&2; exit 1; }
OUT=${OUT:-$HERE/out}
CHIDS=${CHIDS:-$REPO/target/release/chids}
TRAIN_SEED=${TRAIN_SEED:-0}
[ -x "$CHIDS" ] || command -v "$CHIDS" >/dev/null || die "chids binary '$CHIDS' not found: cargo build --release, or set CHIDS"
[ -d "$OUT" ] || die "no recordings in $OUT: run lab/run-all.sh first"
scen=("$@")
if [ ${#scen[@]} -eq 0 ]; then
	for d in "$OUT"/*/training; do [ -d "$d" ] && scen+=("$(basename "$(dirname "$d")")"); done
fi
[ ${#scen[@]} -gt 0 ] || die "no scenario folders (with training/) in $OUT"
read -r -a detectors <<<"${DETECTORS:-modern compat stide}"
report=0
"$CHIDS" evaluate --help 2>/dev/null | grep -q -- '--report' && report=1
epochs=()
[ -n "${EPOCHS:-}" ] && epochs=(--epochs "$EPOCHS")
RES=$OUT/results
for s in "${scen[@]}"; do
	base=$OUT/$s
	for sub in training test/normal test/normal_and_attack; do
		[ -n "$(find "$base/$sub" -name '*.zip' -print -quit 2>/dev/null)" ] || die "$s: no recordings in $base/$sub"
	done
	mkdir -p "$RES/$s"
	for det in "${detectors[@]}"; do
		model=$OUT/models/$s/$det
		rm -rf "$model"
		case $det in
		modern) args=() ;;
		modern-stream) args=(--edges stream) ;;
		compat) args=(--compat) ;;
		stide) args=(--detector stide) ;;
		*) die "unknown detector '$det' in DETECTORS (modern, modern-stream, compat, stide)" ;;
		esac
		echo "== $s: $det" >&2
		val=()
		[ -n "$(find "$base/validation" -name '*.zip' -print -quit 2>/dev/null)" ] && val=(--vd "$base/validation")
		"$CHIDS" baseline --td "$base/training" "${val[@]}" --od "$model" --seed "$TRAIN_SEED" "${epochs[@]}" "${args[@]}" \
			>"$RES/$s/$det.baseline.txt" 2>&1 || { cat "$RES/$s/$det.baseline.txt" >&2; die "$s: $det baseline failed"; }
		rep=()
		[ "$report" = 1 ] && rep=(--report "$RES/$s/$det-report")
		"$CHIDS" evaluate --model "$model" --ns "$base/test/normal" --ms "$base/test/normal_and_attack" \
			--json "${rep[@]}" >"$RES/$s/$det.json" 2>"$RES/$s/$det.evaluate.err" ||
			{ cat "$RES/$s/$det.evaluate.err" >&2; die "$s: $det evaluate failed"; }
	done
done
/usr/bin/python3 "$HERE/summarize.py" "$OUT" "${scen[@]}" >"$RES/summary.md"
cat "$RES/summary.md"
