"""DICOM series and NIfTI volumes as hospitals store them: assembly, geometry, metadata.

The DICOM series are built from pydicom's bundled CT and MR files (positions set along the
slice normal, distinct pixels per slice, files shuffled across sub-folders, InstanceNumber
reversed) and must come back ordered by position, in Hounsfield units, voxel for voxel.
"""

from __future__ import annotations

import copy
import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from inspect_kit.data.formats import load_data

pydicom = pytest.importorskip("pydicom")
nib = pytest.importorskip("nibabel")

from pydicom.data import get_testdata_file  # noqa: E402
from pydicom.uid import generate_uid  # noqa: E402


def _write_series(
    folder: Path,
    source: str = "CT_small.dcm",
    n: int = 5,
    step: float = 2.5,
    *,
    orientation: tuple[float, ...] | None = None,
    skip: tuple[int, ...] = (),
    seed: int = 0,
    manufacturer: str | None = None,
) -> tuple[np.ndarray, str]:
    """Write a series; return its slices (position order) in physical units and its UID."""
    src = pydicom.dcmread(get_testdata_file(source))
    iop = np.asarray(orientation or [float(v) for v in src.ImageOrientationPatient])
    normal = np.cross(iop[:3], iop[3:])
    origin = np.asarray([float(v) for v in src.ImagePositionPatient])
    uid = generate_uid()
    slope = float(src.get("RescaleSlope", 1) or 1)
    intercept = float(src.get("RescaleIntercept", 0) or 0)
    rng = np.random.default_rng(seed)
    names = list(range(n))
    random.Random(seed).shuffle(names)
    expected = []
    for k in range(n):
        raw = src.pixel_array.astype(np.int16) + np.int16(7 * k)
        raw[rng.integers(0, raw.shape[0]), :] += np.int16(3)  # rows that differ per slice
        expected.append(raw.astype(np.float32) * slope + intercept)
        if k in skip:
            continue
        ds = copy.deepcopy(src)
        ds.SeriesInstanceUID = uid
        ds.SOPInstanceUID = generate_uid()
        ds.PixelData = raw.tobytes()
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in iop]
        ds.ImagePositionPatient = [f"{v:.4f}" for v in origin + k * step * normal]
        ds.InstanceNumber = n - k  # reversed: must not decide the order
        if manufacturer:
            ds.Manufacturer = manufacturer
        sub = folder / f"part{k % 3}"
        sub.mkdir(parents=True, exist_ok=True)
        ds.save_as(sub / f"img{seed}_{names[k]:03d}.dcm", enforce_file_format=True)
    return np.stack([e for k, e in enumerate(expected) if k not in skip]), uid


def _ras_dhw_axial(stack: np.ndarray) -> np.ndarray:
    # axial LPS slices (rows -> posterior, columns -> patient left) in RAS (D, H, W):
    # D = slices inferior->superior, H = rows, W = columns reversed (left->right)
    return stack[:, :, ::-1]


def test_ct_series_is_one_volume_in_hu_ordered_by_position(tmp_path):
    expected, uid = _write_series(tmp_path / "ct", n=6, step=2.5)
    data = load_data(tmp_path / "ct")
    assert len(data) == 1 and data.kind == "dicom"
    assert data.sample_shape == (1, 6, 128, 128)
    vol = data.dataset[0].numpy()
    assert vol.dtype == np.float32
    np.testing.assert_array_equal(vol[0], _ras_dhw_axial(expected))
    assert data.metadata["SeriesInstanceUID"].tolist() == [uid]
    assert data.metadata["orientation"].tolist() == ["RAS"]
    assert data.metadata["source_orientation"].tolist() == ["LPS"]
    np.testing.assert_allclose(data.metadata["spacing_d"], [2.5], rtol=1e-6)
    np.testing.assert_allclose(data.metadata["spacing_h"], [0.661468], rtol=1e-6)
    # as stored, without reorientation, slices still follow the position along the normal
    raw = load_data(tmp_path / "ct", orientation="LPS").dataset[0].numpy()[0]
    np.testing.assert_array_equal(raw, expected[:, ::-1, :])


def test_sagittal_mr_series_is_reoriented_to_ras(tmp_path):
    # rows run posterior, columns inferior: the slice normal points to the patient's right
    sag = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)
    expected, _ = _write_series(tmp_path / "mr", "MR_small.dcm", n=4, step=1.2, orientation=sag)
    data = load_data(tmp_path / "mr")
    assert data.metadata["source_orientation"].tolist() == ["PIR"]
    # derived by hand: RAS (D, H, W) = (superior, posterior, right) -> slice w, row 63-d, col h
    by_hand = expected.transpose(1, 2, 0)[::-1]
    np.testing.assert_array_equal(data.dataset[0].numpy()[0], by_hand)
    assert data.sample_shape == (1, 64, 64, 4)
    np.testing.assert_allclose(
        [data.metadata[k][0] for k in ("spacing_d", "spacing_h", "spacing_w")],
        [0.3125, 0.3125, 1.2],
        rtol=1e-5,
    )


def test_two_series_give_two_samples_and_slices_give_one_each(tmp_path):
    ct, ct_uid = _write_series(tmp_path / "mixed", n=4, seed=1)
    ct2, ct2_uid = _write_series(tmp_path / "mixed", n=4, step=5.0, seed=2)
    data = load_data(tmp_path / "mixed")
    assert len(data) == 2
    by_uid = dict(zip(data.metadata["SeriesInstanceUID"], range(2), strict=True))
    np.testing.assert_array_equal(data.dataset[by_uid[ct_uid]].numpy()[0], _ras_dhw_axial(ct))
    np.testing.assert_array_equal(data.dataset[by_uid[ct2_uid]].numpy()[0], _ras_dhw_axial(ct2))
    assert sorted(data.metadata["spacing_d"].tolist()) == pytest.approx([2.5, 5.0])
    slices = load_data(tmp_path / "mixed", as_slices=True)
    assert len(slices) == 8 and slices.sample_shape == (1, 128, 128)
    got = np.stack([slices.dataset[i].numpy()[0] for i in range(8)])
    first = int(np.flatnonzero(slices.metadata["SeriesInstanceUID"] == ct_uid)[0])
    np.testing.assert_array_equal(got[first : first + 4], ct)  # stored orientation, by position
    with pytest.raises(ValueError, match="slices; give D H W"):
        load_data(tmp_path / "mixed", spacing=(1, 1, 1), size=(64, 64))
    with pytest.raises(ValueError, match=r"with as_slices \(--slices\) give the 2D size"):
        load_data(tmp_path / "mixed", spacing=(1, 1, 1), as_slices=True)


def test_gap_and_mixed_orientation_are_named(tmp_path):
    expected, uid = _write_series(tmp_path / "gap", n=6, skip=(3,))
    with pytest.raises(ValueError, match=rf"series {uid}.*missing slices.*allow-irregular"):
        load_data(tmp_path / "gap")
    with pytest.warns(UserWarning, match="missing slices"):
        data = load_data(tmp_path / "gap", allow_irregular=True)
    np.testing.assert_array_equal(data.dataset[0].numpy()[0], _ras_dhw_axial(expected))
    assert "missing slices" in data.metadata["irregular"][0]

    _, uid = _write_series(tmp_path / "ori", n=3)
    loc = next((tmp_path / "ori").rglob("*.dcm"))
    ds = pydicom.dcmread(loc)
    ds.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]
    ds.save_as(loc)
    with pytest.raises(ValueError, match=rf"series {uid}.*2 slice orientations"):
        load_data(tmp_path / "ori")


def _enhanced_ct(path: Path, order: list[int], slope: float = 2.0) -> np.ndarray:
    """An enhanced (multi-frame) CT from CT_small, frames stored out of positional order."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    src = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds = copy.deepcopy(src)
    raw = np.stack([src.pixel_array.astype(np.int16) + np.int16(11 * k) for k in order])
    ds.NumberOfFrames = len(order)
    ds.PixelData = raw.tobytes()
    for tag in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"):
        del ds[tag]
    del ds.RescaleSlope, ds.RescaleIntercept
    shared = Dataset()
    ori, meas, pvt = Dataset(), Dataset(), Dataset()
    ori.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    meas.PixelSpacing = [0.5, 0.5]
    meas.SliceThickness = 3.0
    pvt.RescaleSlope, pvt.RescaleIntercept, pvt.RescaleType = slope, -1024, "HU"
    shared.PlaneOrientationSequence = Sequence([ori])
    shared.PixelMeasuresSequence = Sequence([meas])
    shared.PixelValueTransformationSequence = Sequence([pvt])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    frames = []
    for k in order:
        item, pos = Dataset(), Dataset()
        pos.ImagePositionPatient = [0, 0, 3.0 * k]
        item.PlanePositionSequence = Sequence([pos])
        frames.append(item)
    ds.PerFrameFunctionalGroupsSequence = Sequence(frames)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    by_position = raw[np.argsort(order)].astype(np.float32)
    return by_position * slope - 1024


def test_multiframe_dicom_loads_as_volumes(tmp_path):
    expected = _enhanced_ct(tmp_path / "enh" / "ct.dcm", order=[2, 0, 3, 1])
    data = load_data(tmp_path / "enh")
    assert data.sample_shape == (1, 4, 128, 128)
    np.testing.assert_array_equal(data.dataset[0].numpy()[0], _ras_dhw_axial(expected))
    np.testing.assert_allclose(
        [data.metadata[k][0] for k in ("spacing_d", "spacing_h", "spacing_w")], [3, 0.5, 0.5]
    )
    # pydicom's bundled RT dose: 15 frames placed by GridFrameOffsetVector, in Gy
    shutil.copy(get_testdata_file("rtdose.dcm"), tmp_path / "dose.dcm")
    (tmp_path / "rt").mkdir()
    shutil.move(tmp_path / "dose.dcm", tmp_path / "rt" / "dose.dcm")
    dose = load_data(tmp_path / "rt")
    ds = pydicom.dcmread(tmp_path / "rt" / "dose.dcm")
    gy = (ds.pixel_array * float(ds.DoseGridScaling)).astype(np.float32)
    assert dose.sample_shape == (1, 15, 10, 10)
    np.testing.assert_allclose(dose.dataset[0].numpy()[0], _ras_dhw_axial(gy), rtol=1e-6)
    assert dose.metadata["spacing_d"][0] == pytest.approx(5.0)


def test_unreadable_files_are_named_or_skipped(tmp_path, caplog):
    expected, _ = _write_series(tmp_path / "d", n=3)
    shutil.copy(get_testdata_file("rtplan.dcm"), tmp_path / "d" / "plan.dcm")  # no pixel data
    (tmp_path / "d" / "broken.dcm").write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match=r"broken\.dcm.*skip-unreadable"):
        load_data(tmp_path / "d")
    (tmp_path / "d" / "broken.dcm").unlink()
    with pytest.raises(ValueError, match=r"plan\.dcm has no pixel data"):
        load_data(tmp_path / "d")
    (tmp_path / "d" / "broken.dcm").write_bytes(b"\x00" * 64)
    with caplog.at_level("WARNING"):
        data = load_data(tmp_path / "d", skip_unreadable=True)
    assert len(data) == 1
    np.testing.assert_array_equal(data.dataset[0].numpy()[0], _ras_dhw_axial(expected))
    assert sorted(Path(p).name for p, _ in data.skipped) == ["broken.dcm", "plan.dcm"]
    assert "plan.dcm" in caplog.text and "broken.dcm" in caplog.text


def test_identifiers_are_hashed_unless_kept(tmp_path):
    _write_series(tmp_path / "d", n=3)
    hashed = load_data(tmp_path / "d", id_salt="site-a").metadata["PatientID"][0]
    again = load_data(tmp_path / "d", id_salt="site-a").metadata["PatientID"][0]
    other = load_data(tmp_path / "d", id_salt="site-b").metadata["PatientID"][0]
    import hashlib

    assert hashed == "sha256:" + hashlib.sha256(b"site-a\x001CT1").hexdigest()[:16]
    assert hashed == again != other
    kept = load_data(tmp_path / "d", keep_identifiers=True).metadata
    assert kept["PatientID"][0] == "1CT1"
    assert kept["Manufacturer"][0] == "GE MEDICAL SYSTEMS"
    assert kept["KVP"][0] == 120.0 and kept["SliceThickness"][0] == 5.0


# -- NIfTI: canonical orientation and spacing on the MNI152 template ----------------------------
def _mni_block() -> tuple[np.ndarray, np.ndarray]:
    nilearn_datasets = pytest.importorskip("nilearn.datasets")
    img = nilearn_datasets.load_mni152_template(resolution=1)
    data = np.asarray(img.get_fdata(), dtype=np.float32)
    c = np.asarray(data.shape) // 2
    block = data[c[0] - 40 : c[0] + 40, c[1] - 48 : c[1] + 48, c[2] - 36 : c[2] + 36]
    affine = np.asarray(img.affine).copy()
    affine[:3, 3] = affine[:3, :3] @ (c - [40, 48, 36]) + affine[:3, 3]
    return block, affine


def test_mni_nifti_flipped_2mm_comes_back_canonical_at_1mm(tmp_path):
    from scipy import ndimage

    block, affine1 = _mni_block()
    sub = block[::2, ::2, ::2]  # 2 mm voxels: (40, 48, 36)
    # stored as (S, P, L): z up first, then y flipped (towards posterior), then x flipped (left)
    stored = sub.transpose(2, 1, 0)[:, ::-1, ::-1]
    o = affine1[:3, 3]
    nz, ny, nx = stored.shape
    aff = np.zeros((4, 4))
    aff[3, 3] = 1
    aff[2, 0] = 2.0  # voxel axis 0 -> +z
    aff[1, 1] = -2.0  # voxel axis 1 -> -y
    aff[0, 2] = -2.0  # voxel axis 2 -> -x
    aff[:3, 3] = o + [2.0 * (nx - 1), 2.0 * (ny - 1), 0.0]
    (tmp_path / "nii").mkdir()
    nib.save(nib.Nifti1Image(np.ascontiguousarray(stored), aff), tmp_path / "nii" / "mni.nii.gz")

    data = load_data(tmp_path / "nii", spacing=(1, 1, 1))
    assert data.metadata["source_orientation"].tolist() == ["SPL"]
    assert data.metadata["orientation"].tolist() == ["RAS"]
    out = data.dataset[0].numpy()[0]
    assert out.shape == (2 * nz, 2 * ny, 2 * nx)
    # oracle by hand: canonical 2 mm grid starts at o (the RAS corner voxel); the 1 mm grid
    # keeps the field of view, so its voxel j sits at o + j - 0.5 mm
    out_affine = np.eye(4)
    out_affine[:3, 3] = o - 0.5
    to_input = np.linalg.inv(aff) @ out_affine
    ras = ndimage.affine_transform(
        stored.astype(np.float64),
        to_input[:3, :3],
        offset=to_input[:3, 3],
        output_shape=(2 * nx, 2 * ny, 2 * nz),
        order=1,
        mode="nearest",
    )
    oracle = ras.transpose(2, 1, 0)[:, ::-1, :]
    scale = float(np.abs(oracle).max())
    np.testing.assert_allclose(out, oracle, rtol=0, atol=1e-5 * scale)
    # and it is the template again, at 1 mm (half a voxel off, from 2 mm samples)
    original = block.transpose(2, 1, 0)[:, ::-1, :]
    assert np.corrcoef(out.ravel(), original.ravel())[0, 1] > 0.95


def test_downsampling_is_antialiased_and_size_crops(tmp_path):
    block, affine1 = _mni_block()
    block = np.ascontiguousarray(block[1:-1])  # (78, 96, 72): whole 3 mm voxels
    affine1 = affine1 @ np.array([[1, 0, 0, 1], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]])
    (tmp_path / "nii").mkdir()
    nib.save(nib.Nifti1Image(block, affine1), tmp_path / "nii" / "mni.nii.gz")
    data = load_data(tmp_path / "nii", spacing=(3, 3, 3))
    out = data.dataset[0].numpy()[0]
    assert out.shape == (24, 32, 26)
    # a 3 mm voxel should hold about the mean of the 27 1 mm voxels it covers
    ras_block = block.transpose(2, 1, 0)[:, ::-1, :]
    box = ras_block.reshape(24, 3, 32, 3, 26, 3).mean(axis=(1, 3, 5))
    from inspect_kit.data.geometry import Volume, resample_to_spacing

    plain = resample_to_spacing(Volume(block[None], affine1), (3, 3, 3), antialias=False)
    plain_dhw = plain.array[0].transpose(2, 1, 0)[:, ::-1, :]
    inner = (slice(2, -2),) * 3
    err_aa = np.abs(out - box)[inner].mean()
    err_plain = np.abs(plain_dhw - box)[inner].mean()
    assert err_aa < 0.6 * err_plain
    # size after spacing crops/pads about the centre instead of resizing
    cropped = load_data(tmp_path / "nii", spacing=(3, 3, 3), size=(20, 36, 26))
    c = cropped.dataset[0].numpy()[0]
    assert c.shape == (20, 36, 26)
    np.testing.assert_array_equal(c[:, 2:34], out[2:22])
    assert np.all(c[:, :2] == out.min())


def test_multi_sequence_nifti_and_any_channel_count(tmp_path):
    rng = np.random.default_rng(0)
    vols = {}
    for seq in ("T1", "T2", "FLAIR"):
        (tmp_path / "mri" / seq).mkdir(parents=True)
        for case in ("a", "b"):
            v = rng.normal(size=(6, 7, 5)).astype(np.float32)
            vols[seq, case] = v
            nib.save(nib.Nifti1Image(v, np.eye(4)), tmp_path / "mri" / seq / f"{case}.nii.gz")
    data = load_data(tmp_path / "mri", sequences=["T1", "T2", "FLAIR"])
    assert len(data) == 2 and data.sample_shape == (3, 5, 7, 6) and data.labels is None
    x = data.dataset[1].numpy()
    for c, seq in enumerate(("T1", "T2", "FLAIR")):
        np.testing.assert_array_equal(x[c], vols[seq, "b"].transpose(2, 1, 0)[:, ::-1, :])
    four = np.stack([vols["T1", "a"], vols["T2", "a"]], axis=-1)  # a 4D NIfTI, channels last
    (tmp_path / "4d").mkdir()
    nib.save(nib.Nifti1Image(four, np.eye(4)), tmp_path / "4d" / "a.nii.gz")
    assert load_data(tmp_path / "4d").sample_shape == (2, 5, 7, 6)
    (tmp_path / "mri" / "FLAIR" / "b.nii.gz").unlink()
    with pytest.raises(ValueError, match="b have no file in FLAIR"):
        load_data(tmp_path / "mri", sequences=["T1", "T2", "FLAIR"])
    five = load_data(tmp_path / "4d", channels=1)
    np.testing.assert_allclose(
        five.dataset[0].numpy()[0], four.mean(-1).transpose(2, 1, 0)[:, ::-1, :], rtol=1e-6
    )
    with pytest.raises(ValueError, match="2 channels; channels=4"):
        load_data(tmp_path / "4d", channels=4).dataset[0]


def test_thumbnails_keep_the_physical_aspect():
    from inspect_kit.imaging import make_thumbnails, thumbnails_from_tensor

    x = torch.zeros(1, 1, 3, 40, 8)
    x[..., 10:30, :] = 1.0  # a band: 20 rows x 8 columns
    plain = thumbnails_from_tensor(x)
    assert plain.shape == (1, 40, 8)  # 8 columns of 5 mm squeezed into 8 pixels
    thumb = thumbnails_from_tensor(x, spacing=[[1.0, 5.0]])  # rows 1 mm, columns 5 mm: 40 x 40 mm
    assert thumb.shape == (1, 40, 40)
    np.testing.assert_array_equal(thumb, make_thumbnails(x.numpy(), 64, spacing=[[1.0, 5.0]]))
    bright = thumb[0] > 127
    rows, cols = np.flatnonzero(bright.any(1)), np.flatnonzero(bright.any(0))
    assert cols.size == 40 and abs(rows.size - 20) <= 1  # 20 mm x 40 mm: wider than tall


def test_header_metadata_reaches_the_store_and_colours_an_embedding(tmp_path, capsys):
    from inspect_kit.cli import main
    from inspect_kit.store import open_store

    for i, maker in enumerate(["GE MEDICAL SYSTEMS", "SIEMENS", "GE MEDICAL SYSTEMS", "SIEMENS"]):
        _write_series(tmp_path / "cts" / f"p{i}", n=3, seed=i, manufacturer=maker)
    args = {"n_classes": 2, "widths": [4, 4], "random_state": 0, "dim": 3, "in_channels": 3}
    out = tmp_path / "s.h5"
    code = main(
        [
            "capture",
            "inspect_kit.models:SmallCNN",
            "--model-args",
            json.dumps(args),
            str(tmp_path / "cts"),
            "--out",
            str(out),
            "--layers",
            "fc",
            "--channels",
            "3",
            "--spacing",
            "2.5",
            "2",
            "2",
            "--size",
            "3",
            "32",
            "32",
            "--id-salt",
            "s",
            "-q",
        ]
    )
    assert code == 0, capsys.readouterr().err
    with open_store(out) as store:
        meta = store.metadata
        assert list(meta["Manufacturer"]) == ["GE MEDICAL SYSTEMS", "SIEMENS"] * 2
        assert all(p.startswith("sha256:") for p in meta["PatientID"])
        np.testing.assert_allclose(meta["spacing_h"], 2.0)
        assert store.thumbnails.shape[1:3] == (32, 32)
        from inspect_kit.workflows.records import read_inputs_record

        record = {**store.provenance, **read_inputs_record(store)}
        fc = store["fc"][:]
    assert record["data_options"]["spacing"] == [2.5, 2.0, 2.0]
    assert "1CT1" not in json.dumps(record, default=str)
    # the logits are the model's on 3 repeated HU channels of the resampled, cropped volume
    data = load_data(tmp_path / "cts", spacing=(2.5, 2, 2), size=(3, 32, 32), channels=3)
    from inspect_kit.models import SmallCNN

    with torch.no_grad():
        ref = SmallCNN(**args).eval()(torch.from_numpy(data.to_array())).numpy()
    np.testing.assert_allclose(fc, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())

    from inspect_kit import embed, plot_embedding

    with open_store(out) as store:
        emb = embed(store, "fc", "pca")
    fig = plot_embedding(emb, color="Manufacturer", thumbnails=False)
    groups = {t.name: len(t.x) for t in fig.data if t.name in ("GE MEDICAL SYSTEMS", "SIEMENS")}
    assert groups == {"GE MEDICAL SYSTEMS": 2, "SIEMENS": 2}


def test_cli_slices_skip_unreadable_and_irregular(tmp_path, capsys):
    from inspect_kit.cli import main
    from inspect_kit.store import open_store

    expected, uid = _write_series(tmp_path / "d", n=5, skip=(2,))
    shutil.copy(get_testdata_file("rtplan.dcm"), tmp_path / "d" / "plan.dcm")
    model = ["inspect_kit.models:SmallCNN", "--model-args", '{"n_classes": 2, "widths": [4]}']
    base = ["capture", *model, str(tmp_path / "d"), "--layers", "fc", "-q", "--size", "32", "32"]
    assert main([*base, "--out", str(tmp_path / "a.h5")]) == 1
    err = capsys.readouterr().err
    assert "plan.dcm has no pixel data" in err and "--skip-unreadable" in err
    # 2D slices, as stored, for a 2D network: the irregular series does not matter
    code = main([*base, "--out", str(tmp_path / "b.h5"), "--slices", "--skip-unreadable"])
    assert code == 0
    assert "plan.dcm" in capsys.readouterr().err  # the skipped file is listed
    with open_store(tmp_path / "b.h5") as store:
        assert len(store) == 4 and list(store.metadata["SeriesInstanceUID"]) == [uid] * 4
        from inspect_kit.workflows.records import read_inputs_record

        assert read_inputs_record(store)["skipped"][0][0].endswith("plan.dcm")
    vol = ["capture", *model[:2], '{"n_classes": 2, "widths": [4], "dim": 3}', str(tmp_path / "d")]
    vol += ["--layers", "fc", "-q", "--skip-unreadable", "--orientation", "none"]
    assert main([*vol, "--out", str(tmp_path / "c.h5")]) == 1
    assert f"series {uid}" in capsys.readouterr().err
    with pytest.warns(UserWarning, match="missing slices"):
        assert main([*vol, "--out", str(tmp_path / "c.h5"), "--allow-irregular"]) == 0
    with open_store(tmp_path / "c.h5") as store:
        assert store.metadata["orientation"][0] == "LPS" and store.metadata["n_slices"][0] == 4


def test_resizing_volumes_is_antialiased(tmp_path):
    # a one-voxel checkerboard at a third of the size: the Gaussian pre-filter leaves its mean
    # (0.5); plain trilinear sampling lands on voxel centres and returns 0s and 1s
    checker = (np.indices((18, 18, 18)).sum(axis=0) % 2).astype(np.float32)
    (tmp_path / "nii").mkdir()
    nib.save(nib.Nifti1Image(checker, np.eye(4)), tmp_path / "nii" / "c.nii.gz")
    data = load_data(tmp_path / "nii", size=(6, 6, 6))
    assert np.abs(data.dataset[0].numpy() - 0.5).max() < 0.01
    np.testing.assert_allclose(data.metadata["spacing_w"], [3.0])
