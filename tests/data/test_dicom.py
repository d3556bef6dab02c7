import shutil
import socket

import numpy as np
import pytest

from inspect_kit.data import DICOM_EXAMPLES, dicom_example_paths, load_dicom_images, read_dicom

pydicom = pytest.importorskip("pydicom")


def test_bundled_ct_and_mr_in_physical_units():
    ct, mr = load_dicom_images()
    assert (ct.modality, ct.units, ct.pixels.shape) == ("CT", "HU", (128, 128))
    assert (mr.modality, mr.units, mr.pixels.shape) == ("MR", "arbitrary", (64, 64))
    assert ct.pixels.dtype == mr.pixels.dtype == np.float32
    # oracle: the raw stored values rescaled by hand with the file's own slope/intercept
    raw = pydicom.dcmread(dicom_example_paths(["CT_small.dcm"])[0])
    expected = raw.pixel_array * float(raw.RescaleSlope) + float(raw.RescaleIntercept)
    np.testing.assert_array_equal(ct.pixels, expected.astype(np.float32))
    assert (ct.rescale_slope, ct.rescale_intercept) == (1.0, -1024.0)
    # physics: the top-left corner is air (about -1000 HU), the rest mostly soft tissue
    # (-200..200 HU), and nothing is denser than bone/metal
    assert ct.pixels[:8, :8].mean() < -700
    assert ((ct.pixels > -200) & (ct.pixels < 200)).mean() > 0.3
    assert -1100 < ct.pixels.min() and ct.pixels.max() < 3100
    # MR has no rescale: the stored values come back unchanged
    np.testing.assert_array_equal(mr.pixels, pydicom.dcmread(mr.path).pixel_array)
    assert ct.pixel_spacing == pytest.approx((0.661468, 0.661468))
    assert mr.slice_thickness == pytest.approx(0.8)
    assert ct.patient_id and ct.metadata["Manufacturer"]


def test_reads_a_copied_file_from_any_folder(tmp_path):
    src = dicom_example_paths(["MR_small.dcm"])[0]
    shutil.copy(src, tmp_path / "slice.dcm")
    im = read_dicom(tmp_path / "slice.dcm")
    assert im.modality == "MR" and im.path.endswith("slice.dcm")


def test_errors_are_explained(tmp_path):
    with pytest.raises(FileNotFoundError, match="CT_small.dcm"):
        dicom_example_paths(["no_such_file.dcm"])
    with pytest.raises(FileNotFoundError, match="no DICOM file"):
        read_dicom(tmp_path / "missing.dcm")
    with pytest.raises(ValueError, match="no pixel data"):
        read_dicom(dicom_example_paths(["rtplan.dcm"])[0])


def test_loads_without_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access attempted")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    assert len(load_dicom_images()) == len(DICOM_EXAMPLES)
