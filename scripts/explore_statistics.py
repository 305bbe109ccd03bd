#!/usr/bin/env python3
"""Try CADet statistics and combinations on saved transform features, in plain NumPy.

Reads the `.npy` files that `reproduce_cifar --save-features DIR` or `quickstart --save-features DIR` writes
(X1, X2 and each scored set as (n, n_trs, d), or (n, 1 + n_trs, d) with the un-augmented view first: the
examples write that now, with a `layout.json` saying so, and it needs `--identity-first`) and prints AUROC (%)
against the in-distribution set, and the in-distribution share with p <= 0.05, for each method given. It is an independent re-implementation of
`cadet-detect`'s statistics (written from their definitions, not from the Rust code): on the run in docs/cifar it
reproduces the headline row to the decimal, which checks both. Its other use is trying a statistic before building
it into the library (docs/results.md, "explored and not adopted").

    pip install numpy
    python3 scripts/explore_statistics.py --features /tmp/rc/feat --sets 0_cifar_10_test,1_tiny_imagenet,... \
        'min:lmin50@two+cos1@low+cos10@low' 'fisher:lmin50@two+cos10@low' --center

A method is `COMBINATION:STAT@TAIL+...`: COMBINATION is `min` (minimum p-value) or `fisher` (-2 sum ln p);
TAIL is `low`, `high` or `two`. Statistics (ū: an image's mean unit transform feature; reference images j: X1):
  m_in           mean cosine between the image's own transforms (the paper's)
  cosK           mean of the K largest cos(ū, ū_j)                                  (library: local cos (k=K))
  lminK          m_in minus the mean m_in of the K reference images nearest by cos (library: local m_in (k=K))
  norm           mean Euclidean norm of the raw transform features                  (library: feature norm)
  lnormK         log norm minus the mean log norm of the K nearest reference images (not in the library)
  lofK           cosK minus the mean cosK of its K nearest reference images among X1 (LOF-style; not in the library)
  tcosK          per transform, the mean of the K largest cos(z_i, ū_j); averaged over the transforms (not in the
                 library; 50 times the cost of cosK)
  knnK           single (un-augmented) view: the mean of the K largest cosines to the single views of the k-NN
                 training images (needs --single), or of X1's un-augmented views (with --identity-first)
                 (library: identity cos (k=K))
  agree          cosine between the single view and ū (needs --single or --identity-first) (library: view
                 agreement)
P-values are full conformal, as in the library: every per-statistic rank is taken in X2 plus the test image, for
the test image and for each X2 image, and the combined value is ranked in the same set.
`--center` subtracts X1's mean raw feature before normalising (not in the library). `--identity-first` reads
each image's view 0 as its un-augmented view (the layout `--save-features` writes since the identity view).
"""
import argparse
import json
import re

import numpy as np


def auroc(inside, outside):
    """AUROC (%) of telling `outside` from `inside` by a score where higher = more anomalous (ties count 1/2)."""
    a = np.concatenate([inside, outside])
    order = np.argsort(a, kind="mergesort")
    ranks = np.empty(len(a))
    s = a[order]
    i = 0
    while i < len(a):
        j = i
        while j + 1 < len(a) and s[j + 1] == s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    n1, n2 = len(inside), len(outside)
    return (ranks[n1:].sum() - n2 * (n2 + 1) / 2) / (n1 * n2) * 100


def p_values(calibration, values, tail):
    """Conformal p-values of `values` against `calibration` in the given tail."""
    c = np.sort(calibration)
    m = len(c)
    low = (np.searchsorted(c, values, "right") + 1) / (m + 1)
    high = (m - np.searchsorted(c, values, "left") + 1) / (m + 1)
    return {"low": low, "high": high, "two": np.minimum(1, 2 * np.minimum(low, high))}[tail]


def unit(f, center):
    f = f.astype(np.float64)
    if center is not None:
        f = f - center
    return f / np.linalg.norm(f, axis=-1, keepdims=True)


class Reference:
    def __init__(self, x1, center, kmax):
        z = unit(x1, center)
        n = z.shape[1]
        u = z.mean(1)
        self.m_in = (n * (u * u).sum(1) - 1) / (n - 1)
        self.u = u / np.linalg.norm(u, axis=1, keepdims=True)
        self.log_norm = np.log(np.linalg.norm(x1.astype(np.float64), axis=-1).mean(1))
        self.center = center
        self.kmax = kmax
        self._self_knn = None

    def neighbours(self, u):
        """Indices and cosines of the kmax nearest reference images of each row of `u`, nearest first."""
        cos = u @ self.u.T
        idx = np.argpartition(-cos, self.kmax - 1, axis=1)[:, :self.kmax]
        v = np.take_along_axis(cos, idx, 1)
        o = np.argsort(-v, axis=1)
        return np.take_along_axis(idx, o, 1), np.take_along_axis(v, o, 1)

    def per_transform_top(self, z, k):
        """Per image: the mean over its unit transform features z_i of the mean of the k largest cos(z_i, ū_j)."""
        n, t, d = z.shape
        u = self.u.astype(np.float32)
        out = np.empty(n)
        for s in range(0, n, 100):
            cos = z[s:s + 100].reshape(-1, d).astype(np.float32) @ u.T
            top = np.partition(-cos, k - 1, axis=1)[:, :k]
            out[s:s + 100] = (-top).mean(1).reshape(-1, t).mean(1)
        return out

    def self_knn(self):
        """Each reference image's kmax largest cosines to the other reference images (leave-one-out)."""
        if self._self_knn is None:
            out = np.empty((len(self.u), self.kmax))
            for s in range(0, len(self.u), 2000):
                cos = self.u[s:s + 2000] @ self.u.T
                cos[np.arange(cos.shape[0]), s + np.arange(cos.shape[0])] = -np.inf
                part = np.partition(-cos, self.kmax - 1, axis=1)[:, :self.kmax]
                out[s:s + 2000] = -np.sort(part, axis=1)
            self._self_knn = out
        return self._self_knn


def single_view_top(single, train, k):
    """Per image: the mean of the k largest cosines between its single-view feature and the training images'."""
    a = single.astype(np.float32)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b = train.astype(np.float32)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    out = np.empty(len(a))
    for s in range(0, len(a), 1000):
        cos = a[s:s + 1000] @ b.T
        out[s:s + 1000] = (-np.partition(-cos, k - 1, axis=1)[:, :k]).mean(1)
    return out


def statistics(features, ref, names, single=None, single_train=None):
    f = features.astype(np.float64)
    z = unit(f, ref.center)
    n = z.shape[1]
    u = z.mean(1)
    m_in = (n * (u * u).sum(1) - 1) / (n - 1)
    idx, cos = ref.neighbours(u / np.linalg.norm(u, axis=1, keepdims=True))
    norm = np.linalg.norm(f, axis=-1).mean(1)
    out = {}
    for name in names:
        match = re.fullmatch(r"(m_in|norm|agree|cos|lmin|lnorm|lof|tcos|knn)(\d*)", name)
        if match is None or (match.group(1) in ("m_in", "norm", "agree")) != (match.group(2) == ""):
            raise SystemExit(f"unknown statistic {name} (m_in, norm, cosK, lminK, lnormK, lofK, tcosK, knnK with K >= 1)")
        kind, k = match.group(1), int(match.group(2) or 0)
        if kind not in ("m_in", "norm", "agree") and not 1 <= k <= len(ref.u):
            raise SystemExit(f"{name}: K must be 1 to |X1| = {len(ref.u)}")
        if kind == "m_in":
            out[name] = m_in
        elif kind == "norm":
            out[name] = norm
        elif kind == "cos":
            out[name] = cos[:, :k].mean(1)
        elif kind == "lmin":
            out[name] = m_in - ref.m_in[idx[:, :k]].mean(1)
        elif kind == "lnorm":
            out[name] = np.log(norm) - ref.log_norm[idx[:, :k]].mean(1)
        elif kind == "agree":
            if single is None:
                raise SystemExit(f"{name} needs --single or --identity-first")
            sv = single.astype(np.float64)
            sv = sv / np.linalg.norm(sv, axis=1, keepdims=True)
            out[name] = (sv * u).sum(1) / np.linalg.norm(u, axis=1)
        elif kind == "knn":
            if single is None:
                raise SystemExit(f"{name} needs --single or --identity-first")
            out[name] = single_view_top(single, single_train, k)
        elif kind == "tcos":
            out[name] = ref.per_transform_top(z, k)
        elif kind == "lof":
            out[name] = cos[:, :k].mean(1) - ref.self_knn()[idx[:, :k], :k].mean(axis=(1, 2))
        else:
            raise SystemExit(f"unknown statistic {name}")
    return out


def load(path, ndim, dim=None):
    """An array of `ndim` dimensions (and feature dimension `dim`) from `path`, finite with no zero feature rows;
    anything else stops the script with a message naming the file, before any work."""
    try:
        a = np.load(path)
    except (OSError, ValueError) as e:
        raise SystemExit(f"{path}: cannot read a .npy array ({e})")
    if a.ndim != ndim or a.size == 0:
        raise SystemExit(f"{path}: expected a non-empty {ndim}-dimensional array, got shape {a.shape}")
    if dim is not None and a.shape[-1] != dim:
        raise SystemExit(f"{path}: feature dimension {a.shape[-1]}, expected {dim} (X1's)")
    if ndim == 3 and a.shape[1] < 2:
        raise SystemExit(f"{path}: m_in needs at least 2 transforms per image, got {a.shape[1]}")
    if not np.all(np.isfinite(a)):
        raise SystemExit(f"{path}: holds NaN or infinite values")
    norms = np.linalg.norm(a.astype(np.float64), axis=-1)
    if not np.all(norms > 0) or not np.all(np.isfinite(norms)):
        raise SystemExit(f"{path}: a feature row is zero or its norm overflows")
    return a


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--features", required=True, help="folder with x1.npy, x2.npy and the sets' .npy files")
    ap.add_argument("--sets", required=True, help="comma-separated file stems; the first is in-distribution")
    ap.add_argument("--center", action="store_true", help="subtract X1's mean raw feature first")
    ap.add_argument("--x1", type=int, default=0, help="use only the first N images of X1 (0: all)")
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--single", help="folder of single-view features (reproduce_cifar --save-features DIR: DIR/single)")
    ap.add_argument("--identity-first", action="store_true",
                    help="view 0 of every features file is the un-augmented view (knn against X1's, agree)")
    ap.add_argument("methods", nargs="+")
    a = ap.parse_args()

    methods = []
    for m in a.methods:
        how, parts = m.split(":", 1)
        if how not in ("min", "fisher"):
            raise SystemExit(f"{m}: combination must be min or fisher")
        methods.append((m, how, [tuple(p.split("@")) for p in parts.split("+")]))
    names = sorted({s for _, _, parts in methods for s, _ in parts})
    kmax = max([int(re.sub(r"\D", "", s) or 1) for s in names] + [1])

    if a.x1 < 0:
        raise SystemExit(f"--x1: 0 (all) or a positive count, got {a.x1}")
    if a.single and a.identity_first:
        raise SystemExit("--single and --identity-first both name the un-augmented views: give one")
    first = 1 if a.identity_first else 0
    # Features saved by the examples say their layout beside them (layout.json): refuse a contradiction.
    try:
        with open(f"{a.features}/layout.json") as fh:
            saved = json.load(fh).get("layout")
    except FileNotFoundError:
        saved = None
    except (OSError, ValueError) as e:
        raise SystemExit(f"{a.features}/layout.json: cannot read ({e})")
    if saved is not None and (saved == "identity_first") != a.identity_first:
        raise SystemExit(f"{a.features}/layout.json: layout {saved!r}: "
                         + ("pass --identity-first" if saved == "identity_first" else "leave out --identity-first"))
    x1_all = load(f"{a.features}/x1.npy", 3)
    if a.identity_first and x1_all.shape[1] < 3:
        raise SystemExit(f"{a.features}/x1.npy: --identity-first needs 1 + at least 2 views, got {x1_all.shape[1]}")
    if a.x1:
        x1_all = x1_all[:a.x1]
    x1 = x1_all[:, first:]
    d = x1.shape[-1]
    center = x1.reshape(-1, x1.shape[-1]).astype(np.float64).mean(0) if a.center else None
    ref = Reference(x1, center, kmax)
    sets = a.sets.split(",")
    single = {}
    features = {s: load(f"{a.features}/{s}.npy", 3, d) for s in ["x2"] + sets}
    if a.identity_first:
        single = {s: f[:, 0] for s, f in features.items()}
        single["knn_train"] = x1_all[:, 0]
        features = {s: f[:, 1:] for s, f in features.items()}
        for s, f in features.items():
            if f.shape[1] < 2:
                raise SystemExit(f"{a.features}/{s}.npy: --identity-first needs 1 + at least 2 views")
    if a.single:
        single = {s: load(f"{a.single}/{s}.npy", 2) for s in ["x2", "knn_train"] + sets}
        for s in ["x2"] + sets:
            if len(single[s]) != len(features[s]) or single[s].shape[1] != single["knn_train"].shape[1]:
                raise SystemExit(f"{a.single}/{s}.npy: shape {single[s].shape} does not match {len(features[s])} "
                                 f"images of dimension {single['knn_train'].shape[1]}")
    train = single.get("knn_train")
    x2 = statistics(features["x2"], ref, names, single.get("x2"), train)
    stats = {s: statistics(features[s], ref, names, single.get(s), train) for s in sets}

    def combine(ps, how):
        """Combined anomaly value (higher = more anomalous) of per-statistic p-values along axis 0."""
        return -ps.min(0) if how == "min" else -2 * np.log(ps).sum(0)

    def anomaly_score(st, how, parts):
        return combine(np.array([p_values(x2[s], st[s], tail) for s, tail in parts]), how)

    def full_conformal_p(st, how, parts):
        """Each image's p-value with every rank taken in X2 plus that image (the library's)."""
        m = len(x2[parts[0][0]])
        # Per statistic, each X2 image's counts of X2 values <= and >= it (itself included).
        counts = []
        for s, tail in parts:
            c = np.sort(x2[s])
            counts.append((np.searchsorted(c, x2[s], "right"), m - np.searchsorted(c, x2[s], "left")))
        out = []
        for i in range(len(st[parts[0][0]])):
            ps_x2 = []
            for (s, tail), (le, ge) in zip(parts, counts):
                x = st[s][i]
                low = (le + (x <= x2[s])) / (m + 1)
                high = (ge + (x >= x2[s])) / (m + 1)
                ps_x2.append({"low": low, "high": high, "two": np.minimum(1, 2 * np.minimum(low, high))}[tail])
            t_x2 = combine(np.array(ps_x2), how)
            t_x = combine(np.array([p_values(x2[s], st[s][i:i + 1], tail) for s, tail in parts]), how)[0]
            out.append((np.sum(t_x2 >= t_x) + 1) / (m + 1))
        return np.array(out)

    width = max(len(m) for m, _, _ in methods) + 2
    print(f"{'method':<{width}}" + "".join(f"{s.split('_', 1)[-1][:9]:>10}" for s in sets[1:]) + "   p<=a in")
    for m, how, parts in methods:
        inside = anomaly_score(stats[sets[0]], how, parts)
        rejected = np.mean(full_conformal_p(stats[sets[0]], how, parts) <= a.alpha) * 100
        row = [auroc(inside, anomaly_score(stats[s], how, parts)) for s in sets[1:]]
        print(f"{m:<{width}}" + "".join(f"{r:10.1f}" for r in row) + f"{rejected:9.1f}%")


if __name__ == "__main__":
    main()
