"""Trust metrics for attribution maps: randomisation, faithfulness, localisation, robustness.

Pure computation on maps given as arrays or tensors (2D ``(N, [C,] H, W)`` and 3D
``(N, [C,] D, H, W)``) and, where a metric needs the model, an ``attribute_fn(model, x) ->
maps`` callable, so any attribution method plugs in. Each result is a dataclass with
``to_frame()``: the rows of the methods x metrics table.
"""

from .faithfulness import DeletionInsertion, Road, deletion_insertion, road
from .imputation import noisy_linear_impute
from .localization import (
    Localization,
    average_precision,
    localization_scores,
    mass_outside,
    otsu_threshold,
)
from .randomization import RandomizationTest, data_randomization, model_randomization
from .results import records_to_frame
from .robustness import MaxSensitivity, SeedAgreement, max_sensitivity, seed_agreement
from .similarity import SIMILARITY_METRICS, map_similarity, random_pair_baseline

__all__ = [
    "SIMILARITY_METRICS",
    "DeletionInsertion",
    "Localization",
    "MaxSensitivity",
    "RandomizationTest",
    "Road",
    "SeedAgreement",
    "average_precision",
    "data_randomization",
    "deletion_insertion",
    "localization_scores",
    "map_similarity",
    "mass_outside",
    "max_sensitivity",
    "model_randomization",
    "noisy_linear_impute",
    "otsu_threshold",
    "random_pair_baseline",
    "records_to_frame",
    "road",
    "seed_agreement",
]
