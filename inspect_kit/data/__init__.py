"""Demo datasets built from real data that ships inside installed packages (no downloads).

- :func:`load_digits_images` -- scikit-learn's handwritten digits as (N, 1, H, W) images.
- :func:`load_mni_patches` -- 2D/3D patches of nilearn's MNI152 T1 template labelled by tissue
  (:func:`mni_patches`: the same with each patch's centre, tissue probabilities and gain).
- :func:`load_dicom_images`, :func:`read_dicom`, :func:`dicom_example_paths` -- CT/MR slices
  in physical units (pydicom's bundled test files).
- :func:`load_retina_patches` -- RGB vessel/background patches of scikit-image's fundus photo.
- :func:`make_lesion_task` -- MNI152 slices/volumes with white-matter lesions of measured size
  and their masks (and a shortcut variant with a corner tag), for checking attributions.
- :func:`find_dicom_series` -- a folder of DICOM files as series (volumes ordered along the
  slice normal, with their geometry); users' folders load through
  :func:`inspect_kit.data.formats.load_data`.

nilearn, pydicom, nibabel and scikit-image are dependencies of inspect-kit; each loader imports
them only when called, so ``import inspect_kit.data`` stays light.
"""

from inspect_kit.data.dicom import (
    DICOM_EXAMPLES,
    DicomImage,
    DicomSeries,
    dicom_example_paths,
    find_dicom_series,
    hash_identifier,
    load_dicom_images,
    read_dicom,
)
from inspect_kit.data.digits import DIGIT_CLASSES, load_digits_images
from inspect_kit.data.lesions import LESION_CLASSES, LesionTask, make_lesion_task
from inspect_kit.data.mni import TISSUE_CLASSES, MNIPatches, load_mni_patches, mni_patches
from inspect_kit.data.retina import RETINA_CLASSES, load_retina_patches

__all__ = [
    "DICOM_EXAMPLES",
    "DIGIT_CLASSES",
    "LESION_CLASSES",
    "RETINA_CLASSES",
    "TISSUE_CLASSES",
    "DicomImage",
    "DicomSeries",
    "MNIPatches",
    "LesionTask",
    "dicom_example_paths",
    "find_dicom_series",
    "hash_identifier",
    "load_digits_images",
    "load_dicom_images",
    "load_mni_patches",
    "load_retina_patches",
    "mni_patches",
    "make_lesion_task",
    "read_dicom",
]
