"""Caveats: which results are fragile, and the number that says so.

A report (or a notebook) states them next to its results: a probe on few samples, a
randomly initialised network whose probe beats the trained one, an autoencoder whose
validation loss rose during training, strongly imbalanced classes. :func:`find_caveats`
detects them; each :class:`Caveat` carries its triggering number and threshold, and a
sentence the report shows as it is.

Examples
--------
>>> [c.kind for c in find_caveats(labels=[0] * 30 + [1] * 5)]
['class_imbalance']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["IMBALANCE_RATIO", "LOSS_RISE", "SMALL_N", "Caveat", "find_caveats"]

#: Probes on fewer samples than this are flagged.
SMALL_N = 100
#: Largest / smallest class count at or above which classes are flagged as imbalanced.
IMBALANCE_RATIO = 3.0
#: Relative rise of the final validation loss over its minimum that is flagged.
LOSS_RISE = 0.10


@dataclass(frozen=True)
class Caveat:
    """One fragile result.

    Attributes
    ----------
    kind : str
        ``"small_n"``, ``"probe_warning"``, ``"random_beats_trained"``,
        ``"class_imbalance"`` or ``"val_loss_rise"``.
    text : str
        The sentence, with the number in it.
    value : float or None
        The number that triggered it (samples, random-weights score, count ratio, relative
        loss rise); None for a probe's own warning.
    threshold : float or None
        What ``value`` was compared with.
    layer : str or None
        The layer concerned, when there is one.
    """

    kind: str
    text: str
    value: float | None = None
    threshold: float | None = None
    layer: str | None = None

    def __str__(self) -> str:
        return self.text


def find_caveats(
    *,
    profile: Any = None,
    random_profile: Any = None,
    labels: Any = None,
    class_names: Sequence[str] | None = None,
    history: Mapping[str, Any] | None = None,
) -> list[Caveat]:
    """The fragile results among those given, each with its triggering number.

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
    list of Caveat
        Empty when nothing is fragile.

    Examples
    --------
    >>> [c] = find_caveats(history={"val_loss": [1.06, 0.9, 1.78]})
    >>> c.kind, round(c.value, 3), c.threshold
    ('val_loss_rise', 0.978, 0.1)
    >>> c.text
    'validation loss rose from 0.90 (epoch 2) to 1.78 (epoch 3) during training: the model \
kept is past its best fit'
    """
    out: list[Caveat] = []
    if profile is not None and profile.results:
        n = int(profile.results[0].n_samples)
        if n < SMALL_N:
            best = int(np.argmax(profile.scores))
            cv = profile.results[0].cv
            out.append(
                Caveat(
                    "small_n",
                    f"small N: the probes use {n} samples (cv={cv}); "
                    f"{profile.layers[best]}'s {profile.scores[best]:.3f} could move by a "
                    f"sample's worth (1/{max(1, n // cv)}) per fold",
                    value=float(n),
                    threshold=float(SMALL_N),
                )
            )
        for layer, r in zip(profile.layers, profile.results, strict=True):
            for w in getattr(r, "warnings", ()):
                out.append(Caveat("probe_warning", f"probe at {layer}: {w}", layer=str(layer)))
                break
    if profile is not None and random_profile is not None:
        rand = dict(zip(random_profile.layers, random_profile.scores, strict=True))
        for layer, s in zip(profile.layers, profile.scores, strict=True):
            if layer in rand and rand[layer] > s:
                rs, ts = float(rand[layer]), float(s)
                out.append(
                    Caveat(
                        "random_beats_trained",
                        f"at {layer} the randomly initialised network's probe ({rs:.3f}) beats "
                        f"the trained one ({ts:.3f}): what is decodable there owes nothing to "
                        "training",
                        value=rs,
                        threshold=ts,
                        layer=str(layer),
                    )
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
            ratio = counts[hi] / counts[lo]
            out.append(
                Caveat(
                    "class_imbalance",
                    f"class imbalance: {name(values[hi])} has {counts[hi]} samples, "
                    f"{name(values[lo])} {counts[lo]} ({ratio:.1f}:1); plain accuracy favours "
                    "the large class (the probes report balanced accuracy)",
                    value=float(ratio),
                    threshold=IMBALANCE_RATIO,
                )
            )
    if history is not None:
        val = [float(v) for v in (history.get("val_loss") or [])]
        if len(val) >= 2:
            best = int(np.argmin(val))
            if val[-1] > val[best] * (1 + LOSS_RISE):
                out.append(
                    Caveat(
                        "val_loss_rise",
                        f"validation loss rose from {val[best]:.2f} (epoch {best + 1}) to "
                        f"{val[-1]:.2f} (epoch {len(val)}) during training: the model kept is "
                        "past its best fit",
                        value=(val[-1] - val[best]) / val[best] if val[best] else float("inf"),
                        threshold=LOSS_RISE,
                    )
                )
    return out
