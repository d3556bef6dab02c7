"""Which files a data folder holds: image, NIfTI or DICOM files, and ``path:key`` sources.

A leaf of :mod:`inspect_kit.data`: the DICOM reader lists its folders here, and the entry
point (:func:`inspect_kit.data.formats.load_data`) decides what a folder holds here.
"""

from __future__ import annotations

from pathlib import Path

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
NIFTI_SUFFIXES = (".nii", ".nii.gz")
DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")
ARRAY_SUFFIXES = (".npz", ".h5", ".hdf5", ".hdf")


def suffix(path: Path) -> str:
    """The lower-case suffix, ``.nii.gz`` counted as one.

    Examples
    --------
    >>> suffix(Path("brain.NII.GZ"))
    '.nii.gz'
    """
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def is_dicom_file(path: Path) -> bool:
    """A DICOM suffix, or no suffix and the ``DICM`` marker at byte 128.

    Examples
    --------
    >>> is_dicom_file(Path("slice.dcm")), is_dicom_file(Path("slice.png"))
    (True, False)
    """
    if path.suffix.lower() in DICOM_SUFFIXES:
        return True
    if path.suffix:
        return False
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def kind_of(path: Path) -> str | None:
    """'images', 'nifti', 'dicom', or None for a file no folder loader reads.

    Examples
    --------
    >>> kind_of(Path("a.png")), kind_of(Path("b.nii.gz")), kind_of(Path("notes.txt"))
    ('images', 'nifti', None)
    """
    suf = suffix(path)
    if suf in IMAGE_SUFFIXES:
        return "images"
    if suf in NIFTI_SUFFIXES:
        return "nifti"
    if is_dicom_file(path):
        return "dicom"
    return None


def visible_files(folder: Path) -> list[Path]:
    """The files under ``folder``, recursively and sorted; hidden files and folders left out.

    Examples
    --------
    >>> visible_files(Path("scans/"))   # doctest: +SKIP
    [PosixPath('scans/healthy/a.png'), PosixPath('scans/tumour/b.png')]
    """
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not any(s.startswith(".") for s in p.relative_to(folder).parts)
    )


def list_folder(folder: Path) -> tuple[str, list[Path]]:
    """The kind of file a data folder holds and those files; a folder of none or of several
    kinds is refused.

    Examples
    --------
    >>> list_folder(Path("scans/"))     # doctest: +SKIP
    ('images', [PosixPath('scans/healthy/a.png'), PosixPath('scans/tumour/b.png')])
    """
    kinds: dict[str, list[Path]] = {}
    for p in visible_files(folder):
        k = kind_of(p)
        if k is not None:
            kinds.setdefault(k, []).append(p)
    if not kinds:
        raise ValueError(
            f"{folder} holds no readable files; expected images ({', '.join(IMAGE_SUFFIXES)}), "
            f"NIfTI ({', '.join(NIFTI_SUFFIXES)}) or DICOM files"
        )
    if len(kinds) > 1:
        counts = ", ".join(f"{len(v)} {k}" for k, v in kinds.items())
        raise ValueError(
            f"{folder} mixes file types ({counts}); put one kind of file in a data folder"
        )
    kind, paths = next(iter(kinds.items()))
    return kind, paths


def list_dicom_files(folder: Path) -> list[Path]:
    """The DICOM files under ``folder`` (recursively; hidden files and folders left out).

    Examples
    --------
    >>> list_dicom_files(Path("patient01/"))   # doctest: +SKIP
    [PosixPath('patient01/IM0001'), PosixPath('patient01/IM0002')]
    """
    return [p for p in visible_files(folder) if kind_of(p) == "dicom"]


def split_key(spec: str) -> tuple[Path, str | None]:
    """'file.h5:group/images' -> (Path('file.h5'), 'group/images'); 'data/' -> (Path, None).

    The split is at the colon whose left side is an existing file (HDF5 keys may hold '/'
    and ':'); a path that exists as given has no key.

    Examples
    --------
    >>> split_key("no_such.npz:x")
    (PosixPath('no_such.npz'), 'x')
    """
    if Path(spec).exists():
        return Path(spec), None
    for i in range(len(spec) - 1, 0, -1):
        if spec[i] != ":":
            continue
        head = spec[:i]
        if len(head) == 1 and head.isalpha():  # a Windows drive letter
            break
        if Path(head).is_file():
            return Path(head), spec[i + 1 :] or None
    head, sep, tail = spec.rpartition(":")
    if sep and head and not (len(head) == 1 and head.isalpha()):
        return Path(head), tail or None
    return Path(spec), None
