#!/usr/bin/env python3
# The steps a halving study trained (each rung's increment and its cooldown branch), and how
# well each rung ranks the candidates, measured where it stops and on its cooldown branch,
# against the full sweep's results: for BENCHMARKS.md "Successive halving against the full
# sweep". Reads the entries of the halving study's cache (a rung's keeps the rung's own metrics
# beside its branch's; a survivor's run continued from the rung before) and the full sweep's
# `lrx run --json` output.
#
#   python3 bench/halving_ranks.py CACHE FULL_SWEEP.json
import glob
import json
import sys


def ranks(v):
    order = sorted(range(len(v)), key=lambda i: v[i])
    r = [0] * len(v)
    for k, i in enumerate(order):
        r[i] = k
    return r


def spearman(a, b):
    ra, rb, n = ranks(a), ranks(b), len(a)
    return 1 - 6 * sum((x - y) ** 2 for x, y in zip(ra, rb)) / (n * (n * n - 1))


def main(cache, full_json):
    full = {}
    for c in json.load(open(full_json))["phases"][0]["candidates"]:
        full[round(c["changes"]["lr"], 12)] = c["objective"]
    rungs = {}
    entries = []
    for spec_path in glob.glob(cache + "/runs/*/*/spec.json"):
        spec = json.load(open(spec_path))
        result = json.load(open(spec_path.replace("spec.json", "result.json")))
        entries.append((result["steps"], (result.get("cooldown") or {}).get("steps", 0)))
        if result.get("cooldown"):
            lr = round(spec["input"]["config"]["train"]["matrix_lr"], 12)
            at_rung = result["cooldown"]["at_rung"]["val_loss"]
            rungs.setdefault(result["steps"], []).append((lr, at_rung, result["metrics"]["val_loss"]))
    # Each rung's runs continue from the rung before: they train the increment, then the branch.
    stops = sorted({s for s, _ in entries})
    before = dict(zip(stops, [0] + stops[:-1]))
    trained = sum(s - before[s] for s, _ in entries)
    branches = sum(c for _, c in entries)
    print(f"steps trained: {trained} to the rungs + {branches} in cooldown branches = {trained + branches}")
    for step, rows in sorted(rungs.items()):
        final = [full[lr] for lr, _, _ in rows]
        at = [a for _, a, _ in rows]
        branch = [b for _, _, b in rows]
        keep = -(-len(rows) // 3)

        def top(v):
            return {rows[i][0] for i in sorted(range(len(v)), key=lambda i: v[i])[:keep]}

        def best(v):
            return rows[min(range(len(v)), key=lambda i: v[i])][0]

        truth = top(final)
        print(
            f"rung {step}: {len(rows)} LRs; Spearman with the full sweep: where it stops "
            f"{spearman(at, final):.3f}, on the branch {spearman(branch, final):.3f}; best: where it stops "
            f"{best(at)}, on the branch {best(branch)}, full sweep {best(final)}; of the full sweep's top "
            f"{keep}, kept where it stops {len(truth & top(at))}, on the branch {len(truth & top(branch))}"
        )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
