"""Errors for users' files: one line that names the file, then what is wrong with it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class DataFileError(ValueError):
    """A user's file that cannot be read as what it claims to be.

    The message starts with the file's path, then says what is wrong with it.

    Examples
    --------
    >>> try:                                                 # doctest: +SKIP
    ...     load_data("scans/")
    ... except DataFileError as err:
    ...     print(err)
    scans/case7.png: not a readable PNG image (Truncated File Read)
    """


def describe_error(err: BaseException, limit: int = 200) -> str:
    """One line of what a library said, without its advice to its own callers."""
    name = type(err).__name__
    if name == "InvalidDicomError":  # pydicom's text suggests force=True, which we never use
        return "no DICOM header: no 'DICM' marker and no file meta information"
    if isinstance(err, UnicodeDecodeError):
        return f"byte 0x{err.object[err.start]:02x} at position {err.start} is not UTF-8 text"
    text = " ".join(str(err).split()) or name
    return text if len(text) <= limit else text[: limit - 1] + "…"


@contextmanager
def reading_file(path: Path | str, what: str, hint: str = "") -> Iterator[None]:
    """Turn any failure to read ``path`` into one :class:`DataFileError` naming it."""
    try:
        yield
    except DataFileError:
        raise
    except Exception as err:
        raise DataFileError(
            f"{path}: not a readable {what} ({describe_error(err)}){'; ' + hint if hint else ''}"
        ) from err
