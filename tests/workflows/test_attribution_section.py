"""The report's "Where the model looks": per class, correct and wrong samples side by side."""

from __future__ import annotations

import numpy as np
import torch

from inspect_kit.analysis.attribution import attribute
from inspect_kit.workflows.attribution import where_the_model_looks
from tests.analysis.attribution._models import tiny


def test_per_class_correct_and_wrong_samples() -> None:
    model = tiny(2)
    x = torch.rand((12, 1, 16, 16), generator=torch.Generator().manual_seed(0))
    pred = model(x).argmax(1).numpy()
    labels = pred.copy()
    labels[:3] = (pred[:3] + 1) % 3  # three wrongly classified samples
    maps = [
        attribute(model, x, method=m, labels=labels, target="label", steps=4, progress=False)
        for m in ("gradcam", "integrated-gradients")
    ]
    sections = where_the_model_looks(maps, x.numpy(), per_class=2)
    classes = np.unique(labels)
    assert len(sections) == len(classes)
    for (caption, fig), c in zip(sections, classes, strict=True):
        right = int(min(2, ((labels == c) & (pred == c)).sum()))
        wrong = int(min(2, ((labels == c) & (pred != c)).sum()))
        assert caption.startswith(f"class {c}: {right} correct, {wrong} wrong")
        assert len(fig.data) == 2 * 2 * (right + wrong)  # methods x samples, image + map each
