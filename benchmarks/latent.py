"""Benchmark of latent probing and linear probes.

1. Encoding throughput: ``LatentProbe.encode`` and ``LatentProbe.fit`` (encode, decode, per-sample
   error, thumbnails, worst cases, correlations) against a plain ``torch.no_grad`` forward of
   the same encoder (and encoder + decoder), on sklearn digits (2D) and MNI152 cubes (3D).
2. Probe fitting time across the layers of a store: ``probe_profile`` on a capture of a digits
   CNN, against the same cross-validated scikit-learn pipeline on arrays already in memory.

Run:  .venv/bin/python benchmarks/latent.py [--quick] [--threads N]
Prints a Markdown table (paste into benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from inspect_kit.analysis.latent import LatentProbe
from inspect_kit.analysis.probes import probe_profile
from inspect_kit.capture import capture
from inspect_kit.data import load_digits_images, load_mni_patches
from inspect_kit.models import ConvAutoencoder, SmallCNN, fit_autoencoder, fit_classifier


def timed(fn, repeats: int) -> float:
    """Median wall time of ``repeats`` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def plain_encode(model, X, batch_size=256):
    model.eval()
    with torch.no_grad():
        for s in range(0, len(X), batch_size):
            model.encode(torch.from_numpy(X[s : s + batch_size]))


def plain_roundtrip(model, X, batch_size=256):
    model.eval()
    with torch.no_grad():
        for s in range(0, len(X), batch_size):
            x = torch.from_numpy(X[s : s + batch_size])
            ((model.decode(model.encode(x)) - x) ** 2).flatten(1).mean(1).numpy()


def encoding_rows(name, model, X, y, repeats):
    n = len(X)
    rows = []
    probe = LatentProbe(model, progress=False, batch_size=256)
    lean = LatentProbe(model, progress=False, batch_size=256, thumbnails=False, n_worst=0)
    cases = [
        ("plain `model.encode` (torch.no_grad)", lambda: plain_encode(model, X)),
        ("`LatentProbe.encode`", lambda: probe.encode(X)),
        ("plain encode + decode + per-sample MSE", lambda: plain_roundtrip(model, X)),
        ("`LatentProbe.fit` (thumbnails=False, n_worst=0)", lambda: lean.fit(X, labels=y)),
        ("`LatentProbe.fit` (defaults: thumbnails, 16 worst)", lambda: probe.fit(X, labels=y)),
    ]
    base = None
    for label, fn in cases:
        t = timed(fn, repeats)
        base = base or t
        rows.append((name, label, n, t, n / t, t / base))
    return rows


def probe_rows(repeats, quick):
    X, y = load_digits_images(16)
    net = SmallCNN(n_classes=10)
    fit_classifier(net, X, y, epochs=3 if quick else 8, lr=3e-3, progress=False)
    net.eval()
    layers = ["relu1", "relu2", "relu3", "flatten", "fc"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        # activations pooled at capture (reduce='mean'), as one would for probing
        store = capture(
            net, X, layers, Path(tmp) / "digits.h5", labels=y, reduce="mean", progress=False
        )
        try:
            feats = {name: store.to_numpy(name) for name in layers}
            splitter = StratifiedKFold(5, shuffle=True, random_state=0)

            def sklearn_only():
                for name in layers:
                    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
                    cross_val_score(pipe, feats[name], y, cv=splitter)

            t_sk = timed(sklearn_only, repeats)
            t_pp = timed(lambda: probe_profile(store, layers, progress=False), repeats)
            prof = probe_profile(store, layers, progress=False)
            scores = ", ".join(
                f"{n} {s:.2f}" for n, s in zip(prof.layers, prof.scores, strict=True)
            )
            case = f"{len(layers)} layers (pooled), 5-fold"
            rows.append((case, "sklearn pipeline on in-memory arrays", t_sk, "-"))
            rows.append(
                (
                    case,
                    "`probe_profile` (reads the store, + balanced chance)",
                    t_pp,
                    scores + f" (chance {prof.chance[0]:.2f})",
                )
            )
        finally:
            store.close()
        if not quick:
            store = capture(
                net,
                X,
                ["relu3"],
                Path(tmp) / "relu3.h5",
                labels=y,
                reduce="flatten",
                progress=False,
            )
            try:
                dim = int(store["relu3"].shape[1])
                t_flat = timed(lambda: probe_profile(store, ["relu3"], progress=False), 1)
                r = probe_profile(store, ["relu3"], progress=False).scores[0]
                rows.append(
                    (
                        f"relu3 flattened at capture ({dim} features), 5-fold",
                        "`probe_profile`",
                        t_flat,
                        f"relu3 {r:.2f}",
                    )
                )
            finally:
                store.close()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller data, fewer repeats")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    repeats = 2 if args.quick else 5

    X, y = load_digits_images(16)
    X = np.concatenate([X] * (1 if args.quick else 4))
    y = np.concatenate([y] * (1 if args.quick else 4))
    ae = ConvAutoencoder((1, 16, 16), latent_dim=8)
    fit_autoencoder(ae, X[:1797], epochs=2, progress=False)
    X3, y3, _ = load_mni_patches(dim=3, patch=16, n_per_class=100 if args.quick else 300)
    ae3 = ConvAutoencoder(X3.shape[1:], latent_dim=8)
    fit_autoencoder(ae3, X3[:256], epochs=1, progress=False)

    enc = encoding_rows("digits 1x16x16", ae, X, y, repeats)
    enc += encoding_rows("MNI152 1x16x16x16", ae3, X3, y3, repeats)
    probes = probe_rows(max(1, repeats // 2), args.quick)

    print(
        f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{args.threads} torch thread(s), shared CPU"
    )
    print("\n| data | what | samples | time (s) | samples/s | x plain encode |")
    print("|---|---|---:|---:|---:|---:|")
    for name, label, n, t, rate, rel in enc:
        print(f"| {name} | {label} | {n} | {t:.3f} | {rate:,.0f} | {rel:.2f} |")
    print("\n| probes | how | time (s) | scores |")
    print("|---|---|---:|---|")
    for case, how, t, scores in probes:
        print(f"| {case} | {how} | {t:.2f} | {scores} |")


if __name__ == "__main__":
    main()
