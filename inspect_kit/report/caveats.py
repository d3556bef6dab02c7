"""Caveats a report states next to its results: where a number is fragile, and why.

Each caveat carries the number that triggered it: a probe on few samples, a randomly
initialised network whose probe beats the trained one, an autoencoder whose validation loss
rose during training, strongly imbalanced classes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["SMALL_N", "IMBALANCE_RATIO", "LOSS_RISE", "report_caveats"]

#: Probes on fewer samples than this are flagged.
SMALL_N = 100
#: Largest / smallest class count at or above which classes are flagged as imbalanced.
IMBALANCE_RATIO = 3.0
#: Relative rise of the final validation loss over its minimum that is flagged.
LOSS_RISE = 0.10


def report_caveats(
    *,
    profile: Any = None,
    random_profile: Any = None,
    labels: Any = None,
    class_names: Sequence[str] | None = None,
    history: Mapping[str, Any] | None = None,
) -> list[str]:
    """Sentences, each with its triggering number, saying which results are fragile.

    Parameters
    ----------
    profile, random_profile : ProbeProfile, optional
        The trained network's probe profile and the randomly initialised one's.
    labels : array-like, optional
        The store's labels (for class imbalance).
    class_names : sequence of str, optional
    history : mapping, optional
        A training history with ``val_loss`` (one value per epoch), e.g. the autoencoder's.

    Returns
    -------
    list of str
        Empty when nothing is fragile.

    Examples
    --------
    >>> report_caveats(history={"val_loss": [1.06, 0.9, 1.78]})
    ['validation loss rose from 0.90 (epoch 2) to 1.78 (epoch 3) during training: the model \
kept is past its best fit']
    """
    out: list[str] = []
    if profile is not None and profile.results:
        n = int(profile.results[0].n_samples)
        if n < SMALL_N:
            best = int(np.argmax(profile.scores))
            out.append(
                f"small N: the probes use {n} samples (cv={profile.results[0].cv}); "
                f"{profile.layers[best]}'s {profile.scores[best]:.3f} could move by a "
                f"sample's worth (1/{max(1, n // profile.results[0].cv)}) per fold"
            )
        for layer, r in zip(profile.layers, profile.results, strict=True):
            for w in getattr(r, "warnings", ()):
                out.append(f"probe at {layer}: {w}")
                break
    if profile is not None and random_profile is not None:
        rand = dict(zip(random_profile.layers, random_profile.scores, strict=True))
        beaten = [
            (layer, float(rand[layer]), float(s))
            for layer, s in zip(profile.layers, profile.scores, strict=True)
            if layer in rand and rand[layer] > s
        ]
        for layer, rs, ts in beaten:
            out.append(
                f"at {layer} the randomly initialised network's probe ({rs:.3f}) beats the "
                f"trained one ({ts:.3f}): what is decodable there owes nothing to training"
            )
    if labels is not None:
        values, counts = np.unique(np.asarray(labels), return_counts=True)
        if len(values) > 1 and counts.max() >= IMBALANCE_RATIO * counts.min():

            def name(v: Any) -> str:
                if (
                    class_names is not None
                    and np.asarray(v).dtype.kind in "iu"
                    and 0 <= int(v) < len(class_names)
                ):
                    return str(class_names[int(v)])
                return str(v)

            hi, lo = int(np.argmax(counts)), int(np.argmin(counts))
            out.append(
                f"class imbalance: {name(values[hi])} has {counts[hi]} samples, "
                f"{name(values[lo])} {counts[lo]} ({counts[hi] / counts[lo]:.1f}:1); "
                "plain accuracy favours the large class (the probes report balanced accuracy)"
            )
    if history is not None:
        val = [float(v) for v in (history.get("val_loss") or [])]
        if len(val) >= 2:
            best = int(np.argmin(val))
            if val[-1] > val[best] * (1 + LOSS_RISE):
                out.append(
                    f"validation loss rose from {val[best]:.2f} (epoch {best + 1}) to "
                    f"{val[-1]:.2f} (epoch {len(val)}) during training: the model kept is "
                    "past its best fit"
                )
    return out
