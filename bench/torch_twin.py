#!/usr/bin/env python3
"""PyTorch (eager, CPU) twin of lrx's built-in model and optimizers, for speed comparisons.

Same architecture as src/train/model.rs: untied embedding, RMSNorm with gains (eps 1e-6),
causal multi-head attention with rotate-half RoPE, dense SiLU MLP or top-k MoE (bias-free
router, softmax over the k chosen logits, per-expert gather/index_add dispatch, Switch
balance loss), final RMSNorm, LM head. Optimizers: `adamw` (torch.optim.AdamW, one group per
LR key) or `muon_adamw` (Muon with Nesterov momentum and 5 quintic Newton-Schulz steps on
matrices stacked by shape, AdamW for the rest), global-norm clipping at 1.0.

Prints one JSON line: {"tokens_per_sec": ..., "steps": ..., "final_loss": ...}.
Not part of CI: `apt-get install python3-torch` (Debian) or `pip install torch`.
"""
import argparse
import json
import math
import time

import torch
import torch.nn.functional as F


def rms_norm(x, gain, eps=1e-6):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * gain


class Block(torch.nn.Module):
    def __init__(self, d, heads, d_ff, experts, top_k):
        super().__init__()
        self.heads, self.experts, self.top_k = heads, experts, top_k
        self.attn_norm = torch.nn.Parameter(torch.ones(d))
        self.mlp_norm = torch.nn.Parameter(torch.ones(d))
        self.wq, self.wk, self.wv, self.wo = (torch.nn.Linear(d, d, bias=False) for _ in range(4))
        if experts == 1:
            self.w1 = torch.nn.Linear(d, d_ff, bias=False)
            self.w2 = torch.nn.Linear(d_ff, d, bias=False)
        else:
            self.router = torch.nn.Linear(d, experts, bias=False)
            self.w1 = torch.nn.ModuleList(torch.nn.Linear(d, d_ff, bias=False) for _ in range(experts))
            self.w2 = torch.nn.ModuleList(torch.nn.Linear(d_ff, d, bias=False) for _ in range(experts))

    def forward(self, x, cos, sin, B, T):
        N, d = x.shape
        h = rms_norm(x, self.attn_norm)
        hd = d // self.heads

        def rope(t):
            t = t.view(B, T, self.heads, hd)
            t1, t2 = t[..., : hd // 2], t[..., hd // 2 :]
            return (t * cos + torch.cat((-t2, t1), -1) * sin).transpose(1, 2)

        q, k = rope(self.wq(h)), rope(self.wk(h))
        v = self.wv(h).view(B, T, self.heads, hd).transpose(1, 2)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        att = att.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
        y = (att.softmax(-1) @ v).transpose(1, 2).reshape(N, d)
        x = x + self.wo(y)
        z = rms_norm(x, self.mlp_norm)
        if self.experts == 1:
            return x + self.w2(F.silu(self.w1(z))), None
        logits = self.router(z)
        top_v, top_i = logits.topk(self.top_k, dim=-1)
        gates = top_v.softmax(-1)
        out = torch.zeros_like(z)
        flat_i = top_i.reshape(-1)
        flat_g = gates.reshape(-1, 1)
        tok = torch.arange(N).repeat_interleave(self.top_k)
        for e in range(self.experts):
            sel = (flat_i == e).nonzero(as_tuple=True)[0]
            if sel.numel() == 0:
                continue
            t = tok[sel]
            y = self.w2[e](F.silu(self.w1[e](z[t]))) * flat_g[sel]
            out.index_add_(0, t, y)
        f = torch.bincount(flat_i, minlength=self.experts).float() / flat_i.numel()
        p = logits.softmax(-1).mean(0)
        return x + out, self.experts * (f * p).sum()


class Model(torch.nn.Module):
    def __init__(self, a):
        super().__init__()
        self.embedding = torch.nn.Embedding(256, a.d_model)
        self.blocks = torch.nn.ModuleList(Block(a.d_model, a.heads, a.d_ff, a.experts, a.top_k) for _ in range(a.layers))
        self.final_norm = torch.nn.Parameter(torch.ones(a.d_model))
        self.lm_head = torch.nn.Linear(a.d_model, 256, bias=False)
        hd = a.d_model // a.heads
        freq = a.rope_base ** (-torch.arange(hd // 2, dtype=torch.float64) * 2 / hd)
        ang = torch.arange(a.seq_len, dtype=torch.float64)[:, None] * freq.repeat(2)[None, :]
        self.cos = ang.cos().float()[None, :, None, :]
        self.sin = ang.sin().float()[None, :, None, :]
        self.balance = a.balance_loss

    def forward(self, idx, targets):
        B, T = idx.shape
        x = self.embedding(idx.reshape(-1))
        aux = 0.0
        for b in self.blocks:
            x, a = b(x, self.cos, self.sin, B, T)
            if a is not None:
                aux = aux + a
        x = rms_norm(x, self.final_norm)
        ce = F.cross_entropy(self.lm_head(x), targets.reshape(-1))
        return ce, ce + self.balance * aux


def newton_schulz(g, steps=5):
    a, b, c = 3.4445, -4.7750, 2.0315
    x = g / (g.norm(dim=(-2, -1), keepdim=True) + 1e-7)
    tall = g.size(-2) > g.size(-1)
    if tall:
        x = x.mT
    for _ in range(steps):
        A = x @ x.mT
        x = a * x + (b * A + c * A @ A) @ x
    return x.mT if tall else x


class Muon:
    """Muon on matrices stacked by shape (as lrx does), cautious decoupled decay."""

    def __init__(self, params, lr, momentum=0.95, wd=0.2):
        self.lr, self.momentum, self.wd = lr, momentum, wd
        self.buckets = {}
        for p in params:
            self.buckets.setdefault(tuple(p.shape), []).append(p)
        self.bufs = {s: torch.zeros(len(ps), *s) for s, ps in self.buckets.items()}

    @torch.no_grad()
    def step(self):
        m = self.momentum
        for s, ps in self.buckets.items():
            g = torch.stack([p.grad if p.grad is not None else torch.zeros_like(p) for p in ps])
            buf = self.bufs[s]
            buf.lerp_(g, 1 - m)
            u = g.lerp(buf, m)
            x = newton_schulz(u) * max(1.0, s[0] / s[1]) ** 0.5
            stacked = torch.stack(list(ps))
            mask = (x * stacked) >= 0
            stacked.sub_(self.lr * x + self.lr * self.wd * stacked * mask)
            for p, new in zip(ps, stacked.unbind(0)):
                p.copy_(new)


def main():
    ap = argparse.ArgumentParser()
    for k, v in dict(d_model=64, layers=2, heads=4, d_ff=128, experts=4, top_k=2, seq_len=64, batch_size=8, steps=60, warmup_steps=5).items():
        ap.add_argument("--" + k, type=int, default=v)
    ap.add_argument("--optimizer", default="adamw", choices=["adamw", "muon_adamw"])
    ap.add_argument("--corpus", default="tests/fixtures/genesis.txt")
    ap.add_argument("--rope_base", type=float, default=10000.0)
    ap.add_argument("--balance_loss", type=float, default=0.01)
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    data = torch.tensor(list(open(a.corpus, "rb").read()), dtype=torch.long)
    model = Model(a)
    matrices = [p for n, p in model.named_parameters() if n.startswith("blocks.") and p.ndim == 2]
    emb, head = [model.embedding.weight], [model.lm_head.weight]
    scalars = [p for p in model.parameters() if p.ndim == 1]
    adam_kw = dict(betas=(0.8, 0.95), eps=1e-10, weight_decay=0.0)
    groups = [dict(params=emb, lr=0.6), dict(params=head, lr=0.004), dict(params=scalars, lr=0.5)]
    if a.optimizer == "adamw":
        groups.append(dict(params=matrices, lr=0.04, weight_decay=0.2))
        opts = [torch.optim.AdamW(groups, **adam_kw)]
    else:
        opts = [torch.optim.AdamW(groups, **adam_kw), Muon(matrices, lr=0.04)]
    all_params = list(model.parameters())
    B, T = a.batch_size, a.seq_len
    g = torch.Generator().manual_seed(1)
    t0 = None
    for step in range(a.warmup_steps + a.steps):
        if step == a.warmup_steps:
            t0 = time.perf_counter()
        starts = torch.randint(0, len(data) - T - 1, (B,), generator=g)
        win = torch.stack([data[s : s + T + 1] for s in starts.tolist()])
        ce, loss = model(win[:, :-1], win[:, 1:])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(all_params, 1.0)
        for o in opts:
            o.step()
        model.zero_grad(set_to_none=True)
        last = ce.item()
    dt = time.perf_counter() - t0
    print(json.dumps({"tokens_per_sec": a.steps * B * T / dt, "steps": a.steps, "final_loss": last, "threads": torch.get_num_threads(), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
