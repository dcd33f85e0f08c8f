#!/bin/sh
# Seeds the fuzz corpora (fuzz/corpus/<target>/, git-ignored) from the
# shared real data ($CHIDS_SHARED) and the project's own examples/data.
# Seeds are cut small (a few KiB) so libFuzzer mutates them quickly; the
# shared data itself is never copied into the repository.
# Usage: fuzz/seed-corpus.sh [path/to/chids]   (default: target/release/chids)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
shared=${CHIDS_SHARED:-/work/shared/data}
parity=${CHIDS_PARITY:-$(dirname "$shared")/parity}
chids=${1:-$repo/target/release/chids}
corpus=$here/corpus
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$corpus/text_lines" "$corpus/lidds_zip" "$corpus/bundle_load" "$corpus/scap_blocks"

# First N bytes of a file, cut back to the last whole line.
cut_lines() { head -c "$2" "$1" | sed '$d'; }

# text_lines: selector byte (even = sysdig text, odd = LID-DS .sc) + lines.
n=0
for txt in "$parity"/sysdig_text/*.txt; do
    [ -f "$txt" ] || continue
    n=$((n + 1))
    { printf '\000'; cut_lines "$txt" 6000; } >"$corpus/text_lines/sysdig-$n"
done
n=0
for zip in "$repo"/examples/data/training/*.zip "$repo"/examples/data/test/*/*.zip "$shared"/lidds2021/*.zip; do
    [ -f "$zip" ] || continue
    n=$((n + 1))
    d=$work/z$n
    mkdir -p "$d"
    unzip -q -o "$zip" '*.sc' '*.json' -d "$d"
    sc=$(find "$d" -name '*.sc' | head -n 1)
    json=$(find "$d" -name '*.json' | head -n 1)
    { printf '\001'; cut_lines "$sc" 6000; } >"$corpus/text_lines/sc-$n"
    # lidds_zip: a small zip of the cut .sc and the .json, and the json alone
    # (the target also hands every input to the labels parser).
    cut_lines "$sc" 6000 >"$d/cut.sc"
    (cd "$d" && cp "$json" cut.json && zip -q -X small.zip cut.sc cut.json)
    cp "$d/small.zip" "$corpus/lidds_zip/zip-$n"
    cp "$json" "$corpus/lidds_zip/json-$n"
done
# One whole example recording, as written by the project's generator.
cp "$repo"/examples/data/training/normal_train_1.zip "$corpus/lidds_zip/whole-1"

# scap_blocks: the smaller real captures, whole.
for scap in "$shared"/scap/falco/*.scap "$shared"/scap/libs/*.scap; do
    [ -f "$scap" ] || continue
    cp "$scap" "$corpus/scap_blocks/$(basename "$scap")"
done

# bundle_load: u32 little-endian length of baseline.json, baseline.json,
# then the second file (model.safetensors or stide_sequences.json).
if [ -x "$chids" ]; then
    pack() {
        len=$(wc -c <"$1")
        python3 -c 'import struct,sys; sys.stdout.buffer.write(struct.pack("<I", int(sys.argv[1])))' "$len"
        cat "$1" "$2"
    }
    "$chids" baseline --training "$repo"/examples/data/training --out "$work/ae" --epochs 1 --seed 0 >/dev/null 2>&1
    pack "$work/ae/baseline.json" "$work/ae/model.safetensors" >"$corpus/bundle_load/autoencoder"
    "$chids" baseline --training "$repo"/examples/data/training --out "$work/st" --detector stide >/dev/null 2>&1
    pack "$work/st/baseline.json" "$work/st/stide_sequences.json" >"$corpus/bundle_load/stide"
else
    echo "seed-corpus: $chids not found: bundle_load gets no seeds (build chids first)" >&2
fi
for t in "$corpus"/*; do echo "$(basename "$t"): $(ls "$t" | wc -l) seeds"; done
