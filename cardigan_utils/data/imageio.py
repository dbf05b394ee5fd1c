"""Reading and writing medical image files: one checked reader, clear errors.

:func:`read_image` is the one way the kit reads an image or label file: the dataset readers
(ACDC, CAMUS), ``cardigan segment`` and ``cardigan evaluate`` all go through it. nibabel reads
NIfTI and SimpleITK reads MetaImage (.mhd/.raw), but only after the header, read by the kit
itself, has passed the checks that keep a bad file from going in silently or from asking for
more memory than the machine has:

- dimensions: 2-D or 3-D (4-D where a reader expects a cine), no axis of length 0;
- size: at most :data:`MAX_VOXELS` voxels;
- spacing: finite and within :data:`SPACING_RANGE_MM` (nibabel would turn a pixdim of 0 into
  1 mm and a negative one into its absolute value, with only a log line: here it is an error);
- MetaImage: the ``.raw`` holds exactly DimSize x element size x channels bytes (a larger or
  smaller one would be read sheared or fail deep inside ITK);

and after reading: every value finite; a label map integer-valued. Every failure is a one-line
:class:`~cardigan_utils.data.case.DataError` naming the file, what is wrong and what to do.
"""

from __future__ import annotations

import gzip
import math
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import nibabel as nib
import numpy as np
import SimpleITK as sitk

from nibabel.openers import ImageOpener

from .case import DataError, check_image

MAX_VOXELS = 512 * 2**20
"""The most voxels a file may announce (512 M, 2 GiB as float32). The largest cardiac volumes are
CT at about 512 x 512 x 700 = 180 M voxels and 4-D cines at 256 x 256 x 20 x 30 = 40 M; reading
and slicing hold a few float copies, so beyond this a laptop runs out of memory. A header that
announces more is damaged (or not a cardiac image) and is refused before any data is read."""

SPACING_RANGE_MM = (0.01, 100.0)
"""Plausible voxel size per axis in mm. The finest clinical images (echo, CT) have about 0.1 mm
pixels and the thickest MRI slices about 10 mm (with gaps, 20 mm); the bounds leave a factor of 10
on either side. Outside them the header is damaged or in the wrong unit (metres, micrometres),
and slicing at such a spacing would resample to absurd sizes. The upper bound is not applied to
an axis of one voxel: nnU-Net writes 999 mm on the singleton axis of a 2-D slice."""

IMAGE_SUFFIXES = (".nii.gz", ".nii", ".mhd")
"""The file types :func:`read_image` reads."""

_MET_BYTES = {
    "MET_CHAR": 1, "MET_UCHAR": 1, "MET_SHORT": 2, "MET_USHORT": 2, "MET_INT": 4, "MET_UINT": 4,
    "MET_LONG": 4, "MET_ULONG": 4, "MET_LONG_LONG": 8, "MET_ULONG_LONG": 8, "MET_FLOAT": 4, "MET_DOUBLE": 8,
}
"""Bytes per element of the MetaImage element types (as ITK writes them)."""

_MHD_HEADER_MAX_BYTES = 1 << 20
"""A MetaImage header is a few hundred bytes of text; ElementDataFile must come within this."""

_NIFTI_HEADER_SIZES = {348: nib.Nifti1Header, 540: nib.Nifti2Header}

_LABEL_TOLERANCE = 1e-3
"""How far a stored label value may be from an integer (float labels scaled by scl_slope carry
rounding noise); the readers round them."""


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


@dataclass(frozen=True)
class ImageFile:
    """An image or label file as :func:`read_image` read it.

    Attributes:
        path: the file.
        data: the array as stored, in nibabel's (x, y[, z[, t]]) order for both formats; trailing
            axes of length 1 beyond the third are dropped.
        spacing: voxel size in mm of the spatial axes (at most 3), checked.
        affine: NIfTI: the 4x4 voxel-to-world affine; MetaImage: None.
        header: NIfTI: the nibabel header (copied into files written like this one); else None.
        origin: MetaImage: the ITK origin; else None.
        direction: MetaImage: the ITK direction cosines (row-major); else None.
    """

    path: Path
    data: np.ndarray
    spacing: tuple[float, ...]
    affine: np.ndarray | None = None
    header: nib.Nifti1Header | None = None
    origin: tuple[float, ...] | None = None
    direction: tuple[float, ...] | None = None


def _shape_text(shape: Sequence[int]) -> str:
    return " x ".join(str(int(s)) for s in shape)


def _trimmed(shape: Sequence[int]) -> tuple[int, ...]:
    """``shape`` without trailing axes of length 1 beyond the third ((X, Y, Z, 1) is 3-D)."""
    shape = tuple(int(s) for s in shape)
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    return shape


def check_shape(shape: Sequence[int], *, ndims: Sequence[int], source: str) -> tuple[int, ...]:
    """Refuse a shape of the wrong dimensionality, with an empty axis, or too large to read.

    Args:
        shape: the shape a header announces.
        ndims: the accepted numbers of axes, e.g. ``(2, 3)``; trailing axes of length 1 beyond the
            third do not count.
        source: the file, named in the message.

    Returns:
        The shape with those trailing axes dropped.

    Raises:
        DataError: another number of axes, an axis of length 0, or more than :data:`MAX_VOXELS`.
    """
    shape = _trimmed(shape)
    expected = " or ".join(f"{n}-D" for n in ndims)
    if len(shape) not in ndims:
        raise DataError(
            f"{source}: a {len(shape)}-D image of shape {_shape_text(shape)}; expected {expected}: "
            "give one frame (not a sequence or a multi-channel file), or split the file into frames"
        )
    if min(shape) < 1:
        raise DataError(f"{source}: the header announces shape {_shape_text(shape)}, with an empty axis; "
                        "the file is damaged, export or extract it again")
    voxels = math.prod(shape)
    if voxels > MAX_VOXELS:
        raise DataError(
            f"{source}: the header announces {_shape_text(shape)} = {voxels:,} voxels ({voxels * 4 / 2**30:,.1f} GiB "
            f"as float32), over the limit of {MAX_VOXELS:,} voxels ({MAX_VOXELS * 4 / 2**30:.0f} GiB); no cardiac "
            "image is that large: the header is damaged or this is not a cardiac image, export or extract it again"
        )
    return shape


def check_spacing(spacing: Sequence[float], *, shape: Sequence[int], source: str,
                  fix: str = "write the true voxel size into the header (NIfTI pixdim, MetaImage ElementSpacing)"
                  ) -> tuple[float, ...]:
    """Refuse a voxel size that is not a plausible size in mm (:data:`SPACING_RANGE_MM`).

    Args:
        spacing: mm per axis, one per spatial axis.
        shape: the image's shape (the upper bound is not applied to an axis of length 1).
        source: the file or case, named in the message.
        fix: what to do, said in the message.

    Returns:
        The spacing as floats.

    Raises:
        DataError: a value not finite, zero or negative, or outside the range (the first one named).
    """
    low, high = SPACING_RANGE_MM
    values = tuple(float(s) for s in spacing)
    for axis, (value, size) in enumerate(zip(values, shape)):
        if not math.isfinite(value):
            reason = "is not a number"
        elif value <= 0:
            reason = "is zero" if value == 0 else "is negative"
        elif value < low:
            reason = f"is below {low:g} mm"
        elif value > high and size > 1:
            reason = f"is above {high:g} mm"
        else:
            continue
        shown = ", ".join(f"{v:g}" for v in values)
        raise DataError(
            f"{source}: voxel size ({shown}) mm: axis {axis} {reason}, medical images have {low:g} to {high:g} mm "
            f"per voxel; {fix}, the kit does not guess it"
        )
    return values


def read_image(path: str | Path, *, ndims: Sequence[int] = (2, 3), labels: bool = False) -> ImageFile:
    """Read a NIfTI (``.nii``, ``.nii.gz``) or MetaImage (``.mhd`` + ``.raw``) file, checked.

    The header is read and checked first (dimensions, size, spacing, data type; for MetaImage
    the size of the ``.raw``), so that a damaged header is refused before anything is allocated;
    then the data is read and its values are checked.

    Args:
        path: the file.
        ndims: the accepted numbers of axes (``(3,)`` for an ACDC frame, ``(4,)`` for a cine);
            trailing axes of length 1 beyond the third do not count and are dropped.
        labels: the file is a label map: its values must be integers (not only finite).

    Returns:
        An :class:`ImageFile`.

    Raises:
        DataError: the file is missing, of an unknown type, corrupt or truncated; its header
            announces another dimensionality, an empty axis, more than :data:`MAX_VOXELS` voxels,
            an implausible voxel size or a non-numeric type; a ``.raw`` of the wrong size; NaN or
            infinite values; a label map with non-integer values.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found; check the dataset folder and the file name")
    if path.name.endswith((".nii", ".nii.gz")):
        image = _read_nifti(path, ndims=ndims)
    elif path.name.endswith(".mhd"):
        image = _read_mhd(path, ndims=ndims)
    else:
        raise DataError(f"{path}: not a NIfTI (.nii, .nii.gz) or MetaImage (.mhd) file; convert it to one of those")
    if labels:
        _check_label_values(image.data, source=str(path))
    else:
        check_image(image.data, source=str(path), allow_constant=True)
    return image


def _check_label_values(data: np.ndarray, *, source: str) -> None:
    """Refuse a label map with NaN, infinite or non-integer values."""
    if np.issubdtype(data.dtype, np.integer) or data.dtype == bool:
        return
    values = np.asarray(data, dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        raise DataError(f"{source}: label map has NaN or infinite values in {int(bad.sum()):,} voxels; "
                        "a ground-truth file holds the labels 0, 1, 2, 3, export it again")
    fraction = np.abs(values - np.round(values)) > _LABEL_TOLERANCE
    if fraction.any():
        example = float(values[fraction].flat[0])
        raise DataError(
            f"{source}: ground truth has non-integer values ({int(fraction.sum()):,} voxels, e.g. {example:g}): its "
            "label values are not integers; is this an image instead of a _gt file? Give the label map (0, 1, 2, 3)"
        )


def _nifti_error(path: Path, err: Exception) -> DataError:
    detail = " ".join(str(err).split())[:80]
    return DataError(
        f"{path}: cannot read it as NIfTI ({type(err).__name__}: {detail}); "
        "the file is corrupt or truncated, download or extract it again"
    )


_NIFTI_ERRORS = (EOFError, OSError, KeyError, zlib.error, gzip.BadGzipFile, ValueError,
                 nib.filebasedimages.ImageFileError, nib.spatialimages.HeaderDataError, nib.spatialimages.ImageDataError)
"""What nibabel raises on a corrupt or truncated file (KeyError: an unknown datatype code)."""


def _nifti_header(path: Path) -> nib.Nifti1Header:
    """The header as stored: nibabel's own loading would 'fix' a bad pixdim with only a log line."""
    try:
        with ImageOpener(str(path)) as f:
            first = f.read(4)
            sizes = {int(np.frombuffer(first, order + "i4")[0]) for order in "<>"} if len(first) == 4 else set()
            klass = next((_NIFTI_HEADER_SIZES[s] for s in sizes if s in _NIFTI_HEADER_SIZES), None)
            if klass is None:
                raise ValueError("the first 4 bytes are not a NIfTI header size (348 or 540)")
            f.seek(0)
            return klass.from_fileobj(f, check=False)
    except _NIFTI_ERRORS as err:
        raise _nifti_error(path, err) from None


def _read_nifti(path: Path, *, ndims: Sequence[int]) -> ImageFile:
    header = _nifti_header(path)
    try:
        stored = header.get_data_shape()
        dtype = header.get_data_dtype()
    except _NIFTI_ERRORS as err:
        raise _nifti_error(path, err) from None
    shape = check_shape(stored, ndims=ndims, source=str(path))
    if dtype.kind not in "biuf":
        raise DataError(f"{path}: voxels of type {dtype} (colour or complex); the kit reads grey-scale images and "
                        "label maps, convert it to one channel of numbers")
    spatial = shape[:3]
    spacing = check_spacing(np.asarray(header["pixdim"][1 : 1 + len(spatial)], dtype=np.float64), shape=spatial,
                            source=str(path), fix="write the true voxel size into the header (NIfTI pixdim)")
    bad_codes = [f"{name}={int(header[name])}" for name in ("qform_code", "sform_code")
                 if int(header[name]) not in nib.nifti1.xform_codes.value_set()]
    if bad_codes:
        raise DataError(f"{path}: header has an unknown orientation code ({', '.join(bad_codes)}); the header is "
                        "damaged, export the file again")
    if not path.name.endswith(".gz"):
        expected = int(header.get_data_offset()) + math.prod(stored) * dtype.itemsize
        actual = path.stat().st_size
        if actual != expected:
            raise DataError(
                f"{path}: {actual:,} bytes, but its header announces {_shape_text(stored)} voxels of {dtype} from byte "
                f"{int(header.get_data_offset())}, {expected:,} bytes; the header does not describe the data (it would "
                "be read truncated or sheared), export or extract the file again"
            )
    try:
        img = nib.load(str(path))
        data = np.asanyarray(img.dataobj)
    except _NIFTI_ERRORS as err:
        raise _nifti_error(path, err) from None
    affine = np.asarray(img.affine, dtype=np.float64)
    if not np.isfinite(affine).all():
        raise DataError(f"{path}: the header's affine (qform/sform) has NaN or infinite values; the orientation is "
                        "damaged, export the file again")
    return ImageFile(path=path, data=data.reshape(shape), spacing=spacing, affine=affine, header=img.header)


def _mhd_header(path: Path) -> tuple[dict[str, str], int]:
    """The ``Key = Value`` lines of a MetaImage header up to ``ElementDataFile`` (its last key), and
    the byte after that line (where the data of ``ElementDataFile = LOCAL`` start)."""
    try:
        with open(path, "rb") as f:
            head = f.read(_MHD_HEADER_MAX_BYTES)
    except OSError as err:
        raise DataError(f"{path}: cannot read it ({err.strerror}); check its permissions") from None
    header: dict[str, str] = {}
    offset = 0
    for raw in head.splitlines(keepends=True):
        offset += len(raw)
        key, sep, value = raw.decode("latin-1").partition("=")
        if sep:
            header[key.strip()] = value.strip()
        if key.strip() == "ElementDataFile":
            return header, offset
    raise DataError(f"{path}: not a MetaImage header (no 'ElementDataFile = ...' line); the .mhd is damaged or "
                    "not an image header, extract it again")


def _mhd_numbers(header: dict[str, str], key: str, kind: type, path: Path) -> list:
    try:
        return [kind(v) for v in header.get(key, "").split()]
    except ValueError:
        raise DataError(f"{path}: {key} = {header[key]!r} is not a list of numbers; the header is damaged, "
                        "extract it again") from None


def _check_mhd(path: Path, *, ndims: Sequence[int]) -> tuple[int, ...]:
    """Check a MetaImage header and the size of its data file before SimpleITK reads them."""
    header, data_offset = _mhd_header(path)
    dims = _mhd_numbers(header, "DimSize", int, path)
    n_dims = _mhd_numbers(header, "NDims", int, path)
    if not dims or (n_dims and n_dims[0] != len(dims)):
        raise DataError(f"{path}: DimSize = {header.get('DimSize', '')!r} does not give NDims = "
                        f"{header.get('NDims', '?')} sizes; the header is damaged, extract it again")
    shape = check_shape(dims, ndims=ndims, source=str(path))
    spacing = _mhd_numbers(header, "ElementSpacing", float, path) or _mhd_numbers(header, "ElementSize", float, path)
    if len(spacing) < len(dims):
        raise DataError(f"{path}: no voxel size for each of the {len(dims)} axes (ElementSpacing = "
                        f"{header.get('ElementSpacing', 'missing')}); write the true one into the header, "
                        "the kit does not guess it")
    check_spacing(spacing[: min(3, len(dims))], shape=dims[:3], source=str(path),
                  fix="write the true voxel size into the header (ElementSpacing)")
    element = header.get("ElementType", "")
    if element not in _MET_BYTES:
        raise DataError(f"{path}: ElementType = {element!r} is not one of {', '.join(_MET_BYTES)}; "
                        "convert the image to numbers of one of those types")
    channels = (_mhd_numbers(header, "ElementNumberOfChannels", int, path) or [1])[0]
    if channels != 1:
        raise DataError(f"{path}: {channels} channels per voxel (ElementNumberOfChannels); the kit reads grey-scale "
                        "images and label maps, convert it to one channel")
    _check_mhd_data(path, header, dims=dims, element=element, data_offset=data_offset)
    return shape


def _check_mhd_data(path: Path, header: dict[str, str], *, dims: list[int], element: str, data_offset: int) -> None:
    """Refuse a data file that is missing, or larger or smaller than the header announces."""
    data_file = header["ElementDataFile"]
    if data_file.startswith("LIST") or "%" in data_file:
        return  # one file per slice: SimpleITK checks each
    raw = path if data_file == "LOCAL" else path.parent / data_file
    if not raw.is_file():
        raise DataError(f"{raw}: raw data file of {path.name} not found; copy the .raw next to its .mhd "
                        "(extract the patient folder again)")
    if header.get("CompressedData", "False").lower() == "true":
        return  # the compressed size says nothing about the shape; zlib reports a damaged stream
    expected = math.prod(dims) * _MET_BYTES[element]
    actual = raw.stat().st_size
    skip = (_mhd_numbers(header, "HeaderSize", int, path) or [0])[0]
    if data_file == "LOCAL":
        actual -= data_offset
    elif skip > 0:
        actual -= skip
    announced = f"{expected} bytes that {path.name} announces: DimSize {_shape_text(dims)} of {element}"
    if actual < expected:
        raise DataError(f"{raw}: truncated raw data ({actual} of {announced}); extract the files again")
    if actual > expected and skip != -1:  # HeaderSize = -1: the data are the last bytes of the file
        raise DataError(
            f"{raw}: {actual} bytes of raw data, more than the {announced}; the header does not describe the "
            "data (it would be read sheared): fix DimSize / ElementType, or extract the files again"
        )


def _read_mhd(path: Path, *, ndims: Sequence[int]) -> ImageFile:
    shape = _check_mhd(path, ndims=ndims)
    try:
        img = sitk.ReadImage(str(path))
    except RuntimeError as err:
        first = str(err).strip().splitlines()[-1][:100] if str(err).strip() else ""
        raise DataError(
            f"{path}: cannot read it as MetaImage ({first}); the .mhd or its .raw is corrupt, "
            "truncated or missing, extract it again"
        ) from None
    # SimpleITK arrays are (z, y, x); transpose to nibabel's (x, y, z).
    data = sitk.GetArrayFromImage(img).T.reshape(shape)
    origin, direction = tuple(img.GetOrigin()), tuple(img.GetDirection())
    if not np.isfinite(origin).all() or not np.isfinite(direction).all():
        raise DataError(f"{path}: Offset or TransformMatrix has NaN or infinite values; the header is damaged, "
                        "extract it again")
    spacing = tuple(float(s) for s in img.GetSpacing())[: min(3, len(shape))]
    return ImageFile(path=path, data=data, spacing=spacing, origin=origin, direction=direction)


def load_nifti(path: str | Path, *, ndims: Sequence[int] = (2, 3, 4),
               labels: bool = False) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    """Load a NIfTI file fully into memory, checked by :func:`read_image`.

    Args:
        path: a ``.nii`` or ``.nii.gz`` file.
        ndims: the accepted numbers of axes.
        labels: the file is a label map (integer values).

    Returns:
        ``(data, affine, zooms)``: the array as stored (no reorientation), its 4x4 affine and
        the voxel sizes in mm of its spatial axes.

    Raises:
        DataError: everything :func:`read_image` refuses, or not a NIfTI file.
    """
    if not Path(path).name.endswith((".nii", ".nii.gz")):
        raise DataError(f"{path}: not a NIfTI file (.nii, .nii.gz); convert it to NIfTI")
    image = read_image(path, ndims=ndims, labels=labels)
    return image.data, image.affine, image.spacing


def load_mhd(path: str | Path, *, ndims: Sequence[int] = (2, 3, 4),
             labels: bool = False) -> tuple[np.ndarray, tuple[float, ...]]:
    """Load a MetaImage (``.mhd`` + ``.raw``) file, checked by :func:`read_image`.

    Args:
        path: the ``.mhd`` header file.
        ndims: the accepted numbers of axes.
        labels: the file is a label map (integer values).

    Returns:
        ``(data, spacing)``: the array in (x, y[, z]) order, like nibabel's, and the spacing in mm.

    Raises:
        DataError: everything :func:`read_image` refuses, or not a ``.mhd`` file.
    """
    if not Path(path).name.endswith(".mhd"):
        raise DataError(f"{path}: not a MetaImage header (.mhd); give the .mhd, not its .raw")
    image = read_image(path, ndims=ndims, labels=labels)
    return image.data, image.spacing


def save_like(path: str | Path, data: np.ndarray, *, like: ImageFile) -> None:
    """Write ``data`` as NIfTI in the geometry of another file (a prediction over its image).

    Args:
        path: destination, ``.nii.gz`` to compress.
        data: an array of ``like``'s shape; its dtype is kept.
        like: the file whose geometry is copied: a NIfTI's header and affine, or a MetaImage's
            spacing, origin and direction.
    """
    data = np.asarray(data).reshape(like.data.shape)
    if like.header is not None:
        header = like.header.copy()
        header.set_data_dtype(data.dtype)
        klass = nib.Nifti2Image if isinstance(header, nib.Nifti2Header) else nib.Nifti1Image
        nib.save(klass(data, like.affine, header), str(path))
        return
    img = sitk.GetImageFromArray(np.ascontiguousarray(data.T))
    img.SetSpacing(tuple(like.spacing) + (1.0,) * (data.ndim - len(like.spacing)))
    img.SetOrigin(like.origin)
    img.SetDirection(like.direction)
    sitk.WriteImage(img, str(path), useCompression=True)


def save_nifti(path: str | Path, data: np.ndarray, spacing: tuple[float, ...], *,
               affine: np.ndarray | None = None) -> None:
    """Write ``data`` as NIfTI with a diagonal affine of ``spacing`` (mm), or the affine given.

    Args:
        path: destination, ``.nii.gz`` to compress.
        data: the array; its dtype is kept.
        spacing: voxel sizes, one per axis of ``data`` (at most 3 used in the affine).
        affine: a 4x4 voxel-to-world matrix (the source file's, so a prediction overlays it);
            None: the diagonal of ``spacing``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if affine is None:
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


def is_placeholder_spacing(spacing: Sequence[float]) -> bool:
    """Whether an echo frame's in-plane spacing is the 1.0 mm a header holds when none was written.

    The official CAMUS releases store the true spacing (about 0.15-0.3 mm a pixel), never exactly
    1.0 x 1.0 mm; derived copies that resized the frames anisotropically (CAMUS_224, cardiGAN's
    256x256 file) leave the NIfTI / ITK default of 1.0. Applied to echo frames only: an MR image
    may truly have 1.0 mm pixels.

    Args:
        spacing: (sx, sy[, ...]) from the header.

    Returns:
        True when both in-plane values are exactly 1.0.
    """
    return float(spacing[0]) == 1.0 and float(spacing[1]) == 1.0
