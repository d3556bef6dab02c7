"""Randomisation tests of attribution maps (Adebayo et al., NeurIPS 2018; Arun et al., 2021).

A map that stays the same when the model's weights are replaced by random ones (model
randomisation) or when the model was trained on permuted labels (data randomisation) cannot be
explaining what the model learned. Each test computes the maps of the trained model and of
the randomised one(s) with the same ``attribute_fn(model, x) -> maps``, scores each pair with
:func:`~inspect_kit.analysis.trust.similarity.map_similarity`, and compares the scores with the
similarity of random pairs of the trained model's maps of *different* samples: the level of
"unrelated maps" (Arun et al., Radiology: AI 2021).

Weights are randomised with :func:`inspect_kit.analysis.randomization.randomize_weights`, the
package's one randomisation helper, on deep copies: the model passed in is never modified.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import nn
from tqdm.auto import tqdm

from inspect_kit.hooks import list_layers
from inspect_kit.seeding import RandomState, resolve_seed

from ..randomization import randomize_weights
from ._maps import AttributeFn, call_attribute, input_tensor
from .results import TrustResult
from .similarity import SIMILARITY_METRICS, map_similarity, random_pair_baseline

logger = logging.getLogger(__name__)

__all__ = ["RandomizationTest", "data_randomization", "model_randomization"]

_MODES = ("cascading", "independent")


@dataclass
class RandomizationTest(TrustResult):
    """Similarity of a method's maps between a trained model and randomised ones.

    Attributes
    ----------
    method : str
    test : str
        ``"model (cascading)"``, ``"model (independent)"`` or ``"data"``.
    stages : list of str
        What was randomised at each stage: cumulative module lists in the cascading test (the
        last stage has every layer random), one module per stage in the independent test,
        ``"permuted labels"`` in the data test.
    scores : dict of str -> ndarray (S, N)
        Similarity of each stage's map to the trained model's map, per metric and sample.
    baseline : dict of str -> float
        Mean similarity of random pairs of the trained model's maps (different samples).
    verdict_metric : str
    tolerance : float
        Share of the gap between the baseline and 1 that a passing method may keep.
    passed : bool
        The method's maps changed enough: the verdict score is at most
        ``baseline + tolerance * (1 - baseline)``.
    reason : str
        The verdict in words, with its numbers.
    random_state : int
    """

    method: str
    test: str
    stages: list[str]
    scores: dict[str, np.ndarray]
    baseline: dict[str, float]
    verdict_metric: str
    tolerance: float
    passed: bool
    reason: str
    random_state: int
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def final_scores(self) -> dict[str, float]:
        """Per metric, the mean score the verdict is read from (the last cascade stage, the
        mean over the independent stages, or the permuted-labels model)."""
        return {m: _verdict_score(s, self.test) for m, s in self.scores.items()}

    def to_records(self) -> list[dict[str, Any]]:
        """One row per stage: the mean score per metric, the baselines and the verdict."""
        rows = []
        for k, stage in enumerate(self.stages):
            row: dict[str, Any] = {"method": self.method, "test": self.test, "stage": stage}
            for m, s in self.scores.items():
                row[m] = float(np.mean(s[k]))
                row[f"{m}_baseline"] = self.baseline[m]
            row["passed"] = self.passed
            rows.append(row)
        return rows

    def summary(self) -> dict[str, Any]:
        """One row for the methods x metrics table: verdict, its score and baseline."""
        m = self.verdict_metric
        return {
            "method": self.method,
            "test": self.test,
            "passed": self.passed,
            "metric": m,
            "score": self.final_scores[m],
            "baseline": self.baseline[m],
            "reason": self.reason,
        }


def _verdict_score(s: np.ndarray, test: str) -> float:
    return float(np.mean(s) if test == "model (independent)" else np.mean(s[-1]))


def _verdict(
    method: str, test: str, score: float, base: float, tol: float, metric: str
) -> tuple[bool, str]:
    limit = base + tol * (1.0 - base)
    if score <= limit:
        return True, (
            f"{method}: randomising the {'labels' if test == 'data' else 'weights'} lowers the "
            f"{metric} similarity to {score:.2f}, at most {limit:.2f} (random pairs of maps: "
            f"{base:.2f}): the maps depend on what the model learned."
        )
    return False, (
        f"{method}: the maps of the randomised model keep a {metric} similarity of {score:.2f} "
        f"to the trained model's, above {limit:.2f} (random pairs of maps: {base:.2f}): they "
        "depend little on what the model learned; do not read them as explanations."
    )


def _compare(
    method: str,
    test: str,
    model: nn.Module,
    others: list[tuple[str, nn.Module]],
    x: Any,
    attribute_fn: AttributeFn,
    metrics: Sequence[str],
    verdict_metric: str,
    tolerance: float,
    n_pairs: int,
    seed: int,
    progress: bool,
    params: dict[str, Any],
) -> RandomizationTest:
    metrics = list(metrics)
    unknown = [m for m in metrics if m not in SIMILARITY_METRICS]
    if unknown or not metrics:
        raise ValueError(
            f"metrics must be a non-empty subset of {SIMILARITY_METRICS}, got {metrics}"
        )
    if verdict_metric not in metrics:
        raise ValueError(f"verdict_metric {verdict_metric!r} must be one of metrics {metrics}")
    if not 0.0 <= tolerance < 1.0:
        raise ValueError(f"tolerance must be in [0, 1), got {tolerance!r}")
    xt = input_tensor(x)
    if len(xt) < 2:
        raise ValueError(
            "randomisation tests need at least 2 samples (for the random-pair baseline)"
        )
    ref = call_attribute(attribute_fn, model, xt)
    baseline = {
        m: random_pair_baseline(ref, m, n_pairs=n_pairs, random_state=seed) for m in metrics
    }
    scores = {m: np.empty((len(others), len(xt))) for m in metrics}
    for k, (_, other) in enumerate(
        tqdm(others, desc=f"{test} randomisation", disable=not progress)
    ):
        maps = call_attribute(attribute_fn, other, xt)
        for m in metrics:
            scores[m][k] = map_similarity(ref, maps, m)
    score = _verdict_score(scores[verdict_metric], test)
    passed, reason = _verdict(
        method, test, score, baseline[verdict_metric], tolerance, verdict_metric
    )
    logger.info("%s", reason)
    return RandomizationTest(
        method=method,
        test=test,
        stages=[name for name, _ in others],
        scores=scores,
        baseline=baseline,
        verdict_metric=verdict_metric,
        tolerance=tolerance,
        passed=passed,
        reason=reason,
        random_state=seed,
        params=params,
    )


def model_randomization(
    model: nn.Module,
    x: Any,
    attribute_fn: AttributeFn,
    *,
    method: str = "attribution",
    mode: str = "cascading",
    layers: Sequence[str] | None = None,
    metrics: Sequence[str] = SIMILARITY_METRICS,
    verdict_metric: str = "ssim",
    tolerance: float = 0.25,
    n_pairs: int = 100,
    random_state: RandomState = 0,
    progress: bool = True,
) -> RandomizationTest:
    """Model-parameter randomisation test of an attribution method (Adebayo et al., 2018).

    Cascading: the layers are re-initialised cumulatively from the output down, and the maps of
    every stage are compared with the trained model's; the verdict reads the last stage, where
    every layer is random. Independent: each layer alone is re-initialised; the verdict reads
    the mean over layers. A method passes when its verdict score is at most
    ``baseline + tolerance * (1 - baseline)``, the baseline being the similarity of random
    pairs of the trained model's maps of different samples (Arun et al., 2021).

    Parameters
    ----------
    model : nn.Module
        The trained model; never modified (each stage randomises a deep copy).
    x : tensor or ndarray, (N, C, H, W) or (N, C, D, H, W), N >= 2
    attribute_fn : callable (model, x) -> maps
        Any attribution method; maps ``(N, *S)`` or ``(N, C, *S)`` (channels are summed). It
        runs on the model and on each randomised copy, so it must not hold on to ``model``.
    method : str, default="attribution"
        The method's name, for the table and the verdict.
    mode : {"cascading", "independent"}, default="cascading"
    layers : sequence of str, optional
        Modules to randomise, output first; default every convolution and linear layer, in
        reverse order of ``model.named_modules()``.
    metrics : sequence of str, default=all of ``SIMILARITY_METRICS``
    verdict_metric : str, default="ssim"
        The score the verdict reads (Arun et al. use SSIM).
    tolerance : float, default=0.25
    n_pairs : int, default=100
        Random pairs for the baseline.
    random_state : int, Generator or None, default=0
        Seeds the weight draws (stage ``k`` uses ``random_state + k``) and the pairs.
    progress : bool, default=True

    Returns
    -------
    RandomizationTest

    Examples
    --------
    >>> import torch
    >>> from inspect_kit.models import SmallCNN
    >>> net = SmallCNN(n_classes=2).eval()
    >>> def grad(model, x):
    ...     x = x.clone().requires_grad_(True)
    ...     model(x)[:, 1].sum().backward()
    ...     return x.grad
    >>> res = model_randomization(net, torch.rand(4, 1, 16, 16), grad, progress=False)
    >>> res.stages[-1]
    'fc+conv3+conv2+conv1'
    """
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    seed = resolve_seed(random_state)
    if layers is None:
        layers = list_layers(model, types=["Conv1d", "Conv2d", "Conv3d", "Linear"])[::-1]
    layers = list(layers)
    if not layers:
        raise ValueError("no layers to randomise: pass layers=[...] (dotted module names)")
    others: list[tuple[str, nn.Module]] = []
    for k in range(len(layers)):
        chosen = layers[: k + 1] if mode == "cascading" else [layers[k]]
        copy = randomize_weights(model, chosen, random_state=seed + k, copy=True)
        others.append(("+".join(chosen), copy))
    params = {"mode": mode, "layers": layers, "tolerance": tolerance, "n_pairs": n_pairs}
    return _compare(
        method,
        f"model ({mode})",
        model,
        others,
        x,
        attribute_fn,
        metrics,
        verdict_metric,
        tolerance,
        n_pairs,
        seed,
        progress,
        params,
    )


def data_randomization(
    model: nn.Module,
    permuted_model: nn.Module,
    x: Any,
    attribute_fn: AttributeFn,
    *,
    method: str = "attribution",
    metrics: Sequence[str] = SIMILARITY_METRICS,
    verdict_metric: str = "ssim",
    tolerance: float = 0.25,
    n_pairs: int = 100,
    random_state: RandomState = 0,
) -> RandomizationTest:
    """Data randomisation test (Adebayo et al., 2018): maps of a model trained on permuted labels.

    A method whose maps for a model that could only memorise look like those of the model that
    learned the task explains the input, not the learning. Scored and judged as
    :func:`model_randomization` (the single stage is the permuted-labels model).

    Parameters
    ----------
    model, permuted_model : nn.Module
        The same architecture trained on the true labels and on a permutation of them
        (:func:`inspect_kit.models.lesions.fit_lesion_cnn` with ``permute_labels=True`` makes
        one for the lesion task).
    x, attribute_fn, method, metrics, verdict_metric, tolerance, n_pairs, random_state
        As :func:`model_randomization`.

    Examples
    --------
    >>> import torch
    >>> from inspect_kit.models import SmallCNN
    >>> def grad(model, x):
    ...     x = x.clone().requires_grad_(True)
    ...     model(x)[:, 1].sum().backward()
    ...     return x.grad
    >>> res = data_randomization(SmallCNN(n_classes=2).eval(),
    ...                          SmallCNN(n_classes=2, random_state=1).eval(),
    ...                          torch.rand(4, 1, 16, 16), grad)
    >>> res.stages
    ['permuted labels']
    """
    seed = resolve_seed(random_state)
    return _compare(
        method,
        "data",
        model,
        [("permuted labels", permuted_model)],
        x,
        attribute_fn,
        metrics,
        verdict_metric,
        tolerance,
        n_pairs,
        seed,
        False,
        {"tolerance": tolerance, "n_pairs": n_pairs},
    )
