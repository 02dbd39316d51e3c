#!/usr/bin/env python3
"""torch_train.py: a compact nanoGPT-style PyTorch script, plugged into lrx as a command trainer.

It shows what a researcher's own script needs for lrx (see pipelines/torch_example.lrx):
arguments for the values lrx sweeps, progress lines in `{out}/progress.jsonl`, a checkpoint in
`{checkpoint}` that a halving rung continues from, and `metrics.json` at the end. It needs
PyTorch (`pip install torch`); lrx's CI does not run it.

Data: a UTF-8 text file (`--data`), trained on bytes (vocabulary 256), the last 10 % held out.

  python3 pipelines/torch_train.py --data README.md --lr 3e-3 --steps 50 --out /tmp/torch
"""

import argparse
import json
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, d, heads, dropout):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d), nn.Dropout(dropout))

    def forward(self, x, mask):
        h = self.ln1(x)
        x = x + self.attn(h, h, h, attn_mask=mask, need_weights=False)[0]
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    def __init__(self, d, layers, heads, seq_len, dropout):
        super().__init__()
        self.tok = nn.Embedding(256, d)
        self.pos = nn.Embedding(seq_len, d)
        self.blocks = nn.ModuleList(Block(d, heads, dropout) for _ in range(layers))
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, 256, bias=False)
        self.head.weight = self.tok.weight

    def forward(self, idx):
        t = idx.shape[1]
        mask = torch.triu(torch.ones(t, t, dtype=torch.bool, device=idx.device), 1)
        x = self.tok(idx) + self.pos(torch.arange(t, device=idx.device))
        for b in self.blocks:
            x = b(x, mask)
        return self.head(self.ln(x))


def batch(data, step, seed, size, seq_len, device):
    """Each step's batch depends on the seed and the step only, so a resumed run sees the same data."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + step)
    ix = torch.randint(len(data) - seq_len - 1, (size,), generator=g)
    x = torch.stack([data[i:i + seq_len] for i in ix])
    y = torch.stack([data[i + 1:i + seq_len + 1] for i in ix])
    return x.to(device), y.to(device)


def lr_at(step, steps, lr, warmup):
    if step < warmup * steps:
        return lr * (step + 1) / (warmup * steps + 1)
    t = (step - warmup * steps) / max(1, steps - warmup * steps)
    return lr * (0.1 + 0.45 * (1 + math.cos(math.pi * min(1.0, t))))


@torch.no_grad()
def evaluate(model, val, seq_len, device, batches=8):
    model.eval()
    losses = []
    for i in range(batches):
        x, y = batch(val, i, 0, 16, seq_len, device)
        losses.append(F.cross_entropy(model(x).flatten(0, 1), y.flatten()).item())
    model.train()
    return sum(losses) / len(losses)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--lr", type=float, required=True)
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--stop-at", type=int, default=None)
    p.add_argument("--out", required=True)
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--warmup", type=float, default=0.05)
    p.add_argument("--eval-every", type=int, default=50)
    args = p.parse_args()
    stop_at = min(args.stop_at or args.steps, args.steps)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(args.seed)

    with open(args.data, "rb") as f:
        data = torch.tensor(list(f.read()), dtype=torch.long)
    split = len(data) * 9 // 10
    train, val = data[:split], data[split:]

    model = GPT(args.d_model, args.layers, args.heads, args.seq_len, args.dropout).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay, betas=(0.9, 0.95))
    step, history = 0, []
    state_path = os.path.join(args.checkpoint, "state.pt") if args.checkpoint else None
    if state_path and os.path.exists(state_path):
        state = torch.load(state_path, map_location=device)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step, history = state["step"], state["history"]
        torch.set_rng_state(state["rng"])
    resumed_at = step

    os.makedirs(args.out, exist_ok=True)
    progress = open(os.path.join(args.out, "progress.jsonl"), "a")
    for row in history:  # the rows before the resume point: the run's history stays whole
        progress.write(json.dumps(row) + "\n")
    loss = torch.tensor(float("nan"))
    while step < stop_at:
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args.steps, args.lr, args.warmup)
        x, y = batch(train, step, args.seed, args.batch, args.seq_len, device)
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        row = {"step": step, "train_loss": loss.item() if loss.isfinite() else "NaN",
               "lr": opt.param_groups[0]["lr"], "tokens": step * args.batch * args.seq_len}
        if step % args.eval_every == 0 or step == stop_at:
            row["val_loss"] = evaluate(model, val, args.seq_len, device)
        progress.write(json.dumps(row) + "\n")
        progress.flush()
        history.append(row)

    val_loss = evaluate(model, val, args.seq_len, device)
    if state_path and step == stop_at:
        tmp = state_path + ".tmp"
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "history": history,
                    "rng": torch.get_rng_state()}, tmp)
        os.replace(tmp, state_path)
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump({"val_loss": val_loss, "train_loss": loss.item()}, f)
    print(f"trained steps {resumed_at + 1}..{step} (resumed at step {resumed_at}) of {args.steps} on {device}")


if __name__ == "__main__":
    main()
