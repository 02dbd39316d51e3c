#!/usr/bin/env bash
# Side-by-side training throughput: lrx's built-in trainer vs. its PyTorch eager twin
# (bench/torch_twin.py), same model, batch and optimizer, byte vocabulary, CPU.
#
#   bench/compare.sh [quick|mid|seed|all] [adamw|muon_adamw|both]
#
# LRX (default target/release/lrx; build it with `cargo build --release`) and PYTHON (default
# .venv/bin/python, with `pip install torch`) pick the programs; TORCH_THREADS sets torch's
# intra-op threads (default: torch's own choice, one per core). Prints tokens/s and the ratio
# lrx / torch, with the 1-minute load average before each measurement. Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
LRX=${LRX:-target/release/lrx}
PYTHON=${PYTHON:-.venv/bin/python}
WHICH=${1:-all}
OPTS=${2:-both}
[ "$OPTS" = both ] && OPTS="adamw muon_adamw"

# name: d_model layers heads d_ff experts top_k seq_len batch_size steps
declare -A SHAPES=(
  [quick]="64 2 4 128 4 2 64 8 80"
  [mid]="128 2 4 512 4 2 128 8 40"
  [seed]="384 6 8 1536 8 2 512 16 3"
)
NAMES=$([ "$WHICH" = all ] && echo "quick mid seed" || echo "$WHICH")
CORPUS=tests/fixtures/genesis.txt

printf "%-6s %-11s %10s %10s %7s  %s\n" shape optimizer lrx_tok/s torch_tok/s ratio load
for name in $NAMES; do
  read -r d l h ff e k s b steps <<<"${SHAPES[$name]}"
  for opt in $OPTS; do
    load=$(cut -d' ' -f1 /proc/loadavg)
    lrx=$("$LRX" train -q --json --cache "${LRX_CACHE:-cache}" \
      --set corpus="\"$CORPUS\"" --set d_model=$d --set layers=$l --set heads=$h --set d_ff=$ff \
      --set experts=$e --set top_k=$k --set seq_len=$s --set batch_size=$b --set steps=$steps \
      --set eval_every=1000000 --set val_batches=1 --set data.tokens=110000 --set optimizer=$opt \
      | "$PYTHON" -c 'import json,sys; print(round(json.load(sys.stdin)["tokens_per_sec"]))')
    torch=$("$PYTHON" bench/torch_twin.py --d_model $d --layers $l --heads $h --d_ff $ff --experts $e \
      --top_k $k --seq_len $s --batch_size $b --steps $steps --warmup_steps 1 --optimizer $opt \
      --corpus $CORPUS --threads "${TORCH_THREADS:-0}" | "$PYTHON" -c 'import json,sys; print(round(json.load(sys.stdin)["tokens_per_sec"]))')
    ratio=$("$PYTHON" -c "print(f'{$lrx/$torch:.2f}')")
    printf "%-6s %-11s %10s %10s %7s  %s\n" "$name" "$opt" "$lrx" "$torch" "$ratio" "$load"
  done
done
