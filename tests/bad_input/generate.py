#!/usr/bin/env python3
"""Writes the bad-input corpus: malformed `.lrx` studies, each of which `lrx check` must
refuse with at least one error located inside the file (`tests/lang/bad_input.rs`).

Deterministic (a fixed seed), so running it again rewrites the same files:

    python3 tests/bad_input/generate.py

Hand-written cases cover each kind of mistake (syntax, types, unknown keys, ranges, cycles,
duplicates, empty phases, bad calls, misspelt keywords); mutations of the example pipelines
cover the rest: truncations inside a block, a character no token may hold put outside
strings and comments, a deleted `=`, a deleted closing brace, a key set twice. Each mutation
is chosen so that the result is certainly invalid.
"""

import pathlib
import random

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SEED = 20261130

OK_HEAD = "model {\n  d_model = 64   layers = 2   heads = 4   experts = 4   seq_len = 64\n}\n\ndata {\n  tokens = 200_000\n}\n\n"

# (name, text): each is invalid on its own.
HAND = {
    "syntax": [
        "train {\n  steps 100\n}\n",
        "train {\n  steps = \n}\n",
        "train {\n  = 100\n}\n",
        "train {\n  steps == 100\n}\n",
        "train {\n  steps = 100\n",
        "train \n  steps = 100\n}\n",
        "train {\n  steps = 100\n}}\n",
        "}\n",
        "{\n}\n",
        "train { steps = 100 } data { tokens = 1000 }\n",
        "phase p { vary matrix_lr in [0.1] } phase q { vary matrix_lr in [0.2] }\n",
        "phase p {\n  vary matrix_lr [0.1]\n}\n",
        "phase p {\n  vary matrix_lr in [0.1, 0.2\n}\n",
        "phase p {\n  vary matrix_lr in [0.1,, 0.2]\n}\n",
        "phase p {\n  vary matrix_lr in (0.1\n}\n",
        "phase p {\n  vary in [0.1]\n}\n",
        "phase p {\n  vary matrix_lr in\n}\n",
        "phase p {\n  grid {\n    matrix_lr in [0.1]\n}\n",
        "phase p {\n  grid\n    matrix_lr in [0.1]\n  }\n}\n",
        "phase {\n  vary matrix_lr in [0.1]\n}\n",
        "phase p after {\n  vary matrix_lr in [0.1]\n}\n",
        "phase p after a, {\n  vary matrix_lr in [0.1]\n}\n",
        "phase 1p {\n  vary matrix_lr in [0.1]\n}\n",
        "data {\n  corpus = \"abc\n}\n",
        "data {\n  corpus = abc\"\n}\n",
        "train {\n  steps = 500_\n}\n",
        "train {\n  steps = 1__000\n}\n",
        "train {\n  steps = 1_.5\n}\n",
        "train {\n  matrix_lr = 1e\n}\n",
        "train {\n  matrix_lr = .5\n}\n",
        "train {\n  matrix_lr = 0.04 0.05\n}\n",
        "train {\n  matrix_lr = 0.04 *\n}\n",
        "train {\n  matrix_lr = * 0.04\n}\n",
        "train {\n  schedule = cosine(warmup = )\n}\n",
        "train {\n  schedule = cosine(warmup 0.1)\n}\n",
        "train {\n  schedule = cosine(,)\n}\n",
        "train {\n  adam_betas = (0.9, 0.95\n}\n",
        "train {\n  time = 5x\n}\n",
        "train {\n  steps = 100abc\n}\n",
        "objective\n",
        "objective minimize\n",
        "objective val_loss\n",
        "final\n",
        "final combine()\n",
        "final combine(a b)\n",
        "final after\n",
        "find lr from 1e-6\n",
        "find from 1e-6 to 1.0\n",
        "phase p {\n  find lr 1e-6 to 1.0\n}\n",
        "phase p {\n  find lr from 1e-6 to 1.0 (steps = )\n}\n",
        "train {\n  steps = 100\n}\n\x00\n",
        "train {\n  steps = 100 # ok\n  lr = @\n}\n",
        "\ufefftrain {\n  steps = 100;\n}\n",
        "train {\n  matrix_lr = ((((0.1)))\n}\n",
        "train {\n  matrix_lr = " + "(" * 80 + "0.1" + ")" * 80 + "\n}\n",
        "train {\n  matrix_lr = 0.1" + " + 0.1" * 600 + "\n}\n",
        "train {\n  steps = 99999999999999999999\n}\n",
        "train {\n  matrix_lr = 1e999\n}\n",
    ],
    "keyword": [
        "phases x {\n  vary matrix_lr in [0.1]\n}\n",
        "trains {\n  steps = 100\n}\n",
        "modle {\n  layers = 2\n}\n",
        "dat {\n  tokens = 1000\n}\n",
        "objectiv minimize val_loss\n",
        "objective minimise val_loss\n",
        "objective maximise val_accuracy\n",
        "phase x {\n  vary matrix_lr in [0.1]\n}\nfinal combined(x)\n",
        "phase x {\n  vary matrix_lr in [0.1]\n}\nfinal afterr x\n",
        "phase x {\n  vary matrix_lr in [0.1]\n}\nfnal after x\n",
        "phase a {\n  vary matrix_lr in [0.1]\n}\nphase b afterr a {\n  vary matrix_lr in [0.1]\n}\n",
        "phase a {\n  vary matrix_lr in [0.1]\n}\nphase b aftr a {\n  vary matrix_lr in [0.1]\n}\n",
        "phase p {\n  vry matrix_lr in [0.1]\n}\n",
        "phase p {\n  varyy matrix_lr in [0.1]\n}\n",
        "phase p {\n  vary matrix_lr inn [0.1]\n}\n",
        "phase p {\n  grd {\n    matrix_lr in [0.1]\n  }\n}\n",
        "phase p {\n  zipp {\n    matrix_lr in [0.1]\n  }\n}\n",
        "phase p {\n  fnd lr from 1e-6 to 1.0\n}\n",
        "phase p {\n  find matrix_lr form 1e-6 to 1.0\n}\n",
        "phase p {\n  find matrix_lr from 1e-6 too 1.0\n}\n",
        "phasex {\n  vary matrix_lr in [0.1]\n}\n",
    ],
    "type": [
        "train {\n  steps = 10.5\n}\n",
        "train {\n  steps = \"100\"\n}\n",
        "train {\n  steps = true\n}\n",
        "train {\n  matrix_lr = \"0.1\"\n}\n",
        "train {\n  matrix_lr = [0.1]\n}\n",
        "train {\n  matrix_lr = (0.1, 0.2)\n}\n",
        "train {\n  optimizer = \"adam\"\n}\n",
        "train {\n  optimizer = adam\n}\n",
        "train {\n  cautious_wd = yes\n}\n",
        "train {\n  adam_betas = 0.9\n}\n",
        "train {\n  adam_betas = (0.9, 0.95, 0.99)\n}\n",
        "train {\n  time = 100\n}\n",
        "train {\n  deps = \"train.py\"\n}\n",
        "train {\n  trainer = python\n}\n",
        "data {\n  corpus = 5\n}\n",
        "data {\n  tokenizer = bpe(vocab = \"big\")\n}\n",
        "model {\n  softcap = yes\n}\n",
        "phase p {\n  repeats = 2.5\n  vary matrix_lr in [0.1]\n}\n",
        "phase p {\n  seeds = [1.5]\n  vary matrix_lr in [0.1]\n}\n",
        "phase p {\n  baseline = 1\n  vary matrix_lr in [0.1]\n}\n",
        "phase p {\n  prune = always\n  vary matrix_lr in [0.1]\n}\n",
        "phase p {\n  vary matrix_lr in 0.1\n}\n",
        "phase p {\n  vary matrix_lr in [\"a\"]\n}\n",
        "phase p {\n  vary optimizer in [adam]\n}\n",
        "train {\n  matrix_lr = 90s\n}\n",
        "train {\n  matrix_lr = 1 / 0\n}\n",
        "train {\n  matrix_lr = \"a\" * 2\n}\n",
    ],
    "unknown": [
        "train {\n  matrx_lr = 0.04\n}\n",
        "train {\n  zzz = 1\n}\n",
        "train {\n  seq_len = 128\n}\n",
        "model {\n  repeats = 3\n}\n",
        "data {\n  steps = 3\n}\n",
        "train {\n  schedule.warmpu = 0.1\n}\n",
        "train {\n  matrix_lr = lrr * 2\n}\n",
        "phase p {\n  vary schedule.warmpu in [0.1]\n}\n",
        "phase p {\n  vary schedule.min_lr in [0.1]\n}\n",
        "phase p {\n  vary nothing in [1]\n}\n",
        "objective minimize val_los\n",
        "phase p {\n  vary matrix_lr in [0.1]\n  objective maximize accuracy\n}\n",
        "train {\n  schedule = cosine(min_lt = 0.1)\n}\n",
        "train {\n  schedule = cosinus(warmup = 0.1)\n}\n",
        "phase p {\n  vary matrix_lr in logg(0.1, 1, n = 3)\n}\n",
        "phase f {\n  find matrix_lr from 1e-6 to 1.0 (stepz = 10)\n}\n",
        "phase f {\n  find matrix_lr from 1e-6 to 1.0 (gamma = 10)\n}\n",
        "train {\n  model.layers = 2\n}\n",
    ],
    "range": [
        "train {\n  matrix_lr = -0.1\n}\n",
        "train {\n  matrix_lr = 0\n}\n",
        "train {\n  adam_betas = (0.9, 1.0)\n}\n",
        "train {\n  steps = 0\n}\n",
        "train {\n  ns_steps = 50\n}\n",
        "train {\n  muon_momentum = 1.0\n}\n",
        "train {\n  diverge_factor = 1\n}\n",
        "train {\n  schedule = warmup_warmdown(warmup = 0.6, warmdown = 0.5)\n}\n",
        "train {\n  schedule = cosine(cycles = 0)\n}\n",
        "train {\n  schedule = step(every = 0)\n}\n",
        "model {\n  experts = 2\n  top_k = 3\n}\n",
        "model {\n  d_model = 100\n  heads = 3\n}\n",
        "model {\n  d_model = 36\n  heads = 4\n}\n",
        "model {\n  seq_len = 1\n}\n",
        "model {\n  rope_base = 1\n}\n",
        "data {\n  val = 1.5\n}\n",
        "data {\n  tokens = 1000\n}\n",
        "data {\n  tokenizer = bpe(vocab = 100)\n}\n",
        "train {\n  steps = 10\n  tokens = 1000\n}\n",
        "train {\n  tokens = 1000\n  time = 5m\n}\n",
        "phase p {\n  repeats = 0\n  vary matrix_lr in [0.1]\n}\n",
        "phase p {\n  repeats = 1001\n  vary matrix_lr in [0.1]\n}\n",
        "phase p {\n  seeds = []\n  vary matrix_lr in [0.1]\n}\n",
        "phase p {\n  seeds = [-1]\n  vary matrix_lr in [0.1]\n}\n",
        "phase p {\n  vary matrix_lr in [0.1, -0.2]\n}\n",
        "phase p {\n  vary matrix_lr in log(0, 1, n = 3)\n}\n",
        "phase p {\n  vary matrix_lr in log(0.1, 1, n = 1e9)\n}\n",
        "phase p {\n  vary matrix_lr in lin(0.1, 0.2)\n}\n",
        "phase p {\n  vary schedule.warmup in [0.6]\n}\n",
        "train {\n  lr = 0.04   matrix_lr = lr\n}\nphase p {\n  vary lr in [base * -1]\n}\n",
        "train {\n  steps = 100\n}\nphase p {\n  prune = halving(rungs = [50, 200])\n  vary matrix_lr in [0.1]\n}\n",
        "phase p {\n  prune = halving(rungs = [50, 20])\n  vary matrix_lr in [0.1]\n}\n",
        "phase p {\n  prune = halving(rungs = [50], keep = 2)\n  vary matrix_lr in [0.1]\n}\n",
        "phase f {\n  find matrix_lr from 1.0 to 1e-6\n}\n",
        "phase f {\n  find matrix_lr from 0 to 1.0\n}\n",
        "phase f {\n  find matrix_lr from 1e-6 to 1.0 (steps = 1)\n}\n",
        "phase f {\n  find matrix_lr from 1e-6 to 1.0 (pick = max)\n}\n",
        "phase f {\n  find steps from 1 to 10\n}\n",
        "phase p {\n  repeats = 1000\n  vary matrix_lr in log(1e-4, 1.0, n = 200)\n}\n",
    ],
    "cycle": [
        "phase a after b {\n  vary matrix_lr in [0.1]\n}\nphase b after a {\n  vary embedding_lr in [0.1]\n}\n",
        "phase a after a {\n  vary matrix_lr in [0.1]\n}\n",
        "phase a after c {\n  vary matrix_lr in [0.1]\n}\nphase b after a {\n  vary embedding_lr in [0.1]\n}\nphase c after b {\n  vary scalar_lr in [0.1]\n}\n",
        "train {\n  matrix_lr = embedding_lr\n  embedding_lr = matrix_lr\n}\n",
        "train {\n  lr = lr * 2\n}\n",
        "train {\n  matrix_lr = lr\n}\nphase p {\n  lr = lr * 2\n  vary matrix_lr in [0.1]\n}\n",
        "train {\n  matrix_lr = embedding_lr * 2\n  embedding_lr = scalar_lr\n  scalar_lr = matrix_lr\n}\n",
    ],
    "duplicate": [
        "phase a {\n  vary matrix_lr in [0.1]\n}\nphase a {\n  vary embedding_lr in [0.1]\n}\n",
        "phase Warmup {\n  vary matrix_lr in [0.1]\n}\nphase warmup {\n  vary embedding_lr in [0.1]\n}\n",
        "train {\n  steps = 1\n  steps = 2\n}\n",
        "train {}\ntrain {}\n",
        "model {\n  layers = 2\n}\nmodel {\n  heads = 2\n}\n",
        "objective minimize val_loss\nobjective maximize val_accuracy\n",
        "phase p {\n  vary matrix_lr in [0.1]\n  objective minimize val_loss\n  objective minimize train_loss\n}\n",
        "phase p {\n  grid {\n    matrix_lr in [0.1]\n    matrix_lr in [0.2]\n  }\n}\n",
        "phase p {\n  zip {\n    schedule in [constant]\n    schedule.warmup in [0.1]\n  }\n}\n",
        "phase p {\n  vary matrix_lr in [0.1]\n}\nfinal after p\nfinal after p\n",
        "phase a {\n  vary matrix_lr in [0.1]\n}\nphase b after a, a {\n  vary embedding_lr in [0.1]\n}\n",
        "phase p {\n  find matrix_lr from 1e-6 to 1.0\n  find embedding_lr from 1e-6 to 1.0\n}\n",
        "find lr from 1e-6 to 1.0\nfind lr from 1e-5 to 1.0\n",
        "phase f {\n  find matrix_lr from 1e-6 to 1.0 (steps = 10, steps = 20)\n}\n",
        "phase a {\n  vary matrix_lr in [0.1]\n}\nphase b {\n  vary matrix_lr in [0.2]\n}\nphase c after a, b {\n  vary embedding_lr in [0.3]\n}\n",
        "phase a {\n  vary matrix_lr in [0.1]\n}\nphase b {\n  vary matrix_lr in [0.2]\n}\nfinal combine(a, b)\n",
        "phase final {\n  vary matrix_lr in [0.1]\n}\n",
        "phase Final {\n  vary matrix_lr in [0.1]\n}\n",
    ],
    "empty": [
        "phase p {\n  baseline = false\n}\n",
        "train {\n  baseline = false\n}\nphase p {\n  steps = 10\n}\n",
        "phase p {\n  vary matrix_lr in []\n}\n",
        "phase p {\n  grid {\n  }\n}\n",
        "phase p {\n  zip {}\n}\n",
        "phase p {\n  zip {\n    matrix_lr in [0.1, 0.2]\n    embedding_lr in [0.1]\n  }\n}\n",
        "phase p {\n  vary matrix_lr in lin(0.2, 0.1, step = 0.01)\n}\n",
        "final combine()\n",
    ],
    "misplaced": [
        "train {\n  vary matrix_lr in [0.1]\n}\n",
        "model {\n  objective minimize val_loss\n}\n",
        "data {\n  grid {\n    matrix_lr in [0.1]\n  }\n}\n",
        "train {\n  find lr from 1e-6 to 1.0\n}\n",
        "phase p {\n  vary matrix_lr in [0.1]\n}\nfinal after p {\n  vary matrix_lr in [0.2]\n}\n",
        "phase p {\n  vary matrix_lr in [0.1]\n}\nfinal after p {\n  baseline = false\n}\n",
        "train {\n  matrix_lr = base * 2\n}\n",
        "phase p {\n  vary repeats in [1, 2]\n}\n",
        "phase p {\n  repeats = steps\n  vary matrix_lr in [0.1]\n}\n",
        "phase f {\n  baseline = true\n  find matrix_lr from 1e-6 to 1.0\n}\n",
        "phase f {\n  prune = halving(rungs = [10])\n  find matrix_lr from 1e-6 to 1.0\n}\n",
        "phase f {\n  find matrix_lr from 1e-6 to 1.0\n  vary embedding_lr in [0.1]\n}\n",
        "phase f {\n  find matrix_lr from lr to 1.0\n}\n",
    ],
    "reference": [
        "phase a after b {\n  vary matrix_lr in [0.1]\n}\n",
        "phase warmup {\n  vary matrix_lr in [0.1]\n}\nphase b after warmpu {\n  vary embedding_lr in [0.1]\n}\n",
        "final combine(x)\n",
        "final after x\n",
        "phase a {\n  vary matrix_lr in [0.1]\n}\nphase b {\n  vary embedding_lr in [0.1]\n}\nfinal after a, b\n",
        "data {\n  corpus = \"no/such/corpus.txt\"\n}\n",
        "data {\n  corpus = \"generate.py\"\n}\n",
        "phase p {\n  vary corpus in [\"default\", \"missing.txt\"]\n}\n",
    ],
}


def outside_code(text):
    """Offsets of characters outside strings and comments (where a token may stand)."""
    out, in_str, in_comment, escaped = [], False, False, False
    for i, c in enumerate(text):
        if in_comment:
            in_comment = c != "\n"
        elif in_str:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c in "\"\n":
                in_str = False
        elif c == "\"":
            in_str = True
        elif c == "#":
            in_comment = True
        else:
            out.append(i)
    return out


def blocks(text):
    """(open, close) offsets of each top-level `{ ... }`."""
    code = set(outside_code(text))
    depth, start, out = 0, None, []
    for i, c in enumerate(text):
        if i not in code:
            continue
        if c == "{":
            if depth == 0:
                start = i
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                out.append((start, i))
    return out


def mutations(name, text, rng):
    """Certainly-invalid variants of a valid study."""
    out = []
    spans = blocks(text)
    code = outside_code(text)
    # Truncated inside a block: its `{` is never closed.
    for k in range(3):
        open_, close = rng.choice(spans)
        cut = rng.randrange(open_ + 1, close)
        out.append((f"truncated_{name}_{k}", text[:cut]))
    # A character no token may hold, outside strings and comments.
    for k in range(3):
        i = rng.choice([j for j in code if not text[j].isspace()])
        out.append((f"flipped_{name}_{k}", text[:i] + rng.choice("@$`!?~%^&;|'") + text[i + 1:]))
    # A deleted `=`.
    eqs = [j for j in code if text[j] == "="]
    if eqs:
        i = rng.choice(eqs)
        out.append((f"no_equals_{name}", text[:i] + " " + text[i + 1:]))
    # A deleted closing brace.
    open_, close = rng.choice(spans)
    out.append((f"unclosed_{name}", text[:close] + text[close + 1:]))
    # A key set twice: an assignment line of a block, repeated.
    lines = text.split("\n")
    offsets, pos = [], 0
    for line in lines:
        offsets.append(pos)
        pos += len(line) + 1
    candidates = []
    for n, line in enumerate(lines):
        stripped = line.strip()
        at = offsets[n] + len(line) - len(line.lstrip())
        depth_ok = any(o < at < c for o, c in spans) and line.startswith("  ") and not line.startswith("   ")
        if depth_ok and "=" in stripped and not stripped.startswith(("#", "vary", "grid", "zip", "find", "objective")) and stripped.count("(") == stripped.count(")") and stripped.count("[") == stripped.count("]"):
            candidates.append(n)
    if candidates:
        n = rng.choice(candidates)
        out.append((f"set_twice_{name}", "\n".join(lines[: n + 1] + [lines[n]] + lines[n + 1:])))
    return out


def main():
    rng = random.Random(SEED)
    files = []
    for kind, texts in HAND.items():
        for i, t in enumerate(texts):
            files.append((f"{kind}_{i:03}", t))
    sources = sorted(ROOT.glob("pipelines/*.lrx")) + sorted(ROOT.glob("tests/fixtures/*.lrx"))
    for path in sources:
        files.extend(mutations(path.stem, path.read_text(), rng))
    # A valid head with a broken phase after it: errors deep in a realistic file.
    for i, t in enumerate(HAND["syntax"][:20]):
        files.append((f"late_syntax_{i:03}", OK_HEAD + "phase warmup {\n  vary schedule.warmup in [0.01, 0.05]\n}\n\n" + t))
    for old in HERE.glob("*.lrx"):
        old.unlink()
    for name, text in files:
        (HERE / f"{name}.lrx").write_bytes(text.encode("utf-8"))
    print(f"wrote {len(files)} files to {HERE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
