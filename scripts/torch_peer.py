#!/usr/bin/env python3
"""PyTorch CPU peer of `examples/gpu_bench --device cpu`: the same network (torchvision-layout ResNet-18/50 with
a base width and an ImageNet or CIFAR stem, SimCLRv2 head of `hidden`-`hidden`-`output` with BN), the same
NT-Xent step (two views of `batch` images, SGD momentum in place of LARS: the optimizer is a sliver of the step)
and the same inference batch. Prints one JSON object per measurement, with the same keys as gpu_bench.

    python3 scripts/torch_peer.py --threads 2 --depth 18 --base-width 16 --batch 128 --size 32 --what train

Extends ../shared/bench/torch_cpu_peer.py (the quickstart's step) to every shape the CPU benchmark covers.
"""
import argparse
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--threads", type=int, default=2)
p.add_argument("--depth", type=int, default=18, choices=[18, 34, 50])
p.add_argument("--base-width", type=int, default=64)
p.add_argument("--cifar-stem", action="store_true")
p.add_argument("--hidden", type=int, default=2048)
p.add_argument("--output", type=int, default=128)
p.add_argument("--temperature", type=float, default=0.2)
p.add_argument("--batch", type=int, default=128)
p.add_argument("--size", type=int, default=32)
p.add_argument("--steps", type=int, default=10)
p.add_argument("--warmup", type=int, default=3)
p.add_argument("--what", choices=["infer", "train", "phases", "convs"], required=True)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)


class Basic(nn.Module):
    expansion = 1

    def __init__(s, i, o, st):
        super().__init__()
        s.c1 = nn.Conv2d(i, o, 3, st, 1, bias=False); s.b1 = nn.BatchNorm2d(o)
        s.c2 = nn.Conv2d(o, o, 3, 1, 1, bias=False); s.b2 = nn.BatchNorm2d(o)
        s.sc = (nn.Sequential(nn.Conv2d(i, o, 1, st, bias=False), nn.BatchNorm2d(o))
                if st != 1 or i != o else nn.Identity())

    def forward(s, x):
        return F.relu(s.b2(s.c2(F.relu(s.b1(s.c1(x))))) + s.sc(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(s, i, o, st):
        super().__init__()
        s.c1 = nn.Conv2d(i, o, 1, bias=False); s.b1 = nn.BatchNorm2d(o)
        s.c2 = nn.Conv2d(o, o, 3, st, 1, bias=False); s.b2 = nn.BatchNorm2d(o)
        s.c3 = nn.Conv2d(o, 4 * o, 1, bias=False); s.b3 = nn.BatchNorm2d(4 * o)
        s.sc = (nn.Sequential(nn.Conv2d(i, 4 * o, 1, st, bias=False), nn.BatchNorm2d(4 * o))
                if st != 1 or i != 4 * o else nn.Identity())

    def forward(s, x):
        y = F.relu(s.b1(s.c1(x)))
        y = F.relu(s.b2(s.c2(y)))
        return F.relu(s.b3(s.c3(y)) + s.sc(x))


def resnet(depth, w, cifar_stem):
    block, counts = {18: (Basic, [2, 2, 2, 2]), 34: (Basic, [3, 4, 6, 3]), 50: (Bottleneck, [3, 4, 6, 3])}[depth]
    if cifar_stem:
        layers = [nn.Conv2d(3, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU()]
    else:
        layers = [nn.Conv2d(3, w, 7, 2, 3, bias=False), nn.BatchNorm2d(w), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    i = w
    for k, n in enumerate(counts):
        o = w * 2 ** k
        for b in range(n):
            layers.append(block(i, o, 2 if (b == 0 and k > 0) else 1))
            i = o * block.expansion
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten()), i


CONVS = [  # the quickstart encoder's convolutions at 32 px, as examples/gpu_bench/main.rs QUICKSTART_CONVS
    ("stem 7x7/2, 3->16, 32 px", 3, 32, 16, 7, 2, 3, 1),
    ("3x3, 16->16, 8 px", 16, 8, 16, 3, 1, 1, 4),
    ("3x3/2, 16->32, 8 px", 16, 8, 32, 3, 2, 1, 1),
    ("3x3, 32->32, 4 px", 32, 4, 32, 3, 1, 1, 3),
    ("3x3/2, 32->64, 4 px", 32, 4, 64, 3, 2, 1, 1),
    ("3x3, 64->64, 2 px", 64, 2, 64, 3, 1, 1, 3),
    ("3x3/2, 64->128, 2 px", 64, 2, 128, 3, 2, 1, 1),
    ("3x3, 128->128, 1 px", 128, 1, 128, 3, 1, 1, 3),
    ("1x1/2 shortcut, 16->32, 8 px", 16, 8, 32, 1, 2, 0, 1),
]
if a.what == "convs":
    n = 2 * a.batch

    def timed(f):
        for _ in range(a.warmup):
            f()
        t = time.perf_counter()
        for _ in range(a.steps):
            f()
        return (time.perf_counter() - t) / a.steps

    for name, cin, side, cout, k, stride, pad, count in CONVS:
        x = torch.randn(n, cin, side, side)
        w = (0.1 * torch.randn(cout, cin, k, k)).requires_grad_()
        with torch.no_grad():
            forward = timed(lambda: F.conv2d(x, w, None, stride, pad).sum().item())
        xg = x.clone().requires_grad_()

        def both():
            w.grad = None
            xg.grad = None
            F.conv2d(xg, w, None, stride, pad).sum().backward()
            w.grad.sum().item()

        print(json.dumps({"peer": "pytorch", "bench": "conv", "conv": name, "batch": n, "count_in_encoder": count,
                          "forward_ms": 1e3 * forward, "forward_backward_ms": 1e3 * timed(both)}))
    sys.exit(0)

enc, feat = resnet(a.depth, a.base_width, a.cifar_stem)
name = f"resnet{a.depth} w{a.base_width} {'cifar' if a.cifar_stem else 'imagenet'} stem"
if a.what == "infer":
    enc.eval()
    x = torch.randn(a.batch, 3, a.size, a.size)
    with torch.no_grad():
        for _ in range(a.warmup):
            enc(x)
        t = time.perf_counter()
        for _ in range(a.steps):
            enc(x)
        per = (time.perf_counter() - t) / a.steps
    print(json.dumps({"peer": "pytorch", "bench": f"{name} inference", "batch": a.batch, "size": a.size,
                      "threads": a.threads, "images_per_s": a.batch / per}))
else:
    head = nn.Sequential(nn.Linear(feat, a.hidden), nn.BatchNorm1d(a.hidden), nn.ReLU(),
                         nn.Linear(a.hidden, a.hidden), nn.BatchNorm1d(a.hidden), nn.ReLU(),
                         nn.Linear(a.hidden, a.output), nn.BatchNorm1d(a.output))
    params = list(enc.parameters()) + list(head.parameters())
    opt = torch.optim.SGD(params, lr=0.1, momentum=0.9)
    v1 = torch.randn(a.batch, 3, a.size, a.size)
    v2 = torch.randn(a.batch, 3, a.size, a.size)

    def step():
        opt.zero_grad()
        z = F.normalize(head(enc(torch.cat([v1, v2]))), dim=1)
        n = a.batch
        s = z @ z.T / a.temperature
        s.fill_diagonal_(-1e9)
        tgt = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
        loss = F.cross_entropy(s, tgt)
        loss.backward()
        opt.step()
        return loss.item()

    def phases():
        # The phases gpu_bench --what phases times: encoder forward, head and loss forward, backward, optimizer.
        opt.zero_grad()
        t0 = time.perf_counter()
        f = enc(torch.cat([v1, v2]))
        t1 = time.perf_counter()
        z = F.normalize(head(f), dim=1)
        n = a.batch
        s = z @ z.T / a.temperature
        s.fill_diagonal_(-1e9)
        tgt = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
        loss = F.cross_entropy(s, tgt)
        loss.item()
        t2 = time.perf_counter()
        loss.backward()
        t3 = time.perf_counter()
        opt.step()
        t4 = time.perf_counter()
        return [t1 - t0, t2 - t1, t3 - t2, t4 - t3]

    if a.what == "phases":
        for _ in range(a.warmup):
            phases()
        spent = [0.0] * 4
        for _ in range(a.steps):
            spent = [x + y for x, y in zip(spent, phases())]
        total = sum(spent)
        keys = ["encoder_forward", "head_and_loss_forward", "backward", "optimizer"]
        print(json.dumps({"peer": "pytorch", "bench": f"simclr step phases {name}", "batch": a.batch,
                          "size": a.size, "threads": a.threads,
                          "ms_per_step": {k: 1e3 * v / a.steps for k, v in zip(keys, spent)},
                          "share": {k: v / total for k, v in zip(keys, spent)},
                          "source_images_per_s": a.batch * a.steps / total}))
    else:
        for _ in range(a.warmup):
            step()
        t = time.perf_counter()
        for _ in range(a.steps):
            last = step()
        per = (time.perf_counter() - t) / a.steps
        print(json.dumps({"peer": "pytorch", "bench": f"simclr step {name}", "batch": a.batch, "size": a.size,
                          "threads": a.threads, "source_images_per_s": a.batch / per, "last_loss": last}))
