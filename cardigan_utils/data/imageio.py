"""Reading and writing medical image files with clear errors.

nibabel reads NIfTI and SimpleITK reads MetaImage (.mhd/.raw); every failure is turned into a
one-line DataError naming the file, instead of a traceback from deep inside the library.
"""

from __future__ import annotations

import gzip
import math
import re
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
import SimpleITK as sitk

from .case import DataError


_INT_RE = re.compile(r"^[+-]?\d+$")


def _typed(text: str) -> int | float | str:
    """'14' -> 14, '57.3' -> 57.3, anything else stays a string."""
    if _INT_RE.match(text):
        return int(text)
    try:
        value = float(text)
    except ValueError:
        return text
    return value if math.isfinite(value) else text


def read_cfg(path: str | Path, *, missing_hint: str = "extract the patient folder again") -> dict[str, int | float | str]:
    """Parse an ACDC ``Info.cfg`` or CAMUS ``Info_<view>.cfg`` file of ``Key: value`` lines.

    Args:
        path: the cfg file; blank lines and ``#`` comments are ignored.
        missing_hint: the fix named when the file is missing.

    Returns:
        ``{key: value}`` in file order, values typed: int, float or str.

    Raises:
        DataError: the file is missing, or a line is not ``Key: value`` or repeats a key.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found; {missing_hint}")
    data = path.read_bytes()
    # Saved by Windows editors: a byte-order mark (UTF-8, or UTF-16 from "Unicode" Notepad) and CRLF
    # line ends; both are read as plain text (splitlines takes \r\n, strip the rest).
    encoding = "utf-16" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"
    info: dict[str, int | float | str] = {}
    for number, raw in enumerate(data.decode(encoding, errors="replace").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition(":")
        key = key.strip()
        if not sep or not key or " " in key:
            raise DataError(
                f"{path}, line {number}: malformed line {line[:60]!r}; expected 'Key: value' like 'ED: 1', "
                "fix or re-extract the file"
            )
        if key in info:
            raise DataError(f"{path}, line {number}: key {key!r} appears twice; keep one line per key")
        info[key] = _typed(value.strip())
    return info


def load_nifti(path: str | Path) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    """Load a NIfTI file fully into memory.

    Args:
        path: a ``.nii`` or ``.nii.gz`` file.

    Returns:
        ``(data, affine, zooms)``: the array as stored (no reorientation), its 4x4 affine and
        the voxel sizes in mm.

    Raises:
        DataError: the file is missing, corrupt or truncated.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found; check the dataset folder and the file name")
    try:
        img = nib.load(str(path))
        data = np.asanyarray(img.dataobj)
    except (EOFError, OSError, zlib.error, gzip.BadGzipFile, ValueError, nib.filebasedimages.ImageFileError,
            nib.spatialimages.HeaderDataError, nib.spatialimages.ImageDataError) as err:
        detail = " ".join(str(err).split())[:80]
        raise DataError(
            f"{path}: cannot read it as NIfTI ({type(err).__name__}: {detail}); "
            "the file is corrupt or truncated, download or extract it again"
        ) from None
    zooms = tuple(float(z) for z in img.header.get_zooms())
    return data, img.affine, zooms


def load_mhd(path: str | Path) -> tuple[np.ndarray, tuple[float, ...]]:
    """Load a MetaImage (``.mhd`` + ``.raw``) file with SimpleITK.

    Args:
        path: the ``.mhd`` header file.

    Returns:
        ``(data, spacing)``: the array in (x, y[, z]) order, like nibabel's, and the spacing in mm.

    Raises:
        DataError: the header or its raw data is missing, corrupt or truncated.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found; check the dataset folder and the file name")
    try:
        img = sitk.ReadImage(str(path))
    except RuntimeError as err:
        first = str(err).strip().splitlines()[-1][:100] if str(err).strip() else ""
        raise DataError(
            f"{path}: cannot read it as MetaImage ({first}); the .mhd or its .raw is corrupt, "
            "truncated or missing, extract it again"
        ) from None
    # SimpleITK arrays are (z, y, x); transpose to nibabel's (x, y, z).
    data = sitk.GetArrayFromImage(img).T
    return data, tuple(float(s) for s in img.GetSpacing())


def save_nifti(path: str | Path, data: np.ndarray, spacing: tuple[float, ...]) -> None:
    """Write ``data`` as NIfTI with a diagonal affine of ``spacing`` (mm).

    Args:
        path: destination, ``.nii.gz`` to compress.
        data: the array; its dtype is kept.
        spacing: voxel sizes, one per axis of ``data`` (at most 3 used in the affine).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    affine = np.diag(list(spacing[:3]) + [1.0] * (4 - min(3, len(spacing))))
    img = nib.Nifti1Image(np.asarray(data), affine)
    img.header.set_zooms(tuple(spacing[: data.ndim]))
    nib.save(img, str(path))


def save_mhd(path: str | Path, data: np.ndarray, spacing: tuple[float, ...]) -> None:
    """Write ``data`` (x, y[, z] order) as MetaImage ``.mhd`` + ``.raw``.

    Args:
        path: the ``.mhd`` destination.
        data: the array.
        spacing: voxel sizes in mm, one per axis.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = sitk.GetImageFromArray(np.ascontiguousarray(np.asarray(data).T))
    img.SetSpacing(tuple(float(s) for s in spacing[: data.ndim]))
    sitk.WriteImage(img, str(path), useCompression=False)
