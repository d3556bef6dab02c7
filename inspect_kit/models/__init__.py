"""Small reference networks and the one training loop they (and autoencoders) share."""

from inspect_kit.models.autoencoder import ConvAutoencoder, fit_autoencoder
from inspect_kit.models.cnn import SmallCNN
from inspect_kit.models.lesions import fit_lesion_cnn
from inspect_kit.models.training import (
    default_device,
    evaluate_classifier,
    fit,
    fit_classifier,
    predict_logits,
)

__all__ = [
    "ConvAutoencoder",
    "SmallCNN",
    "fit_autoencoder",
    "fit_lesion_cnn",
    "default_device",
    "evaluate_classifier",
    "fit",
    "fit_classifier",
    "predict_logits",
]
