#!/usr/bin/env bash
# Writes the small committed seed corpora of the fuzz targets (run from the repository root):
# a tiny valid IDX file of each kind and a gzip of one, and small valid checkpoints of an MLP
# and of a CNN (written by the `seed_checkpoints` example of retroprop-models).
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=fuzz/seeds
mkdir -p "$seeds/idx" "$seeds/checkpoint"
# labels: magic 0x00000801, 3 labels; images: magic 0x00000803, 2 images of 2×2
printf '\x00\x00\x08\x01\x00\x00\x00\x03\x07\x02\x01' > "$seeds/idx/labels.idx"
printf '\x00\x00\x08\x03\x00\x00\x00\x02\x00\x00\x00\x02\x00\x00\x00\x02\x00\x10\x20\x30\x40\x50\x60\x70' > "$seeds/idx/images.idx"
gzip -9 -n -c "$seeds/idx/images.idx" > "$seeds/idx/images.idx.gz"
mkdir -p "$seeds/safetensors"
cargo run -q -p retroprop-models --example seed_checkpoints -- "$seeds/checkpoint" "$seeds/safetensors"
# the committed format fixtures: version 1 files and a version 2 file with training state
cp crates/models/tests/fixtures/*.ckpt "$seeds/checkpoint/"
# safetensors: a file written by PyTorch (the CNN fixture) beside the export written above
cp crates/models/tests/fixtures/torch/cnn-f32.safetensors "$seeds/safetensors/"
