#!/usr/bin/env python3
"""Side-by-side: cadet-mmd's permutation test (examples/mmd.rs) against the NumPy reference loop
(../shared/reference/stats_ref.py) on the same .npy inputs, in one run, alternating the two.

  python3 scripts/bench_vs_numpy.py [--ref PATH/stats_ref.py] [--sizes 200,2000] [--repeats 3] [--dir /tmp/cadet-bench]

Inputs: n x 2048 float32 matrices of non-negative features (|N(0,1)|, and |N(0.02,1)| for Y), generated once with
a fixed seed. Ours is timed as the example's "seconds" (the whole test: normalisation, centring, estimate and 500
permutations); NumPy as the reference's "perm_seconds" (its permutation loop alone, not even its Gram matrix).
Prints a Markdown table. Needs numpy and cargo.
"""
import argparse, json, os, statistics, subprocess, sys
import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("--ref", default=os.path.join(os.path.dirname(__file__), "../../shared/reference/stats_ref.py"))
ap.add_argument("--sizes", default="200,2000")
ap.add_argument("--repeats", type=int, default=3)
ap.add_argument("--perms", type=int, default=500)
ap.add_argument("--dir", default="/tmp/cadet-bench")
args = ap.parse_args()

os.makedirs(args.dir, exist_ok=True)
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
subprocess.run(["cargo", "build", "--release", "--example", "mmd"], cwd=root, check=True)
target = os.environ.get("CARGO_TARGET_DIR", os.path.join(root, "target"))
ours_bin = os.path.join(target, "release", "examples", "mmd")

rows = []
for n in map(int, args.sizes.split(",")):
    x, y = (os.path.join(args.dir, f"{s}{n}.npy") for s in "XY")
    if not (os.path.exists(x) and os.path.exists(y)):
        g = np.random.default_rng(0 if n == 200 else n)
        np.save(x, np.abs(g.normal(size=(n, 2048))).astype(np.float32))
        np.save(y, np.abs(g.normal(size=(n, 2048)) + 0.02).astype(np.float32))
    ours, ref = [], []
    for r in range(args.repeats):
        o = json.loads(subprocess.run([ours_bin, x, y, "--perms", str(args.perms)], capture_output=True, text=True, check=True).stdout)
        ours.append(o["seconds"])
        if n <= 500 or r == 0:  # the NumPy loop takes about a minute at n = 2000: once is enough
            p = json.loads(subprocess.run([sys.executable, args.ref, "mmd", x, y, "--perms", str(args.perms)], capture_output=True, text=True, check=True).stdout)
            ref.append(p["perm_seconds"])
    rel = abs(o["statistic"] - p["statistic"]) / max(abs(p["statistic"]), 1e-300)
    rows.append((n, statistics.median(ours), statistics.median(ref), rel, o["p_value"], p["p_value"]))

print(f"| n per set | cadet-mmd (s, median of {args.repeats}) | NumPy loop (s) | speed-up | statistic rel. diff | p (ours / NumPy) |")
print("|---|---|---|---|---|---|")
for n, o, r, rel, po, pr in rows:
    print(f"| {n} | {o:.4f} | {r:.3f} | {r / o:.0f}× | {rel:.1e} | {po:.3f} / {pr:.3f} |")
