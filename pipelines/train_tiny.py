#!/usr/bin/env python3
"""train_tiny.py: a real but tiny training script for lrx's command trainer.

A character bigram language model (a table of next-character logits) trained with SGD and
momentum on a text generated deterministically from a seed, in about a second on one CPU core.
Python 3 standard library only. It follows lrx's contract for a training script:

  --out DIR         write `metrics.json` (final metrics) and `progress.jsonl` (one JSON object
                    per logged step, appended as it trains) into DIR
  --steps N         the budget: the learning-rate schedule spans N steps
  --stop-at K       stop after step K and report there (a halving rung); default N
  --checkpoint DIR  keep the full state in DIR: a run that finds one there continues from it,
                    and a run stopped at K leaves one for the next rung

Everything it computes depends only on its arguments, so a run resumed from step K ends with
exactly the same numbers as one trained straight through. It prints what it trained to stdout
(lrx keeps that log with the run): `trained steps 101..300 (resumed at step 100)`.

Try it alone:  python3 pipelines/train_tiny.py --lr 0.5 --steps 200 --out /tmp/tiny
"""

import argparse
import json
import math
import os
import random
import sys

ALPHABET = " .abcdefghijklmnopqrstuvwxyz"
WORDS = (
    "the a one every some model data rate learning step loss run cache study phase warm cool "
    "small large fast slow tiny deep wide train test value key seed grid zoom halving rung "
    "is was runs makes finds keeps picks trains stops learns drops rises falls"
).split()


def make_text(seed, chars):
    """A text of sentences drawn from WORDS: structured enough that a bigram model learns."""
    rng = random.Random(seed)
    parts, n = [], 0
    while n < chars:
        sentence = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9))) + ". "
        parts.append(sentence)
        n += len(sentence)
    return "".join(parts)[:chars]


def pair_counts(text, index):
    """Counts of each (current, next) character pair, as a flat list V*V."""
    v = len(ALPHABET)
    counts = [0] * (v * v)
    for a, b in zip(text, text[1:]):
        counts[index[a] * v + index[b]] += 1
    return counts


def log_softmax_row(row):
    m = max(row)
    lse = m + math.log(sum(math.exp(x - m) for x in row))
    return [x - lse for x in row]


def evaluate(w, counts):
    """Mean cross-entropy and next-character accuracy over a split, from its pair counts."""
    v = len(ALPHABET)
    total, loss, correct = 0, 0.0, 0
    for a in range(v):
        row_counts = counts[a * v:(a + 1) * v]
        n = sum(row_counts)
        if n == 0:
            continue
        logp = log_softmax_row(w[a * v:(a + 1) * v])
        loss -= sum(c * lp for c, lp in zip(row_counts, logp))
        best = max(range(v), key=lambda b: logp[b])
        correct += row_counts[best]
        total += n
    return loss / total, correct / total


def lr_at(step, steps, lr, warmup):
    """Linear warmup over `warmup` of the budget, then a cosine down to 10 % (spans `steps`)."""
    t = step / steps
    if warmup > 0 and t < warmup:
        return lr * (step + 1) / (warmup * steps + 1)
    progress = (t - warmup) / max(1e-12, 1 - warmup)
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def save(checkpoint, state):
    """Writes the state atomically: a reader sees the old or the new one, never half."""
    tmp = os.path.join(checkpoint, "state.json.tmp")
    with open(tmp, "w") as f:
        json.dump(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, os.path.join(checkpoint, "state.json"))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--lr", type=float, required=True)
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--stop-at", type=int, default=None)
    p.add_argument("--out", required=True)
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--warmup", type=float, default=0.0)
    p.add_argument("--smoothing", type=float, default=0.0, help="label smoothing in [0, 1)")
    p.add_argument("--text-seed", type=int, default=7, help="which generated text to learn")
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--eval-every", type=int, default=50)
    args = p.parse_args()
    stop_at = min(args.stop_at or args.steps, args.steps)

    v = len(ALPHABET)
    index = {c: i for i, c in enumerate(ALPHABET)}
    text = make_text(args.text_seed, 20_000)
    split = len(text) * 9 // 10
    train_text, val_text = text[:split], text[split:]
    val_counts = pair_counts(val_text, index)

    os.makedirs(args.out, exist_ok=True)
    progress_path = os.path.join(args.out, "progress.jsonl")
    state = {"step": 0, "w": [0.0] * (v * v), "velocity": [0.0] * (v * v), "history": []}
    if args.checkpoint:
        os.makedirs(args.checkpoint, exist_ok=True)
        path = os.path.join(args.checkpoint, "state.json")
        if os.path.exists(path):
            with open(path) as f:
                saved = json.load(f)
            if saved.get("args") == fingerprint(args):
                state = saved
    resumed_at = state["step"]
    # The rows before the resume point, so that the run's history is whole.
    with open(progress_path, "a") as progress:
        for row in state["history"]:
            progress.write(json.dumps(row) + "\n")

    w, velocity = state["w"], state["velocity"]
    step = state["step"]
    train_loss = float("nan")
    with open(progress_path, "a") as progress:
        while step < stop_at:
            # Each step's batch depends on the seed and the step only: resuming needs no RNG state.
            rng = random.Random(args.seed * 1_000_003 + step)
            grad = [0.0] * (v * v)
            loss = 0.0
            for _ in range(args.batch):
                i = rng.randrange(len(train_text) - 1)
                a, b = index[train_text[i]], index[train_text[i + 1]]
                logp = log_softmax_row(w[a * v:(a + 1) * v])
                loss -= (1 - args.smoothing) * logp[b] + args.smoothing * sum(logp) / v
                for j in range(v):
                    target = (1 - args.smoothing) * (j == b) + args.smoothing / v
                    grad[a * v + j] += (math.exp(logp[j]) - target) / args.batch
            train_loss = loss / args.batch
            lr = lr_at(step, args.steps, args.lr, args.warmup)
            for j in range(v * v):
                velocity[j] = args.momentum * velocity[j] + grad[j]
                w[j] -= lr * velocity[j]
            step += 1
            row = None
            # Step 1 too: the divergence rule compares later losses with the first one reported.
            if step == 1 or step % args.log_every == 0 or step % args.eval_every == 0 or step == stop_at:
                row = {"step": step, "train_loss": train_loss, "lr": lr, "tokens": step * args.batch}
            if row is not None and (step % args.eval_every == 0 or step == stop_at):
                row["val_loss"], row["val_accuracy"] = evaluate(w, val_counts)
            if row is not None:
                if not math.isfinite(train_loss):
                    row["train_loss"] = "NaN"
                progress.write(json.dumps(row) + "\n")
                progress.flush()
                state["history"].append(row)
            if not math.isfinite(train_loss):
                break

    val_loss, val_accuracy = evaluate(w, val_counts)
    if args.checkpoint and step == stop_at:
        state.update(step=step, w=w, velocity=velocity, args=fingerprint(args))
        save(args.checkpoint, state)
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump({"val_loss": val_loss, "val_accuracy": val_accuracy, "train_loss": train_loss,
                   "val_ppl": math.exp(min(val_loss, 700.0))}, f)
    print(f"trained steps {resumed_at + 1}..{step} (resumed at step {resumed_at}) of {args.steps}")
    return 0


def fingerprint(args):
    """What a checkpoint must have been made with to be continued (everything but where to stop
    and where the files go)."""
    skip = {"stop_at", "out", "checkpoint"}
    return {k: val for k, val in sorted(vars(args).items()) if k not in skip}


if __name__ == "__main__":
    sys.exit(main())
