#!/usr/bin/env bash
# Data-parallel training over MPI, as `cargo xtask ci` runs it (and a developer can, alone):
# installs Open MPI when absent (CI runs as root on a fresh Debian machine), builds the program
# with the `mpi` feature in its own target directory, then on loopback
#   - a few full-batch steps and one mini-batch epoch on 10 000 images with 1, 2 and 3 ranks,
#     and an epoch of the residual CNN (batch normalisation) on 1 280 images: the reproducible
#     mode's checkpoints (running statistics included) must be identical byte for byte;
#   - the fast mode on 3 ranks: within tolerance of the reproducible run;
#   - a rank killed mid-run: every rank exits non-zero within 60 s and no run directory appears.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v mpirun >/dev/null 2>&1 || [ ! -e /usr/include/x86_64-linux-gnu/openmpi/mpi.h ] && [ ! -e /usr/lib/x86_64-linux-gnu/openmpi/include/mpi.h ]; then
  echo "distributed: installing Open MPI (openmpi-bin libopenmpi-dev libclang-dev)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q openmpi-bin libopenmpi-dev libclang-dev >/dev/null
fi

export CARGO_TARGET_DIR="$PWD/target/mpi"
cargo build -q --release -p retroprop --features mpi
BIN="$CARGO_TARGET_DIR/release/retroprop"
MPIRUN=(mpirun --allow-run-as-root --oversubscribe -quiet)
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

run() { # name ranks flags…  (LIMIT=n: images, 10 000 by default)
  local name=$1 np=$2
  shift 2
  "${MPIRUN[@]}" -np "$np" "$BIN" train --distributed --limit "${LIMIT:-10000}" --threads 1 --json \
    --out "$WORK/$name-$np" "$@" >"$WORK/$name-$np.json"
}

for np in 1 2 3; do
  run full "$np" --full-batch --epochs 3
  run mini "$np" --epochs 1
  LIMIT=1280 run resnet "$np" --model resnet --epochs 1 --batch-size 64
done
for name in full mini resnet; do
  for np in 2 3; do
    cmp "$WORK/$name-1/model.ckpt" "$WORK/$name-$np/model.ckpt"
    echo "distributed: $name, $np ranks: the checkpoint of 1 process, byte for byte"
  done
done

run fast 3 --epochs 1 --reduce fast
python3 - "$WORK/mini-1.json" "$WORK/fast-3.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
d = abs(a["test_loss"] - b["test_loss"])
print(f"distributed: fast mode on 3 ranks: test loss {b['test_loss']:.6f} against {a['test_loss']:.6f} (|difference| {d:.1e})")
assert d < 1e-3, "the fast mode is not within 1e-3 of the reproducible one"
assert abs(a["test_accuracy"] - b["test_accuracy"]) <= 0.01
PY

# a rank killed mid-run: the others stop, nobody writes the run
"${MPIRUN[@]}" -np 2 "$BIN" train --distributed --limit 10000 --threads 1 --epochs 200 \
  --out "$WORK/killed" >/dev/null 2>"$WORK/killed.err" &
launcher=$!
victim=""
for _ in $(seq 100); do
  for pid in $(pgrep -f "retroprop train --distributed --limit 10000 --threads 1 --epochs 200" || true); do
    if tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=1"; then
      victim=$pid
    fi
  done
  [ -n "$victim" ] && break
  sleep 0.1
done
[ -n "$victim" ] || { echo "distributed: rank 1 never started"; exit 1; }
sleep 2
kill -9 "$victim"
start=$SECONDS
status=0
wait "$launcher" || status=$?
elapsed=$((SECONDS - start))
[ "$status" -ne 0 ] || { echo "distributed: the job exited 0 after a rank was killed"; exit 1; }
[ "$elapsed" -le 60 ] || { echo "distributed: the others took ${elapsed} s to stop"; exit 1; }
[ ! -e "$WORK/killed" ] || { echo "distributed: a partial run directory was written"; exit 1; }
if pgrep -f "retroprop train --distributed --limit 10000 --threads 1 --epochs 200" >/dev/null; then
  echo "distributed: a rank is still running after the job ended"; exit 1
fi
echo "distributed: rank 1 killed: the job stopped in ${elapsed} s with status $status, no run directory"
