"""Anatomical plausibility of 2-D label maps: the checks a generated shape must pass, and clean-up.

A shape generator (the VAE of notebook 02) must produce anatomically valid label maps; notebook
04 keeps only the shapes that pass. The conventions and the thresholds are stated below.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

# ---------------------------------------------------------------------------------------------
# Anatomical plausibility of 2-D label maps
# ---------------------------------------------------------------------------------------------
#
# A shape generator (the VAE of notebook 02) must produce anatomically valid label maps. The checks
# below look at one 2-D slice (H, W) at a time, in the kit's label convention (see labels.py):
#
#   mri : 0 background, 1 RV cavity, 2 LV myocardium (MYO), 3 LV cavity (LV)
#   echo: 0 background, 1 LV cavity (LV), 2 LV myocardium (MYO), 3 left atrium (LA)
#
# Topology conventions (chosen so that real ACDC ground truth passes, see the figures below):
#
# - a structure's connected components are 8-connected (diagonal neighbours join);
# - a *hole* of a set is background that is sealed off from the image border: no 8-connected path
#   of pixels outside the set leads out (``binary_fill_holes(x, structure=np.ones((3, 3)))``).
#   Background that leaks out through a diagonal gap is not a hole: on real ACDC masks a single
#   pixel between the RV and the MYO that touches the outside only by a corner is common (it made
#   4 % of all slices fail with 4-connected background, 0.05 % with this rule);
# - "A touches B" means some pixel of A shares an edge with a pixel of B (A dilated by the 3x3
#   cross meets B). Corner contacts do not count: real basal/mid slices often have the LV cavity
#   meeting background by a corner through a thin wall (1.4 % of slices with 8-neighbour contact);
# - the image is padded with one pixel of background first: a structure that touches the image
#   border is "open" there (an LV cavity on the border is not enclosed).
#
# Presence and specks (``min_component_px``): a structure is *present* when it has at least
# ``min_component_px`` pixels in total. ``single_component_X`` counts every 8-connected component
# of X, however small: a 1-pixel speck next to the structure is a second component and fails it
# (that stray-pixel failure is what the check is for). A structure whose total area is 1 to
# ``min_component_px - 1`` pixels is a speck with no structure to belong to: it counts as absent
# (for ``structures_present`` and for every check that needs X) and fails ``single_component_X``.
#
# A check that does not apply because a structure it needs is absent *passes* (it is skipped), so
# a missing structure fails ``structures_present`` once, not every check that depends on it.
# An empty slice (background only) fails ``structures_present`` whatever ``require`` says.

PLAUSIBILITY_STRUCTURES = {
    "mri": {"RV": 1, "MYO": 2, "LV": 3},
    "echo": {"LV": 1, "MYO": 2, "LA": 3},
}
"""Structure name -> label value, per modality, for the plausibility checks."""

PLAUSIBILITY_CHECKS = {
    "mri": (
        "structures_present",
        "single_component_RV",
        "single_component_MYO",
        "single_component_LV",
        "no_holes_LV",
        "no_holes_MYO",
        "lv_enclosed_by_myo",
        "rv_touches_myo",
        "rv_not_touching_lv",
        "no_background_inside_heart",
        "plausible_ratios",
    ),
    "echo": (
        "structures_present",
        "single_component_LV",
        "single_component_MYO",
        "single_component_LA",
        "no_holes_LV",
        "no_holes_MYO",
        "no_holes_LA",
        "lv_enclosed_by_myo",
        "la_touches_lv",
        "no_background_inside_heart",
        "plausible_ratios",
    ),
}
"""The checks' names (the keys of :func:`plausibility_checks`, the columns of the report), per modality."""

# Default bounds. MRI ratio bounds come from the real ACDC training ground truth (100 patients, ED
# and ES frames; mid-ventricular slices = the middle third of each volume's slices with any
# foreground, 607 slices; ratios over the slices where both structures are present):
#   MYO/LV area: min 0.297, 0.5th pct 0.366, 1st 0.392, median 0.834, 99th 11.6, 99.5th 16.2,
#                max 34.5 (ED alone: 0.297 .. 2.87, 99.5th 1.97; the high tail is systole, where
#                the cavity of a hypertrophic heart nearly closes);
#   RV/LV area:  min 0.034, 0.5th pct 0.040, 1st 0.075, median 0.824, 99th 4.23, 99.5th 6.96,
#                max 14.3 (ED alone: 0.085 .. 3.93).
# -> myo_lv_ratio (0.25, 20) passes 99.5 % of those slices, rv_lv_ratio (0.025, 8) 99.7 %; each
#    bound is below the minimum / above the 99.5th percentile, so only the extreme tail (and
#    absurd shapes: a 1-pixel wall round a huge cavity, an RV 10x the LV) fails.
# Echo bounds come from the real CAMUS ground truth (issue 19): the 224x224 derived copy
# (../shared/data/CAMUS_224: 450 patients, 2CH/4CH x ED/ES, 1800 label maps), each map resized to
# the VAE's square by ``case_slices`` (64, 128, 256), then cleaned by ``postprocess_masks``: the
# copy's labels were linearly interpolated and rounded, which leaves a one-pixel seam of the label
# in between wherever two labels that are not neighbours in value meet (LV pixels along the
# myocardium's and the atrium's outer edge, MYO pixels along the mitral line), and argmax
# resampling leaves specks where three labels meet; neither is anatomy (see benchmarks/RESULTS.md
# for the rates before cleaning). Over all 1800 maps, every size (ranges: 64 .. 256):
#   MYO/LV area: min 0.461-0.471, 0.1th pct 0.473-0.483, 0.5th 0.505-0.513, 99.5th 3.25-3.31,
#                99.9th 5.20-5.44, max 6.64-7.04 (the high tail is systole: a small cavity);
#   LA/LV area:  min 0.008-0.012 (patient0301 2CH ED: its atrium is cut off by the image edge),
#                0.1th pct 0.033, 0.5th 0.063-0.065, 99.5th 2.19-2.21, 99.9th 3.07-3.20, max 3.60-3.90;
#   LV cavity's background contact (share of its edge neighbours that are background): median 0,
#                99th pct 0.020-0.058, 99.9th 0.035-0.082, max 0.070-0.135 (the LA covers the mitral
#                opening, which is 0.05-0.23 of the cavity's edge; a missing lateral wall gives ~0.4);
#   smallest structure: LA 12 px, LV 54 px, MYO 81 px at 64x64 (min_component_px 3 stays a speck size).
# -> la_lv_ratio (0.02, 4.5), max_lv_background_fraction 0.15, myo_lv_ratio upper 8.0: each beyond
#    the extreme of the 1800 maps (but the one cut-off atrium). myo_lv_ratio lower 0.2, not the
#    0.4 the real maps alone allow: the built-in phantom-echo draws thinner walls (MYO/LV min 0.236,
#    5th pct 0.30 on 400 images) and its labels must stay valid; 0.2 still rejects a wall one pixel
#    thick (0.17 round the cavity of tests/test_shapes_anatomy.py; the phantom's bounds let it pass).
#    The checks fail only absurd shapes: such a wall, an atrium a fiftieth of the cavity or detached
#    from it, a cavity open to the background (a missing lateral wall gives ~0.4, a missing atrium
#    ~0.2). All checks together pass 99.9 % (64), 99.8 % (128), 99.6 % (256) of the cleaned maps and
#    99.6 % of the uncleaned maps at 64; what still fails is la_touches_lv where the copy's rounding
#    drew a myocardium seam all along the mitral line (0.2-0.3 %).
# ``benchmarks/echo_plausibility.py`` re-measures all of this
# (``plausibility_report(..., details=True)`` returns the measures).
PLAUSIBILITY_DEFAULTS = {
    "mri": {
        "require": ("RV", "MYO", "LV"),
        "min_component_px": 3,
        "myo_lv_ratio": (0.25, 20.0),
        "rv_lv_ratio": (0.025, 8.0),
    },
    "echo": {
        "require": ("LV", "MYO", "LA"),
        "min_component_px": 3,
        "myo_lv_ratio": (0.2, 8.0),
        "la_lv_ratio": (0.02, 4.5),
        "max_lv_background_fraction": 0.15,
    },
}
"""Default keyword values of the checks (see :func:`plausibility_checks` for what each means)."""

_PLANE8 = np.zeros((3, 3, 3), bool)
_PLANE8[1] = True  # 8-connectivity within a slice, none across the slices of a batch
_CHUNK_PX = 1 << 22  # pixels per processing chunk (about 4 M: a few tens of MB of temporaries)


def _plausibility_options(modality: str, bounds: dict[str, Any]) -> dict[str, Any]:
    if modality not in PLAUSIBILITY_DEFAULTS:
        raise ValueError(f"modality must be one of {tuple(PLAUSIBILITY_DEFAULTS)}, not {modality!r}")
    opts = dict(PLAUSIBILITY_DEFAULTS[modality])
    unknown = sorted(set(bounds) - set(opts))
    if unknown:
        raise TypeError(f"unknown {modality} plausibility option(s) {unknown}; the options are {sorted(opts)}")
    opts.update(bounds)
    require = (opts["require"],) if isinstance(opts["require"], str) else tuple(opts["require"])
    names = PLAUSIBILITY_STRUCTURES[modality]
    bad = [s for s in require if s not in names]
    if bad:
        raise ValueError(f"require={require!r}: {bad} not among the {modality} structures {tuple(names)}")
    opts["require"] = require
    if int(opts["min_component_px"]) < 1:
        raise ValueError("min_component_px must be at least 1")
    for key, value in opts.items():
        if key.endswith("_ratio") and not (len(value) == 2 and value[0] <= value[1]):
            raise ValueError(f"{key} must be a (low, high) pair with low <= high, not {value!r}")
    return opts


def _as_masks(masks: np.ndarray, ndim: int) -> np.ndarray:
    arr = np.asarray(masks)
    if arr.ndim != ndim:
        shape = "(H, W)" if ndim == 2 else "(N, H, W)"
        raise ValueError(f"expected label map(s) of shape {shape}, got shape {arr.shape}")
    if arr.dtype.kind not in "uib":
        if not np.array_equal(arr, np.round(arr)):
            raise ValueError("label maps must hold integer class indices 0..3, got non-integer values")
    if arr.size and (arr.min() < 0 or arr.max() > 3):
        raise ValueError(f"label values must be in 0..3 (the kit's convention), got {int(arr.min())}..{int(arr.max())}")
    return arr.astype(np.uint8, copy=False)


def _chunks(n: int, hw: int):
    step = max(1, _CHUNK_PX // max(hw, 1))
    for start in range(0, n, step):
        yield slice(start, min(n, start + step))


def _holes(binary: np.ndarray) -> np.ndarray:
    """Pixels not in ``binary`` (N, H, W, background-padded) that it seals off from the border."""
    lab, _ = ndi.label(~binary, structure=_PLANE8)
    return (lab != lab[:, :1, :1]) & ~binary  # the outside is the component of the padded corner


def _components(binary: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """8-connected components of each slice of ``binary`` (N, H, W), labelled in one call.

    Returns:
        (labels, top, sizes): the label image; ``top[i]`` the highest label in slices 0..i, so that
        slice i holds the labels ``top[i-1] + 1 .. top[i]`` (``ndimage.label`` numbers components
        in the raster order of their first pixel and a batch is scanned slice after slice;
        tests/test_shapes_anatomy.py checks this against per-slice labelling); the size of each
        label (index 0 for label 1).
    """
    lab, count = ndi.label(binary, structure=_PLANE8)
    top = np.maximum.accumulate(lab.reshape(len(lab), -1).max(axis=1, initial=0))
    sizes = np.bincount(lab[binary], minlength=count + 1)[1:]
    return lab, top, sizes


def _n_components(binary: np.ndarray) -> np.ndarray:
    """Number of 8-connected components of each slice of ``binary`` (N, H, W)."""
    lab, _ = ndi.label(binary, structure=_PLANE8)
    top = np.maximum.accumulate(lab.reshape(len(lab), -1).max(axis=1, initial=0))
    return np.diff(top, prepend=0)


def _edge_pairs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per pixel of ``b``: does it share an edge with a pixel of ``a``? (dilation of ``a`` by the
    3x3 cross, restricted to ``b``; numpy shifts, the same as ``ndimage.binary_dilation`` but
    several times faster on a batch). Arrays are (N, H, W) and background-padded."""
    d = a.copy()
    d[:, 1:] |= a[:, :-1]
    d[:, :-1] |= a[:, 1:]
    d[:, :, 1:] |= a[:, :, :-1]
    d[:, :, :-1] |= a[:, :, 1:]
    return d & b


def _touches(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per slice: does a pixel of ``a`` share an edge with a pixel of ``b``?"""
    return _edge_pairs(a, b).any(axis=(1, 2))


def _check_chunk(masks: np.ndarray, modality: str, opts: dict[str, Any]) -> dict[str, np.ndarray]:
    n = len(masks)
    lab = np.pad(masks, ((0, 0), (1, 1), (1, 1)))
    names = PLAUSIBILITY_STRUCTURES[modality]
    binary = {s: lab == v for s, v in names.items()}
    area = {s: b.sum(axis=(1, 2)) for s, b in binary.items()}
    present = {s: a >= opts["min_component_px"] for s, a in area.items()}
    fg = lab > 0
    out: dict[str, np.ndarray] = {}
    out["structures_present"] = fg.any(axis=(1, 2))
    for s in opts["require"]:
        out["structures_present"] &= present[s]
    ncomp = {}
    for s in names:
        ncomp[s] = _n_components(binary[s])
        out[f"single_component_{s}"] = (area[s] == 0) | (present[s] & (ncomp[s] == 1))
    LV, MYO = binary["LV"], binary["MYO"]
    lv_holes = _holes(LV)
    out["no_holes_LV"] = ~present["LV"] | ~lv_holes.any(axis=(1, 2))
    # holes of MYO ∪ LV, except those already inside the cavity (they fail no_holes_LV)
    out["no_holes_MYO"] = ~present["MYO"] | ~(_holes(MYO | LV) & ~lv_holes).any(axis=(1, 2))
    ring = _edge_pairs(LV, ~LV)  # the cavity's edge neighbours
    lv_and_myo = present["LV"] & present["MYO"]
    details = {f"area_{s}": area[s] for s in names} | {f"n_components_{s}": ncomp[s] for s in names}
    with np.errstate(divide="ignore", invalid="ignore"):
        lv_area = np.where(area["LV"] > 0, area["LV"], np.nan)
        ratios = {"myo_lv_ratio": (area["MYO"] / lv_area, lv_and_myo)}
        if modality == "mri":
            RV = binary["RV"]
            out["lv_enclosed_by_myo"] = ~lv_and_myo | ~(ring & ~MYO).any(axis=(1, 2))
            out["rv_touches_myo"] = ~(present["RV"] & present["MYO"]) | _touches(RV, MYO)
            out["rv_not_touching_lv"] = ~(present["RV"] & present["LV"]) | ~_touches(RV, LV)
            ratios["rv_lv_ratio"] = (area["RV"] / lv_area, present["RV"] & present["LV"])
        else:
            LA = binary["LA"]
            out["no_holes_LA"] = ~present["LA"] | ~_holes(LA).any(axis=(1, 2))
            ring_px = ring.sum(axis=(1, 2))
            bg_frac = (ring & ~fg).sum(axis=(1, 2)) / np.maximum(ring_px, 1)
            details["lv_background_fraction"] = bg_frac
            out["lv_enclosed_by_myo"] = ~lv_and_myo | (bg_frac <= opts["max_lv_background_fraction"])
            out["la_touches_lv"] = ~(present["LA"] & present["LV"]) | _touches(LA, LV)
            ratios["la_lv_ratio"] = (area["LA"] / lv_area, present["LA"] & present["LV"])
    out["no_background_inside_heart"] = ~_holes(fg).any(axis=(1, 2))
    ok = np.ones(n, bool)
    for key, (value, applies) in ratios.items():
        lo, hi = opts[key]
        ok &= ~applies | ((value >= lo) & (value <= hi))
        details[key] = value
    out["plausible_ratios"] = ok
    return {k: out[k] for k in PLAUSIBILITY_CHECKS[modality]} | details


def plausibility_report(masks: np.ndarray, *, modality: str = "mri", details: bool = False, **bounds) -> pd.DataFrame:
    """Run the anatomical plausibility checks on a batch of 2-D label maps.

    The work is vectorised over the batch (one ``scipy.ndimage.label`` call per structure and per
    hole test on a whole chunk of slices, with no connectivity across slices; adjacency by numpy
    shifts): 10,000 masks take about 1.6 s at 64x64 and 5 s at 128x128 on a 2-core CPU.
    See :func:`plausibility_checks` for the checks.

    Args:
        masks: integer label maps (N, H, W), values 0..3 in the modality's convention.
        modality: ``"mri"`` (0 bg, 1 RV, 2 MYO, 3 LV) or ``"echo"`` (0 bg, 1 LV, 2 MYO, 3 LA).
        details: also return the measures behind the checks: ``area_<S>``, ``n_components_<S>``
            for each structure, the ratios (``myo_lv_ratio``, ``rv_lv_ratio`` or ``la_lv_ratio``;
            NaN without an LV cavity) and, for echo, ``lv_background_fraction``.
        **bounds: the options of :func:`plausibility_checks` (``require``, ``min_component_px``,
            the ``*_ratio`` bounds, ``max_lv_background_fraction`` for echo).

    Returns:
        A DataFrame with one row per mask (index 0..N-1), one boolean column per check, in the
        order of ``PLAUSIBILITY_CHECKS[modality]``, then ``valid`` (every check passed), then the
        measures when ``details`` is set.

    Raises:
        ValueError: wrong shape, values outside 0..3, unknown modality or bad option values.
        TypeError: an unknown option name.
    """
    opts = _plausibility_options(modality, bounds)
    arr = _as_masks(masks, 3)
    n, h, w = arr.shape
    parts = [_check_chunk(arr[sl], modality, opts) for sl in _chunks(n, (h + 2) * (w + 2))]
    checks = PLAUSIBILITY_CHECKS[modality]
    if parts:
        cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    else:
        cols = {k: np.zeros(0, bool) for k in checks}
    report = pd.DataFrame({k: cols[k].astype(bool) for k in checks})
    report["valid"] = report.all(axis=1) if n else np.zeros(0, bool)
    if details and parts:
        for k in cols:
            if k not in checks:
                report[k] = cols[k]
    return report


def plausibility_checks(mask: np.ndarray, *, modality: str = "mri", **bounds) -> dict[str, bool]:
    """Anatomical plausibility checks of one 2-D label map; each value is True when the mask PASSES.

    Conventions, stated in full in the comment block above ``PLAUSIBILITY_STRUCTURES``: structures
    are 8-connected; a hole is background sealed off from the border (no 8-connected way out);
    "touches" / "next to" means sharing an edge (4-neighbours); a structure is present with at
    least ``min_component_px`` pixels. A check whose structures are absent passes (it does not
    apply), so a missing structure fails ``structures_present`` only.

    MRI checks (``modality="mri"``):

    - ``structures_present``: every structure named in ``require`` has >= ``min_component_px``
      pixels, and the slice has some foreground.
    - ``single_component_{RV,MYO,LV}``: the structure is empty, or one 8-connected component of at
      least ``min_component_px`` pixels; any extra component, even 1 pixel, fails.
    - ``no_holes_LV``: filling the holes of the LV cavity adds nothing.
    - ``no_holes_MYO``: filling the holes of MYO ∪ LV adds nothing but holes of the LV cavity
      (the cavity itself is the myocardium's expected hole; a hole inside the cavity fails
      ``no_holes_LV`` only, not both).
    - ``lv_enclosed_by_myo``: every edge neighbour of the LV cavity (its dilation by the 3x3 cross,
      minus itself) is MYO: the cavity touches neither background, nor RV, nor the image border.
    - ``rv_touches_myo``: the RV has a pixel next to MYO.
    - ``rv_not_touching_lv``: no RV pixel is next to the LV cavity.
    - ``no_background_inside_heart``: filling the holes of the union of all foreground adds nothing
      (no enclosed background island, e.g. a gap closed between RV and MYO).
    - ``plausible_ratios``: area(MYO)/area(LV) within ``myo_lv_ratio`` and area(RV)/area(LV) within
      ``rv_lv_ratio`` (each ratio checked only when both its structures are present).

    Echo checks (``modality="echo"``, CAMUS convention): ``structures_present`` (LV, MYO, LA),
    ``single_component_{LV,MYO,LA}``, ``no_holes_LV``, ``no_holes_MYO`` (MYO ∪ LV), ``no_holes_LA``,
    ``lv_enclosed_by_myo`` (the LV cavity is bounded by MYO and by the LA along the mitral plane:
    at most ``max_lv_background_fraction`` of the cavity's edge neighbours may be background, the
    image border counting as background),
    ``la_touches_lv``, ``no_background_inside_heart`` and ``plausible_ratios`` (``la_lv_ratio``,
    ``myo_lv_ratio``).

    Args:
        mask: integer label map (H, W), values 0..3 in the modality's convention.
        modality: ``"mri"`` or ``"echo"``.
        **bounds: options, defaults in ``PLAUSIBILITY_DEFAULTS[modality]``:
            ``require`` (structures that must be present, e.g. ``("MYO", "LV")`` for apical slices
            without RV, ``()`` to require nothing), ``min_component_px`` (presence threshold, see
            above), ``myo_lv_ratio``, ``rv_lv_ratio`` (MRI) / ``la_lv_ratio`` (echo) as
            ``(low, high)`` area-ratio bounds, ``max_lv_background_fraction`` (echo).

    Returns:
        ``{check name: passed}`` in the order of ``PLAUSIBILITY_CHECKS[modality]``.

    Raises:
        ValueError: wrong shape, values outside 0..3, unknown modality or bad option values.
        TypeError: an unknown option name.
    """
    arr = _as_masks(mask, 2)
    row = plausibility_report(arr[None], modality=modality, **bounds).iloc[0]
    return {k: bool(row[k]) for k in PLAUSIBILITY_CHECKS[modality]}


def plausibility_summary(report: pd.DataFrame) -> dict[str, Any]:
    """Summarise a :func:`plausibility_report`: valid fraction and per-check failure rates.

    Args:
        report: the DataFrame returned by :func:`plausibility_report` (extra columns are ignored).

    Returns:
        A JSON-ready dict: ``n_masks``, ``valid_fraction`` (share of masks passing every check)
        and ``failure_rate`` ({check: share of masks failing it}), ``None`` rates for an empty report.
    """
    checks = [c for c in report.columns if report[c].dtype == bool and c != "valid"]
    n = int(len(report))
    return {
        "n_masks": n,
        "valid_fraction": float(report["valid"].mean()) if n else None,
        "failure_rate": {c: (float(1.0 - report[c].mean()) if n else None) for c in checks},
    }


def postprocess_masks(
    masks: np.ndarray, *, modality: str = "mri", largest_component: bool = True, fill_holes: bool = True
) -> np.ndarray:
    """Clean label maps: the usual post-processing of generated shapes (never applied silently).

    Rules, in this order:

    1. ``largest_component``: for each structure keep its largest 8-connected component (ties: the
       first in raster order); the pixels of its other components become background.
    2. ``fill_holes``: (a) every pixel enclosed by the LV cavity (a hole of the LV: background or
       an island of another label) becomes LV cavity; (b) then every background pixel enclosed by
       the heart (a hole of the union of all foreground, sealed as in the checks)
       takes the label of the nearest foreground pixel (Euclidean), i.e. a hole in the myocardium
       becomes myocardium, a gap closed between RV and MYO is shared between them.

    Args:
        masks: integer label maps (N, H, W) or one (H, W), values 0..3.
        modality: ``"mri"`` (LV cavity = 3) or ``"echo"`` (LV cavity = 1).
        largest_component: apply rule 1.
        fill_holes: apply rule 2.

    Returns:
        A new uint8 array of the input's shape; the input is not modified.
    """
    if modality not in PLAUSIBILITY_STRUCTURES:
        raise ValueError(f"modality must be one of {tuple(PLAUSIBILITY_STRUCTURES)}, not {modality!r}")
    arr = np.asarray(masks)
    single = arr.ndim == 2
    arr = _as_masks(arr[None] if single else arr, 3)
    out = arr.copy()
    n, h, w = arr.shape
    lv_value = PLAUSIBILITY_STRUCTURES[modality]["LV"]
    for sl in _chunks(n, (h + 2) * (w + 2)):
        lab = np.pad(arr[sl], ((0, 0), (1, 1), (1, 1)))
        if largest_component:
            for value in (1, 2, 3):
                comp, top, sizes = _components(lab == value)
                if not len(sizes):
                    continue
                owner = np.searchsorted(top, np.arange(1, len(sizes) + 1))  # slice of each label
                # largest per slice: sort by (slice, -size, label) and keep the first of each slice
                order = np.lexsort((np.arange(len(sizes)), -sizes, owner))
                first = np.ones(len(order), bool)
                first[1:] = owner[order][1:] != owner[order][:-1]
                keep = np.zeros(len(sizes) + 1, bool)
                keep[order[first] + 1] = True
                lab[(lab == value) & ~keep[comp]] = 0
        if fill_holes:
            lab[_holes(lab == lv_value)] = lv_value
            fg = lab > 0
            holes = _holes(fg)
            if holes.any():
                for i in np.flatnonzero(holes.any(axis=(1, 2))):
                    _, (iy, ix) = ndi.distance_transform_edt(~fg[i], return_indices=True)
                    nearest = lab[i][iy, ix]
                    lab[i][holes[i]] = nearest[holes[i]]
        out[sl] = lab[:, 1:-1, 1:-1]
    return out[0] if single else out
