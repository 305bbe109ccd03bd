#!/usr/bin/env python3
"""The cadet_eval and simclr_train pipelines written with Pillow + NumPy, the way torchvision runs them on PIL
images on the CPU, timed on one core; then cadet-augment's criterion bench on the same shapes, in the same run.

  python3 scripts/bench_vs_pillow.py [--seconds 3]

Pillow side: a PIL RGB image in, a float32 CHW NumPy array in [0, 1] out (torchvision's ToTensor), per view:
  cadet_eval:   RandomResizedCrop(size, scale=(0.75, 0.75)) = crop + resize(BILINEAR) -> flip -> to array
  simclr_train: RandomResizedCrop(size) -> flip -> ColorJitter(0.8, 0.8, 0.8, 0.2) w.p. 0.8 (ImageEnhance
                brightness/contrast/saturation + HSV hue shift, random order) -> grayscale w.p. 0.2
                -> GaussianBlur(sigma in [0.1, 2]) w.p. 0.5 -> to array
Rust side: `cargo bench --bench augment` (an f32 CHW image in, an f32 CHW view out), single-threaded.
Prints a Markdown table of views per second per core. Needs pillow and numpy.
"""
import argparse, math, os, random, re, subprocess, time
import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

os.environ.setdefault("OMP_NUM_THREADS", "1")


def crop_box(w, h, scale, ratio=(3 / 4, 4 / 3)):
    area = w * h
    for _ in range(10):
        target = area * random.uniform(*scale)
        aspect = math.exp(random.uniform(math.log(ratio[0]), math.log(ratio[1])))
        cw, ch = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
        if 0 < cw <= w and 0 < ch <= h:
            top, left = random.randint(0, h - ch), random.randint(0, w - cw)
            return left, top, left + cw, top + ch
    return 0, 0, w, h


def to_array(img):
    return np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / 255.0


def cadet_eval(img, size):
    img = img.crop(crop_box(*img.size, (0.75, 0.75))).resize((size, size), Image.BILINEAR)
    if random.random() < 0.5:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    return to_array(img)


def adjust_hue(img, f):
    h, s, v = img.convert("HSV").split()
    h = Image.fromarray((np.asarray(h, dtype=np.uint8) + np.uint8(int(f * 255) % 256)).astype(np.uint8), "L")
    return Image.merge("HSV", (h, s, v)).convert("RGB")


def simclr_train(img, size):
    img = img.crop(crop_box(*img.size, (0.08, 1.0))).resize((size, size), Image.BILINEAR)
    if random.random() < 0.5:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    if random.random() < 0.8:
        ops = [lambda i: ImageEnhance.Brightness(i).enhance(random.uniform(0.2, 1.8)),
               lambda i: ImageEnhance.Contrast(i).enhance(random.uniform(0.2, 1.8)),
               lambda i: ImageEnhance.Color(i).enhance(random.uniform(0.2, 1.8)),
               lambda i: adjust_hue(i, random.uniform(-0.2, 0.2))]
        random.shuffle(ops)
        for op in ops:
            img = op(img)
    if random.random() < 0.2:
        img = img.convert("L").convert("RGB")
    if random.random() < 0.5:
        img = img.filter(ImageFilter.GaussianBlur(random.uniform(0.1, 2.0)))
    return to_array(img)


def rate(fn, img, size, seconds):
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn(img, size)
        n += 1
    return n / (time.perf_counter() - start)


ap = argparse.ArgumentParser()
ap.add_argument("--seconds", type=float, default=3.0)
args = ap.parse_args()
random.seed(0)
rng = np.random.default_rng(0)
imgs = {s: Image.fromarray(rng.integers(0, 256, size=(s, s, 3), dtype=np.uint8), "RGB") for s in (32, 256)}
cases = [("cadet_eval_32_from_32", cadet_eval, 32, 32), ("cadet_eval_224_from_256", cadet_eval, 256, 224),
         ("simclr_train_224_from_256", simclr_train, 256, 224)]
pillow = {name: rate(fn, imgs[src], size, args.seconds) for name, fn, src, size in cases}

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
out = subprocess.run(["taskset", "-c", "0", "cargo", "bench", "--bench", "augment", "--", "--warm-up-time", "1",
                      "--measurement-time", str(args.seconds)], cwd=root, capture_output=True, text=True, check=True).stdout
ours = {}
for name, _, _, _ in cases:
    m = re.search(re.escape(name) + r"[\s\S]*?thrpt:\s+\[\s*[\d.]+\s*K?elem/s\s+([\d.]+)\s*(K?)elem/s", out)
    ours[name] = float(m.group(1)) * (1000 if m.group(2) == "K" else 1)

print("| pipeline | cadet-augment (views/s, 1 core) | Pillow + NumPy (views/s, 1 core) | ratio |")
print("|---|---|---|---|")
for name, *_ in cases:
    print(f"| {name} | {ours[name]:.0f} | {pillow[name]:.0f} | {ours[name] / pillow[name]:.2f}× |")
