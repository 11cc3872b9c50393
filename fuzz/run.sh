#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60) and prints libFuzzer's exec count.
#   fuzz/run.sh 600          # ten minutes per target
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`) and a nightly toolchain (or
# RUSTC_BOOTSTRAP=1 on stable, which this script sets if no nightly is installed). New inputs
# go to a temporary corpus; the committed seeds in fuzz/seeds/<target> are only read.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"
if ! cargo fuzz --help >/dev/null 2>&1; then
  echo "fuzz/run.sh: cargo-fuzz is not installed (cargo install cargo-fuzz --locked): skipped"
  exit 0
fi
toolchain=()
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  toolchain=(+nightly)
else
  export RUSTC_BOOTSTRAP=1
fi
status=0
for target in $(cargo "${toolchain[@]}" fuzz list); do
  corpus="$(mktemp -d)"
  log="$(mktemp)"
  echo "::: fuzz $target for ${seconds}s"
  if cargo "${toolchain[@]}" fuzz run "$target" "$corpus" "seeds/$target" -- \
      -max_total_time="$seconds" -rss_limit_mb=2048 >"$log" 2>&1; then
    # libFuzzer's last status line: "#N DONE cov: … exec/s: …"
    grep -E '^#[0-9]+' "$log" | tail -1 | sed "s/^/$target: /"
  else
    echo "fuzz $target FAILED:"; tail -40 "$log"; status=1
  fi
  rm -rf "$corpus" "$log"
done
exit "$status"
