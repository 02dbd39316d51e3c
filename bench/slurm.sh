#!/usr/bin/env bash
# Slurm vs local: N short runs of a command trainer (a script that sleeps S seconds), through a
# real one-node Slurm cluster (tests/slurm/one-node.sh) and through the local pool with as many
# slots as the node has CPUs. Prints wall time, the lrx process's CPU time (user + sys, with
# sbatch/squeue, which it waits for) and the Slurm executor's calls.
# usage: bench/slurm.sh [LRX_BINARY] [N=200] [S=0.2] [POLL=1]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
lrx=$(realpath "${1:-$root/target/release/lrx}")
n=${2:-200}; s=${3:-0.2}; poll=${4:-1}
work=$(mktemp -d)
export SLURM_CI_DIR=$work/slurm SLURM_CI_PORT=${SLURM_CI_PORT:-7717}
# shellcheck source=../tests/slurm/one-node.sh
source "$root/tests/slurm/one-node.sh"
trap 'slurm_down; rm -rf "$work"' EXIT
slurm_up
cd "$work"
printf 'sleep %s\necho "{\\"val_loss\\": 1.5}" > "$1/metrics.json"\n' "$s" > t.sh
printf 'train {\n  trainer = command("sh t.sh {out}")\n}\n\nphase p {\n  vary seed in [%s]\n  baseline = false\n}\n' \
  "$(seq -s, 1 "$n")" > study.lrx
cpus=$(nproc)
measure() { # label, args...
  local label=$1; shift
  local t0 t1 u0 u1
  t0=$(date +%s.%N)
  # shellcheck disable=SC2016
  /usr/bin/env bash -c 'time "$@" > out.json 2> err.txt' _ "$lrx" "$@" 2> time.txt
  t1=$(date +%s.%N)
  echo "$label: wall $(echo "$t1 - $t0" | bc) s; lrx CPU $(grep -E 'user|sys' time.txt | tr '\n' ' ')"
  python3 -c 'import json,sys; j=json.load(open("out.json")); print("  runs", j["runs"], "slurm", j.get("slurm"))'
}
measure "slurm ($n runs, --jobs $n, --poll-interval $poll)" run study.lrx --json --cache cache-slurm \
  --executor slurm --jobs "$n" --poll-interval "$poll"
measure "local ($n runs, --jobs $cpus)" run study.lrx --json --cache cache-local --jobs "$cpus"
measure "slurm, all cached" run study.lrx --json --cache cache-slurm --executor slurm --poll-interval "$poll"
