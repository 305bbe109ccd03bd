#!/usr/bin/env python3
"""Six synthetic anomaly sets made from CIFAR-10 JPEG training images, for `reproduce_cifar --ood NAME=DIR`.

Each set transforms the same 500 images (the last 50 of each class folder, by file name) in one way that moves
them off the training distribution without any real-world data set: vertical flip (a semantic change: upside-down
objects), blur (2x bilinear down and up: simpler images), zoom (the central 16 x 16 crop upscaled: large, simple
textures, like LSUN/iSUN crops), colour inversion, greyscale, and Gaussian noise (sd 25 of 255, seed 0). The
detection method's scales were chosen on these sets (docs/results.md), not on Tiny-ImageNet or the attacks.

    pip install pillow numpy
    python3 scripts/synthetic_ood.py --data ../shared/data --out /tmp/synthetic-ood
    cargo run --release --example reproduce_cifar -- --data ../shared/data ... \
        --ood vflip=/tmp/synthetic-ood/vflip --ood blur=/tmp/synthetic-ood/blur ...

Output: OUT/<set>/<class>/<file>.png (class folders, lossless; reproduce_cifar re-encodes them as JPEG q75).
"""
import argparse
import os

import numpy as np
from PIL import Image

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("--data", required=True, help="the shared data folder (holds cifar10-jpeg/)")
parser.add_argument("--out", required=True, help="output folder")
parser.add_argument("--per-class", type=int, default=50, help="images per class (the last ones by name)")
args = parser.parse_args()

src = os.path.join(args.data, "cifar10-jpeg", "train")
images = []
for c in sorted(os.listdir(src)):
    for f in sorted(os.listdir(os.path.join(src, c)))[-args.per_class:]:
        images.append((c, f, Image.open(os.path.join(src, c, f)).convert("RGB")))

rng = np.random.default_rng(0)


def noise(im):
    a = np.asarray(im).astype(np.float64)
    return Image.fromarray(np.clip(a + rng.normal(0, 25, a.shape), 0, 255).astype(np.uint8))


TRANSFORMS = {
    "vflip": lambda im: im.transpose(Image.FLIP_TOP_BOTTOM),
    "blur": lambda im: im.resize((16, 16), Image.BILINEAR).resize((32, 32), Image.BILINEAR),
    "zoom": lambda im: im.crop((8, 8, 24, 24)).resize((32, 32), Image.BICUBIC),
    "invert": lambda im: Image.eval(im, lambda v: 255 - v),
    "gray": lambda im: im.convert("L").convert("RGB"),
    "noise": noise,
}
for name, transform in TRANSFORMS.items():
    for c, f, im in images:
        d = os.path.join(args.out, name, c)
        os.makedirs(d, exist_ok=True)
        transform(im).save(os.path.join(d, os.path.splitext(f)[0] + ".png"))
    print(f"{name}: {len(images)} images in {os.path.join(args.out, name)}")
