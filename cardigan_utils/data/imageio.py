"""Reading and writing medical image files with clear errors.

nibabel reads NIfTI and SimpleITK reads MetaImage (.mhd/.raw); every failure is turned into a
one-line DataError naming the file, instead of a traceback from deep inside the library.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np

from .case import DataError


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
    except (EOFError, OSError, zlib.error, gzip.BadGzipFile, ValueError, nib.filebasedimages.ImageFileError) as err:
        raise DataError(
            f"{path}: cannot read it as NIfTI ({type(err).__name__}: {str(err)[:80]}); "
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
    import SimpleITK as sitk  # imported here: only the legacy CAMUS release needs it

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
    import SimpleITK as sitk

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = sitk.GetImageFromArray(np.ascontiguousarray(np.asarray(data).T))
    img.SetSpacing(tuple(float(s) for s in spacing[: data.ndim]))
    sitk.WriteImage(img, str(path), useCompression=False)
