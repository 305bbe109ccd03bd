#!/usr/bin/env python3
"""Side-by-side CPU speed of cadet-rs (Burn flex, `examples/gpu_bench --device cpu`) and PyTorch
(`scripts/torch_peer.py`) on the same networks, batches and thread count, in one invocation, interleaved
(Rust, PyTorch, Rust, PyTorch, ...) so that the machine's load hits both alike. Prints a markdown table of the
medians and the ratio cadet-rs / PyTorch (above 1: cadet-rs is faster).

    cargo build --release --example gpu_bench
    pip install torch   # where you benchmark; CI never runs this
    python3 scripts/cpu_vs_torch.py --threads 2 --rounds 3 [--python /path/to/python-with-torch] [--only quick]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--rounds", type=int, default=3)
ap.add_argument("--python", default=sys.executable, help="a Python with torch")
ap.add_argument("--binary", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "release", "examples", "gpu_bench"))
ap.add_argument("--only", default="", help="run only the cases whose name contains this")
a = ap.parse_args()

QUICK = ["--depth", "18", "--base-width", "16", "--hidden", "256", "--output", "64"]
R50 = ["--depth", "50", "--base-width", "64", "--hidden", "2048", "--output", "128"]
CASES = [
    # name, network args, what, batch, size, timed steps
    ("quickstart SimCLR step, 32 px", QUICK, "train", 128, 32, 10),
    ("quickstart encoder inference, 32 px", QUICK, "infer", 512, 32, 10),
    ("ResNet-50 SimCLR step, 32 px", R50, "train", 32, 32, 3),
    ("ResNet-50 inference, 32 px", R50, "infer", 512, 32, 3),
    ("ResNet-50 SimCLR step, 224 px", R50, "train", 8, 224, 2),
    ("ResNet-50 inference, 224 px", R50, "infer", 32, 224, 2),
]
env = dict(os.environ, RAYON_NUM_THREADS=str(a.threads), OMP_NUM_THREADS=str(a.threads),
           MKL_NUM_THREADS=str(a.threads))


def run(cmd):
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    row = [r for r in rows if "bench" in r][-1]
    return row.get("source_images_per_s") or row["images_per_s"]


print(f"| case | batch | cadet-rs images/s | PyTorch images/s | ratio |  (threads {a.threads}, "
      f"median of {a.rounds} interleaved rounds)")
print("|---|---|---|---|---|")
for name, net, what, batch, size, steps in CASES:
    if a.only and a.only not in name:
        continue
    common = net + ["--batch", str(batch), "--size", str(size), "--steps", str(steps), "--warmup", "2"]
    rust, torch = [], []
    for _ in range(a.rounds):
        rust.append(run([a.binary, "--device", "cpu", "--what", what] + common))
        torch.append(run([a.python, os.path.join(os.path.dirname(__file__), "torch_peer.py"),
                          "--threads", str(a.threads), "--what", what] + common))
    r, t = statistics.median(rust), statistics.median(torch)
    unit = "source images" if what == "train" else "images"
    print(f"| {name} ({unit}/s) | {batch} | {r:.1f} | {t:.1f} | {r / t:.2f}× |", flush=True)
