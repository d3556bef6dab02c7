"""Attribution maps: which parts of an image or volume drove a model's output.

One call shape for every method (:func:`attribute`), 2D and 3D, any channel count; the
model comes back exactly as it went in (:func:`model_guard`); memory is bounded by a budget;
maps are kept as computed (signed where the method is signed), with the explained target,
every parameter and the model's sha256 (:class:`Attribution`). Pure computation: the
figures live in :mod:`inspect_kit.figures.attribution`.

Where each method comes from: the maths of the gradient methods, SmoothGrad/VarGrad,
integrated gradients, guided backpropagation, the CAMs and occlusion is written here in
torch (3D, functional and in-place ReLUs, modules called twice, memory bounds) and tested
against captum and MONAI; LRP runs through zennit (an optional extra).
"""

from ._api import attribute, iter_attributions, spatial_dims
from ._budget import estimate_row_bytes, parse_bytes
from ._guard import GuardReport, model_guard, train_mode_batchnorms
from ._layers import CamLayer, TokenGrid, choose_cam_layer
from ._options import METHODS, AttributionOptions, canonical_method
from ._result import Attribution, flat_maps
from ._store import attribute_to_store, read_attributions
from ._targets import Region, resolve_target

__all__ = [
    "METHODS",
    "Attribution",
    "AttributionOptions",
    "CamLayer",
    "GuardReport",
    "Region",
    "TokenGrid",
    "attribute",
    "attribute_to_store",
    "canonical_method",
    "choose_cam_layer",
    "estimate_row_bytes",
    "flat_maps",
    "iter_attributions",
    "model_guard",
    "parse_bytes",
    "read_attributions",
    "resolve_target",
    "spatial_dims",
    "train_mode_batchnorms",
]
