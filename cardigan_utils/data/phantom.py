"""Built-in procedural cardiac phantoms: short-axis cine-MRI and apical 2CH/4CH echocardiography.

The phantoms are the kit's embedded default dataset: every notebook and test runs offline on them.
They are built to make the study meaningful, not to be toys:

- **Anatomy** (MRI): a left ventricle whose endocardium and wall thickness are low-order Fourier
  perturbations of a bullet-shaped profile along the long axis, a crescent right ventricle that
  wraps the septum on one side, papillary muscles and trabeculations inside the LV cavity (dark in
  the image, labelled LV cavity like the ACDC ground truth), end-diastole and end-systole (systole
  shrinks the cavities radially, the base descends towards the apex and the myocardium keeps its
  area, so the wall thickens), slices from base to apex (structures shrink, the RV stops before the
  apex, the cavity closes before it: no pinhole cavity or sub-pixel RV sliver is drawn) and the
  ACDC groups (NOR, DCM, HCM, MINF, RV) drawn per patient.
- **Appearance** (MRI): bright-blood SSFP contrast with surrounding anatomy (subcutaneous fat,
  chest-wall muscle, lungs with vessels above the diaphragm, liver, bowel, spleen, spine,
  descending aorta, epicardial fat, left atrium at the base), dark "India ink" lines at fat/water
  interfaces, occasional off-resonance banding, a smooth multiplicative bias field, in-plane and
  through-plane partial-volume blur and Rician noise. Images are integer-valued float32.
- **Echo**: apical 2CH/4CH views (X lateral, Y depth, the transducer at the top, y = 0) with a
  bullet-shaped LV opening on the mitral plane, the left atrium below it, right heart chambers
  (unlabelled) in 4CH, a sector scan with speckle formed in the beam's polar geometry, depth
  attenuation, near-field clutter, log compression and echo dropout on walls parallel to the beam.
  The heart is framed in the vendor's sector (the cavity, the inner wall and the atrium inside it;
  only the outer wall may leave it) and the LV and LA meet along the mitral plane with nothing
  between them.
- **Vendors**: :data:`MRI_VENDORS` and :data:`ECHO_VENDORS` differ in contrast, noise, resolution,
  bias field (MRI), speckle size, gain, sector angle and dropout (echo), so that training on one
  vendor and testing on another is a real domain shift.

Everything is deterministic per ``(seed, patient index)``: patient ``k`` is the same whatever other
patients are generated, and its anatomy does not depend on the vendor (only its appearance does,
and, for echo, the heart's position in the vendor's sector). The labels are anatomically clean
as drawn: they pass :func:`cardigan_utils.shapes.plausibility_report` (echo; MRI with
``require=("MYO",)``) at the native resolution and after slicing (tests/test_phantom.py).
No global random state is touched.

The module declares the ``phantom-mri`` and ``phantom-echo`` datasets of the registry
(``DATASETS``, at the bottom). A phantom has no folder: its source is a :class:`PhantomSet`
(which patients, seed, vendors) and its patients are :class:`PhantomPatient` records.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from ..labels import structure_names
from .case import Case, DataError
from .registry import IDENTITY_LABEL_MAP, DatasetSpec

__all__ = [
    "MRIVendor",
    "EchoVendor",
    "MRI_VENDORS",
    "ECHO_VENDORS",
    "MRI_GROUPS",
    "ECHO_GROUPS",
    "PHANTOM_DATASETS",
    "PhantomPatient",
    "PhantomSet",
    "phantom_patient_id",
    "phantom_mri_patient",
    "phantom_echo_patient",
    "phantom_cases",
    "phantom_patients",
    "list_phantom_patients",
    "read_phantom_patient",
    "phantom_example",
]

MRI_GROUPS = ("NOR", "DCM", "HCM", "MINF", "RV")
"""ACDC-like groups: normal, dilated cardiomyopathy, hypertrophic cardiomyopathy, previous
myocardial infarction, abnormal (dilated) right ventricle."""

ECHO_GROUPS = ("NOR", "DCM", "HCM", "MINF")
"""Groups of the echo phantom (the LV-centred views do not show an abnormal RV well)."""

PHANTOM_DATASETS = ("phantom-mri", "phantom-echo")


# --------------------------------------------------------------------------------------------
# Vendors
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MRIVendor:
    """Acquisition and contrast of one simulated cine-MRI scanner.

    Intensities are relative to LV blood (1.0); the final image is scaled by ``gain``.

    Attributes:
        name: short name, e.g. ``"A"``.
        spacing_mm: in-plane pixel size (slices are 10 mm thick for every vendor).
        matrices: in-plane matrix sizes (X, Y) the scanner uses; one is drawn per patient.
        gain: intensity of LV blood in the final image.
        myo: myocardium / blood.
        fat: fat / blood (subcutaneous and epicardial fat are bright in SSFP).
        liver: liver / blood.
        spleen: spleen and other abdominal organs / blood.
        muscle: skeletal muscle of the chest wall / blood.
        lung: lung parenchyma / blood.
        soft: mixed mediastinal and abdominal soft tissue / blood.
        noise: standard deviation of the complex Gaussian noise / blood (Rician magnitude).
        bias: strength of the smooth multiplicative bias field (log amplitude).
        psf_mm: sigma of the in-plane partial-volume blur in mm.
    """

    name: str
    spacing_mm: float
    matrices: tuple[tuple[int, int], ...]
    gain: float
    myo: float
    fat: float
    liver: float
    spleen: float
    muscle: float
    lung: float
    soft: float
    noise: float
    bias: float
    psf_mm: float


@dataclass(frozen=True)
class EchoVendor:
    """Acquisition and image formation of one simulated ultrasound scanner.

    Attributes:
        name: short name, e.g. ``"A"``.
        spacing_mm: isotropic pixel size of the scan-converted image.
        sector_deg: opening angle of the sector.
        depth_mm: imaging depth.
        gain_db: overall gain added before log compression.
        dynamic_range_db: displayed dynamic range.
        psf_axial_mm: axial resolution (sigma of the pulse envelope).
        psf_lateral_deg: lateral resolution as an angular sigma (beam width grows with depth).
        attenuation_db_cm: residual attenuation after time-gain compensation (one way, dB/cm).
        dropout: strength of the echo loss on walls parallel to the beam (0..1).
        blood_db: backscatter of blood relative to myocardium (dB).
        clutter_db: near-field clutter (haze) at the transducer relative to myocardium (dB).
        noise_db: electronic noise floor relative to myocardium (dB).
    """

    name: str
    spacing_mm: float
    sector_deg: float
    depth_mm: float
    gain_db: float
    dynamic_range_db: float
    psf_axial_mm: float
    psf_lateral_deg: float
    attenuation_db_cm: float
    dropout: float
    blood_db: float
    clutter_db: float
    noise_db: float


MRI_VENDORS: dict[str, MRIVendor] = {
    # 1.5 T-like: good SNR, classic SSFP contrast, ACDC-like 1.56 mm pixels
    "A": MRIVendor(
        name="A", spacing_mm=1.5625, matrices=((216, 256), (232, 256), (240, 256)), gain=280.0,
        myo=0.30, fat=1.05, liver=0.40, spleen=0.55, muscle=0.28, lung=0.07, soft=0.50,
        noise=0.028, bias=0.25, psf_mm=0.9,
    ),
    # low-contrast, noisy, strongly shaded (surface coil), fine 1.25 mm pixels
    "B": MRIVendor(
        name="B", spacing_mm=1.25, matrices=((256, 256), (240, 256), (256, 240)), gain=170.0,
        myo=0.47, fat=0.78, liver=0.56, spleen=0.64, muscle=0.42, lung=0.14, soft=0.56,
        noise=0.060, bias=0.50, psf_mm=1.0,
    ),
    # high-contrast, clean but coarse 1.8 mm pixels and blurrier
    "C": MRIVendor(
        name="C", spacing_mm=1.8, matrices=((192, 224), (208, 224), (192, 208)), gain=380.0,
        myo=0.23, fat=1.22, liver=0.34, spleen=0.48, muscle=0.21, lung=0.05, soft=0.44,
        noise=0.016, bias=0.32, psf_mm=1.6,
    ),
}
"""Simulated cine-MRI scanners, by name."""

ECHO_VENDORS: dict[str, EchoVendor] = {
    "A": EchoVendor(
        name="A", spacing_mm=0.6, sector_deg=72.0, depth_mm=155.0, gain_db=0.0,
        dynamic_range_db=54.0, psf_axial_mm=0.4, psf_lateral_deg=0.7, attenuation_db_cm=0.15,
        dropout=0.65, blood_db=-34.0, clutter_db=-14.0, noise_db=-46.0,
    ),
    # coarse speckle, low gain, strong dropout, narrow sector
    "B": EchoVendor(
        name="B", spacing_mm=0.55, sector_deg=64.0, depth_mm=150.0, gain_db=2.0,
        dynamic_range_db=46.0, psf_axial_mm=0.55, psf_lateral_deg=1.0, attenuation_db_cm=0.3,
        dropout=0.85, blood_db=-27.0, clutter_db=-10.0, noise_db=-38.0,
    ),
    # fine speckle, bright, wide sector, little dropout
    "C": EchoVendor(
        name="C", spacing_mm=0.65, sector_deg=82.0, depth_mm=165.0, gain_db=4.0,
        dynamic_range_db=62.0, psf_axial_mm=0.3, psf_lateral_deg=0.5, attenuation_db_cm=0.08,
        dropout=0.4, blood_db=-40.0, clutter_db=-19.0, noise_db=-55.0,
    ),
}
"""Simulated ultrasound scanners, by name."""


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------

_NT = 512  # samples of the angular tables
_TH = np.linspace(-np.pi, np.pi, _NT, endpoint=False)
_MODALITY_TAG = {"mri": 1, "echo": 2}


def _rng(seed: int, index: int, stream: int, modality: str) -> np.random.Generator:
    """An independent generator for one (seed, patient, purpose)."""
    return np.random.default_rng([int(seed), int(index), int(stream), _MODALITY_TAG[modality]])


def _check_args(index: int, seed: int) -> None:
    if int(index) < 0:
        raise ValueError(f"patient index must be >= 0, got {index}")
    if int(seed) < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")


def _vendor(vendor: str, table: dict, dataset: str):
    if vendor not in table:
        raise ValueError(f"unknown {dataset} vendor {vendor!r}; choose one of {sorted(table)}")
    return table[vendor]


def _rand_fourier(rng: np.random.Generator, kmax: int, amp: float, kmin: int = 1, decay: float = 1.0) -> np.ndarray:
    """Random coefficients (kmax, 2) of a Fourier series, amplitude ``amp / k**decay``."""
    k = np.arange(1, kmax + 1, dtype=float)
    c = rng.normal(0.0, 1.0, (kmax, 2)) * (amp / k**decay)[:, None]
    c[: kmin - 1] = 0.0
    return c


def _fourier(coefs: np.ndarray, th: np.ndarray) -> np.ndarray:
    """Evaluate sum_k a_k cos(k th) + b_k sin(k th)."""
    out = np.zeros_like(th, dtype=float)
    for k, (a, b) in enumerate(coefs, start=1):
        if a or b:
            out += a * np.cos(k * th) + b * np.sin(k * th)
    return out


def _wrap(a):
    """Wrap angles to [-pi, pi)."""
    return (a + np.pi) % (2 * np.pi) - np.pi


def _angle_index(theta: np.ndarray):
    """Indices and weights to interpolate an angular table at ``theta`` (radians)."""
    f = (theta + np.pi) * (_NT / (2 * np.pi))
    i0 = np.floor(f)
    w = (f - i0).astype(np.float32)
    i0 = i0.astype(np.intp) % _NT
    return i0, (i0 + 1) % _NT, w


def _gather(tables: np.ndarray, idx) -> np.ndarray:
    """Linear interpolation of stacked angular tables (K, NT) at precomputed indices."""
    i0, i1, w = idx
    return tables[:, i0] * (1.0 - w) + tables[:, i1] * w


def _soft(d: np.ndarray, width: float) -> np.ndarray:
    """Anti-aliased inside fraction from a signed inside distance ``d`` (mm)."""
    return np.clip(d * (1.0 / width) + 0.5, 0.0, 1.0)


def _smooth_fields(rng: np.random.Generator, xs: np.ndarray, ys: np.ndarray, n: int, cell_mm: float,
                   z_corr: float = 1.0) -> np.ndarray:
    """``n`` smooth random fields (n, len(xs), len(ys)) of unit variance on a pixel grid (mm).

    Gaussian-weighted interpolation of a coarse random grid that covers a fixed 480 mm square, so
    the same generator gives the same texture (in mm) for every pixel size; fields ``k`` and
    ``k+1`` are correlated (``z_corr`` in fields) so that neighbouring slices look alike. The cost
    is two small matrix products per field.
    """
    g = np.arange(-240.0, 240.0 + cell_mm, cell_mm)
    coarse = rng.normal(0.0, 1.0, (n, g.size, g.size)).astype(np.float32)
    if z_corr > 0 and n > 1:
        coarse = ndi.gaussian_filter1d(coarse, z_corr, axis=0, mode="nearest")
    coarse /= coarse.std() + 1e-6

    def weights(x):
        w = np.exp(-0.5 * ((x[:, None] - g[None, :]) / cell_mm) ** 2)
        return (w / w.sum(axis=1, keepdims=True)).astype(np.float32)

    wx, wy = weights(np.asarray(xs, float)), weights(np.asarray(ys, float))
    out = wx[None] @ coarse @ wy.T[None]
    return out / (out.std() + 1e-6)


def _bullet(u: np.ndarray | float, p: float) -> np.ndarray:
    """Radius profile along a ventricle: 1 at the base (u=0), 0 at the apex (u=1)."""
    u = np.clip(np.asarray(u, dtype=float), 0.0, 1.0)
    return np.sqrt(np.clip(1.0 - u**p, 0.0, None))


@dataclass
class _Grid:
    """Pixel grid of one MRI slice and the rigid map between the scene frame (mm) and pixels."""

    nx: int
    ny: int
    px: float
    centre: np.ndarray  # image position (mm, from the image centre) of the scene origin
    rot: float

    def __post_init__(self) -> None:
        xs = (np.arange(self.nx, dtype=np.float32) - (self.nx - 1) / 2) * self.px - self.centre[0]
        ys = (np.arange(self.ny, dtype=np.float32) - (self.ny - 1) / 2) * self.px - self.centre[1]
        self.cr, self.sr = math.cos(self.rot), math.sin(self.rot)
        self.uu = (self.cr * xs[:, None] + self.sr * ys[None, :]).astype(np.float32)
        self.vv = (-self.sr * xs[:, None] + self.cr * ys[None, :]).astype(np.float32)
        self.xs_mm = xs + self.centre[0]
        self.ys_mm = ys + self.centre[1]

    def to_index(self, u, v):
        """Fractional pixel indices of scene points."""
        u, v = np.asarray(u, float), np.asarray(v, float)
        x = self.cr * u - self.sr * v + self.centre[0]
        y = self.sr * u + self.cr * v + self.centre[1]
        return x / self.px + (self.nx - 1) / 2, y / self.px + (self.ny - 1) / 2

    def window(self, cu: float, cv: float, radius: float):
        """Slices of the pixel box that holds the disk (cu, cv, radius), or None if off-image."""
        x, y = self.to_index(cu, cv)
        r = radius / self.px + 2
        x0, x1 = max(int(x - r), 0), min(int(x + r) + 2, self.nx)
        y0, y1 = max(int(y - r), 0), min(int(y + r) + 2, self.ny)
        if x0 >= x1 or y0 >= y1:
            return None
        return (slice(x0, x1), slice(y0, y1))


def _layer(img: np.ndarray, fat: np.ndarray, win, value, fatness: float, frac: np.ndarray) -> None:
    """Paint a tissue over ``img[win]`` with coverage ``frac``; track the fat fraction alongside."""
    if win is not None:
        img, fat = img[win], fat[win]
    img += (value - img) * frac
    fat += (fatness - fat) * frac


# --------------------------------------------------------------------------------------------
# Cine-MRI: anatomy
# --------------------------------------------------------------------------------------------


def _draw_mri_anatomy(rng: np.random.Generator) -> tuple[dict, dict]:
    """Patient parameters: (JSON-able scalars for meta, internal parameters)."""
    group = str(rng.choice(MRI_GROUPS))
    u = rng.uniform
    n_slices = int(rng.integers(8, 13))
    z0 = u(2.0, 6.0)  # first slice centre below the base plane (mm)
    z_last = z0 + 10.0 * (n_slices - 1)

    # group-specific LV/RV size, wall thickness and function
    r0 = {"NOR": u(24, 28), "DCM": u(34, 41), "HCM": u(21, 26), "MINF": u(26, 31), "RV": u(24, 28)}[group]
    t0 = {"NOR": u(7, 9.5), "DCM": u(5, 7), "HCM": u(12, 16), "MINF": u(7, 9), "RV": u(6.5, 9)}[group]
    ef = {"NOR": u(0.55, 0.68), "DCM": u(0.12, 0.33), "HCM": u(0.62, 0.78), "MINF": u(0.25, 0.42),
          "RV": u(0.50, 0.65)}[group]
    rv_w = {"NOR": u(25, 34), "DCM": u(23, 31), "HCM": u(20, 27), "MINF": u(23, 31), "RV": u(38, 50)}[group]
    rv_span = u(1.5, 1.75) if group == "RV" else u(1.2, 1.5)
    rv_ef = {"RV": u(0.15, 0.35), "DCM": u(0.30, 0.45)}.get(group, u(0.45, 0.62))

    f_l = u(0.85, 0.93)  # longitudinal shortening at ES
    lc = z_last + u(-4.0, 6.0)  # cavity length (base plane -> endocardial apex)
    t_apex, p_exp = u(5.0, 8.0), u(2.0, 3.2)
    # radial contraction that gives the EF on the slices (the ES slices see more basal tissue)
    zs = z0 + 10.0 * np.arange(n_slices)
    zs_es = np.maximum(lc + t_apex - (lc + t_apex - zs) / f_l, 0.0)
    v_ed = float((_bullet(zs / lc, p_exp) ** 2 * (zs < lc)).sum())
    v_es = float((_bullet(zs_es / lc, p_exp) ** 2 * (zs_es < lc)).sum())
    f_r = min(math.sqrt((1.0 - ef) * v_ed / max(v_es, 1e-6)), 0.97)
    # the RV reaches past mid-ventricle (also at ES) but stops before the most apical slice
    lrv_lo = 0.72 * z_last
    lrv_hi = z_last - 12.0
    lrv = min(u(lrv_lo, lrv_hi) if group != "RV" else lrv_hi, lrv_hi)

    meta = {
        "group": group,
        "n_slices": n_slices,
        "lv_radius_mm": round(r0, 2),
        "wall_thickness_mm": round(t0, 2),
        "lv_length_mm": round(lc, 2),
        "ef_target": round(ef, 3),
        "rv_width_mm": round(rv_w, 2),
        "rv_length_mm": round(lrv, 2),
        "rv_ef_target": round(rv_ef, 3),
        "height": round(float(u(150, 195)), 1),
        "weight": round(float(u(50, 110)), 1),
        "n_frames": int(rng.integers(20, 36)),
    }
    meta["ed_frame"] = 1
    meta["es_frame"] = int(round(meta["n_frames"] * u(0.3, 0.45)))

    p = {
        "group": group, "n_slices": n_slices, "z0": z0, "lc": lc, "t_apex": t_apex, "r0": r0, "t0": t0,
        "p_exp": p_exp, "f_l": f_l, "f_r": f_r,
        "endo_base": _rand_fourier(rng, 4, 0.06, kmin=2), "endo_apex": _rand_fourier(rng, 4, 0.06, kmin=2),
        "thick": _rand_fourier(rng, 3, 0.12),
        "t_min": 3.8,
        # RV crescent around the septum (the septum is at angle pi in the heart frame)
        "rv_w": rv_w, "rv_span": rv_span, "lrv": lrv, "f_rv": (1.0 - rv_ef) ** 0.75,
        # at ES the base descends: a slice holds more myocardium than at ED
        "myo_es": u(1.0, 1.15),
        "rv_theta": np.pi + u(-0.35, 0.2), "rv_asym": u(-0.3, 0.3), "rv_shape": _rand_fourier(rng, 3, 0.07),
        "rv_wall": u(2.5, 3.8),
        # trabeculations and papillary muscles
        "trab_depth": u(2.0, 4.5) * (1.3 if group == "DCM" else 1.0),
        "trab_k": rng.choice(np.arange(9, 34), 9, replace=False), "trab_ph": rng.uniform(0, 2 * np.pi, 9),
        "pap_theta": np.array([u(-1.05, -0.55), u(0.55, 1.05)]),
        "pap_r": u(3.2, 5.0) * (1.35 if group == "HCM" else 1.0),
        # epicardial fat (patchy), mediastinal gap
        "fat0": u(-2.0, 0.5), "fat": _rand_fourier(rng, 6, 3.0, decay=0.5), "gap": u(0.5, 2.5),
        # the long axis is oblique to the slices: the centre drifts in plane (mm per mm)
        "drift": rng.normal(0.0, 0.10, 2),
        # HCM septal hypertrophy; MINF infarct (regional thinning, akinesia)
        "sept_amp": u(0.25, 0.7) if group == "HCM" else 0.0,
        "inf_theta": u(-np.pi, np.pi), "inf_width": u(0.45, 0.8),
        "inf_depth": u(0.45, 0.65) if group == "MINF" else 0.0,
        "inf_z": sorted(rng.uniform(0.0, 1.0, 2) * np.array([0.6, 1.0]) + np.array([0.0, 0.4])),
        "inf_akinesia": u(0.7, 0.95),
    }
    # the angular series do not change along the heart: evaluate them once
    p["F"] = {name: _fourier(p[name], _TH) for name in ("endo_base", "endo_apex", "thick", "rv_shape", "fat")}
    pattern = np.zeros_like(_TH)
    for k, ph in zip(p["trab_k"], p["trab_ph"]):
        pattern += np.cos(k * _TH + ph)
    p["F"]["trab"] = np.clip(pattern / 2.5, 0.0, 1.0) ** 0.6 * (0.35 + 0.65 * (1 + np.cos(_TH)) / 2)
    return meta, p


_MRI_MIN_CAVITY_MM = 5.0  # smallest LV cavity (equivalent radius) a slice shows
_MRI_MIN_CAVITY_FRAC = 0.25  # ... and relative to the epicardium's equivalent radius
_MRI_MIN_RV_MM = 3.0  # thinnest RV cavity drawn
_MRI_MIN_RV_AREA_MM2 = 40.0  # smallest RV cavity a slice shows


def _mri_heart_tables(p: dict, z: float, phase: str) -> dict:
    """Angular tables of the heart's boundaries at distance ``z`` (mm) below the base plane.

    Returns a dict: ``tables`` (6, NT) radii in mm of endocardium, epicardium, RV outer border,
    RV free-wall outer border, epicardial-fat outer border and trabeculation depth;
    ``paps`` papillary-muscle disks (x, y, r) in the heart frame; ``rmax`` the reach in mm.
    """
    th = _TH
    es = phase == "ES"
    fl = p["f_l"] if es else 1.0
    lc, r0, t0 = p["lc"], p["r0"], p["t0"]
    # material coordinate: at ES the base descends towards the (fixed) apex, so a slice shows
    # tissue that sat more basally at ED
    apex = lc + p["t_apex"]
    zz = max(apex - (apex - z) / fl, 0.0)
    u = zz / lc
    wmix = min(max(u, 0.0), 1.0)
    rc = r0 * float(_bullet(u, p["p_exp"])) if u < 1.0 else 0.0
    re = (r0 + t0) * float(_bullet(zz / (lc + p["t_apex"]), p["p_exp"]))
    F = p["F"]
    thick_shape = 1.0 + F["thick"]
    if p["sept_amp"]:
        thick_shape *= 1.0 + p["sept_amp"] * np.exp(-0.5 * (_wrap(th - np.pi) / 0.7) ** 2)
    inf_w = np.zeros_like(th)
    if p["inf_depth"]:
        za, zb = p["inf_z"]
        window = float(np.clip(min(u - za, zb - u) / 0.08 + 0.5, 0.0, 1.0))
        inf_w = window * np.exp(-0.5 * (_wrap(th - p["inf_theta"]) / p["inf_width"]) ** 2)
        thick_shape *= 1.0 - p["inf_depth"] * inf_w
    if rc > 0:
        endo_ed = rc * (1.0 + F["endo_base"] * (1 - wmix) + F["endo_apex"] * wmix)
        epi_ed = endo_ed + np.maximum((re - rc) * thick_shape, min(p["t_min"], re))
    else:  # apical cap: myocardium only
        endo_ed = np.zeros_like(th)
        epi_ed = re * (1.0 + 0.3 * (thick_shape - 1.0))
    if es:  # radial contraction (weaker in an infarct); myocardial area conserved -> thicker wall
        c = p["f_r"] + (1.0 - p["f_r"]) * p["inf_akinesia"] * inf_w
        endo = endo_ed * c
        epi = np.sqrt(endo**2 + p["myo_es"] * (epi_ed**2 - endo_ed**2))
    else:
        endo, epi = endo_ed, epi_ed
    # the cavity closes before the apex: a slice whose cavity would be a pinhole in a thick ring
    # (equivalent radius below _MRI_MIN_CAVITY_MM or below _MRI_MIN_CAVITY_FRAC of the epicardium's,
    # i.e. myocardium > ~15x the cavity) is apical cap, myocardium only; image and label alike
    if rc > 0:
        r_endo, r_epi = math.sqrt(float(np.mean(endo**2))), math.sqrt(float(np.mean(epi**2)))
        if r_endo < max(_MRI_MIN_CAVITY_MM, _MRI_MIN_CAVITY_FRAC * r_epi):
            endo = np.zeros_like(th)

    # RV crescent wrapping the septum, thin free wall, tips joining the LV at the insertions
    urv = zz / p["lrv"]
    w = p["rv_w"] * float(np.sqrt(max(0.0, 1.0 - urv**2))) * (p["f_rv"] if es else 1.0)
    span = p["rv_span"] * (1.0 - 0.3 * min(urv, 1.0))
    phi = _wrap(th - p["rv_theta"]) / span
    shape = np.where(np.abs(phi) < 1.0, np.clip(1.0 - phi**2, 0, None) ** 0.6, 0.0)
    shape *= (1.0 + p["rv_asym"] * phi) * (1.0 + F["rv_shape"])
    # the RV cavity is drawn where it is at least _MRI_MIN_RV_MM wide: the slivers thinner than a
    # pixel at the insertion points and towards the RV apex would rasterise as separate specks
    width = w * np.clip(shape, 0.0, None)
    width = np.where(width >= _MRI_MIN_RV_MM, width, 0.0)
    if 0.5 * float(np.sum((epi + width) ** 2 - epi**2)) * (2 * np.pi / _NT) < _MRI_MIN_RV_AREA_MM2:
        width = np.zeros_like(th)  # nor a speck of RV near its apex
    rv_out = epi + width
    if w > 0.5:
        wall = p["rv_wall"] * np.clip((1.25 - np.abs(phi)) / 0.25, 0.0, 1.0)
    else:
        wall = np.zeros_like(th)
    wall_out = rv_out + wall
    fat_out = wall_out + np.clip(p["fat0"] + F["fat"], 0.0, None)

    # trabeculations: finger-like tissue along the endocardium (more on the lateral wall)
    trab = np.minimum(p["trab_depth"] * (1.25 if es else 1.0) * F["trab"], 0.35 * endo)

    # papillary muscles: attached to the lateral wall, mid-ventricle
    paps = []
    s = float(np.clip((u - 0.12) / 0.72, 0.0, 1.0))
    if rc > 0 and 0 < s < 1:
        rp = p["pap_r"] * math.sin(math.pi * s) ** 0.5 * (1.15 if es else 1.0)
        for tp in p["pap_theta"]:
            i = int((tp + np.pi) / (2 * np.pi) * _NT) % _NT
            rpp = min(rp, 0.3 * endo[i])
            if rpp > 0.8:
                dist = endo[i] - 0.8 * rpp
                paps.append((dist * math.cos(tp), dist * math.sin(tp), rpp))
    tables = np.stack([endo, epi, rv_out, wall_out, fat_out, trab]).astype(np.float32)
    return {"tables": tables, "paps": paps, "rmax": float(fat_out.max() + p["gap"] + 3.0)}


def _draw_mri_surroundings(rng: np.random.Generator, p: dict) -> dict:
    """Body outline, chest wall, lungs, abdominal organs, aorta: parameters in the scene frame."""
    u = rng.uniform
    reach = p["r0"] + p["t0"] + 10.0  # how far the LV reaches: keeps the organs clear of it

    def blob(c, ax, rot=0.0, amp=0.05, drift=3.0, scale=0.0, kmax=4):
        return {
            "c": np.array(c, float), "ax": np.array(ax, float), "rot": rot,
            "coefs": _rand_fourier(rng, kmax, amp, kmin=2), "dc": rng.normal(0.0, drift / 10.0, 2), "sc": scale / 100.0,
        }

    sc_fat, muscle, fat2, muscle2 = u(6, 18), u(8, 18), u(1.5, 4.0), u(4.0, 10.0)
    # the body's left (anterior) edge clears the RV and the chest wall
    left = p["r0"] + p["t0"] + p["rv_w"] + 1.3 * (sc_fat + muscle + fat2 + muscle2) + u(8, 30)
    top = u(165, 225)
    bc = np.array([u(30, 80), u(50, 100)])
    s = {
        "body": blob(bc, (bc[0] + left, bc[1] + top), amp=0.03, drift=0.0),
        "sc_fat": sc_fat, "sc_fat_coefs": _rand_fourier(rng, 4, 0.3),
        "muscle": muscle, "muscle_coefs": _rand_fourier(rng, 4, 0.3),
        "fat2": fat2, "muscle2": muscle2, "inner_coefs": _rand_fourier(rng, 6, 0.5, decay=0.6),
        "lungs": [
            blob((u(-20, 30), u(-80, -50)), (u(100, 140), u(55, 80)), rot=u(-0.4, 0.4), amp=0.06, drift=4, scale=-0.4),
            blob((u(70, 110), u(-30, 20)), (u(50, 70), u(60, 90)), rot=u(-0.4, 0.4), amp=0.06, drift=4, scale=-0.3),
        ],
        # diaphragm: lungs above it (around the heart), liver and abdomen below; it rises apically
        # (height below the heart centre, rise per 10 mm apically, slope, curvature, wiggle)
        "diaphragm": (p["r0"] + p["t0"] + u(2, 14), u(0.3, 1.5), u(-0.35, 0.35), u(0.001, 0.004),
                      _rand_fourier(rng, 3, 6.0)),
        "liver": blob((u(-70, -10), u(reach + 45, reach + 70)), (u(120, 160), u(70, 95)), rot=u(-0.35, 0.1),
                      amp=0.06, drift=4, scale=0.5),
        "spleen": blob((u(150, 200), u(50, 110)), (u(22, 35), u(40, 60)), rot=u(-0.6, 0.6), amp=0.06, drift=4),
        "ink": u(0.6, 1.0),
    }
    # bowel loops, stomach and other abdominal organs: (blob, intensity, lumen, z centre, z extent)
    organs = []
    for _ in range(int(rng.integers(45, 65))):
        r = u(10, 28)
        bl = blob((u(-60, 210), u(reach + 25, 240)), (r * u(0.8, 1.8), r * u(0.4, 0.9)), rot=u(-3, 3),
                  amp=0.15, drift=6)
        lumen = (u(0.03, 0.12) if rng.random() < 0.5 else u(0.5, 0.8)) if rng.random() < 0.4 else None
        organs.append((bl, u(0.2, 0.6), lumen, u(-10, 110), u(25, 80)))
    s["organs"] = organs
    # descending aorta posterior to the heart, with the spine beyond it
    ang = u(0.15, 0.55) * np.pi
    r_ao = u(9.0, 12.5)
    d_ao = reach + r_ao + u(35, 50)
    s["aorta"] = (d_ao * math.cos(ang), d_ao * math.sin(ang), r_ao)
    d_sp = d_ao + r_ao + u(16, 22)
    s["spine"] = (d_sp * math.cos(ang + u(-0.15, 0.15)), d_sp * math.sin(ang), u(14, 19))
    # left atrium / aortic root next to the base (basal slice only)
    s["la"] = (u(0.1, 0.45) * np.pi, u(13, 19), bool(rng.random() < 0.7))
    # lung and liver vessels: columns u, v, z centre, z half-extent, radius
    n = int(rng.integers(30, 60))
    ang_v, r_v = u(-np.pi, np.pi, n), reach + rng.gamma(2.0, 25.0, n)
    s["vessels"] = np.column_stack([r_v * np.cos(ang_v), r_v * np.sin(ang_v), u(-10, 110, n), u(5, 30, n),
                                    u(0.7, 2.2, n) * np.clip(100.0 / r_v, 0.6, 1.6)])
    # SSFP off-resonance banding far from the shimmed heart
    s["band"] = (u(140, 230), rng.normal(0.0, 40.0, 2), u(1.0, 3.0), bool(rng.random() < 0.35))
    return s


def _blob_reach(bl: dict, z: float) -> tuple[float, float, float]:
    cx, cy = bl["c"] + bl["dc"] * z
    scale = max(1.0 + bl["sc"] * z / 10.0, 0.2)
    return cx, cy, float(bl["ax"].max() * scale * (1.0 + np.abs(bl["coefs"]).sum()) + 2.0)


def _blob_dist(bl: dict, uu: np.ndarray, vv: np.ndarray, z: float) -> np.ndarray:
    """Signed inside distance (mm, along the ray from the centre) to a perturbed ellipse."""
    cx, cy = bl["c"] + bl["dc"] * z
    scale = max(1.0 + bl["sc"] * z / 10.0, 0.2)
    a, b = bl["ax"] * scale
    c, s = math.cos(bl["rot"]), math.sin(bl["rot"])
    dx, dy = uu - np.float32(cx), vv - np.float32(cy)
    px, py = c * dx + s * dy, -s * dx + c * dy
    rho = np.sqrt(px * px + py * py) + np.float32(1e-3)
    cs, sn = px / rho, py / rho
    pert = np.ones_like(rho)
    ck, sk = cs, sn
    for k, (fa, fb) in enumerate(bl["coefs"], start=1):
        if k > 1:
            ck, sk = ck * cs - sk * sn, sk * cs + ck * sn
        if fa or fb:
            pert += np.float32(fa) * ck + np.float32(fb) * sk
    # ellipse radius along the ray, perturbed by a low-order Fourier series of the angle
    return pert / np.sqrt((cs / a) ** 2 + (sn / b) ** 2) - rho


def _paint_blob(img, fat, grid: _Grid, bl: dict, z: float, layers, mask: np.ndarray | None = None,
                tex: np.ndarray | None = None):
    """Paint nested layers of a blob in its bounding window; returns (window, signed distance) or None.

    ``layers``: ``(inset_mm, value, fatness, texture_amplitude)`` from the outside in; a negative
    inset grows the blob (e.g. a fat plane around an organ).
    """
    cx, cy, r = _blob_reach(bl, z)
    win = grid.window(cx, cy, r + max(0.0, -min(layer[0] for layer in layers)))
    if win is None:
        return None
    d = _blob_dist(bl, grid.uu[win], grid.vv[win], z)
    m = None if mask is None else mask[win]
    for inset, value, fatness, tex_amp in layers:
        frac = _soft(d - inset, grid.px)
        if m is not None:
            frac *= m
        if tex is not None and tex_amp:
            value = value * (1.0 + tex_amp * tex[win])
        _layer(img, fat, win, value, fatness, frac)
    return win, d


def _mri_body(s: dict, tissue: dict, grid: _Grid, tex: np.ndarray):
    """Body outline with subcutaneous fat, chest-wall muscle and a fatty interior (all slices)."""
    img = np.zeros((grid.nx, grid.ny), np.float32)
    fat = np.zeros_like(img)
    d_body = _blob_dist(s["body"], grid.uu, grid.vv, 0.0)
    phi = np.arctan2(grid.vv - np.float32(s["body"]["c"][1]), grid.uu - np.float32(s["body"]["c"][0]))
    tables = np.stack([s["sc_fat"] * np.clip(1 + _fourier(s["sc_fat_coefs"], _TH), 0.3, None),
                       s["muscle"] * np.clip(1 + _fourier(s["muscle_coefs"], _TH), 0.3, None)])
    bands = _gather(tables.astype(np.float32), _angle_index(phi))
    px = grid.px
    _layer(img, fat, None, tissue["fat"], 1.0, _soft(d_body, px))
    _layer(img, fat, None, tissue["muscle"] * (1 + 0.08 * tex), 0.0, _soft(d_body - bands[0], px))
    d_in = d_body - bands[0] - bands[1]
    _layer(img, fat, None, tissue["fat"], 1.0, _soft(d_in, px))
    inner = np.clip(1.0 + _fourier(s["inner_coefs"], _TH), 0.2, None).astype(np.float32)
    inner = _gather(np.stack([inner, inner[::-1]]), _angle_index(phi))
    d_in -= s["fat2"] * inner[0]
    _layer(img, fat, None, tissue["muscle"] * (1 - 0.08 * tex), 0.0, _soft(d_in, px))
    d_in -= s["muscle2"] * inner[1]
    interior = _soft(d_in, px)
    pleura = _soft(d_in - 2.5, px)
    mix = np.clip(0.6 + 0.4 * tex, 0.0, 1.0)  # mostly fat between the organs
    _layer(img, fat, None, tissue["soft"] + (tissue["fat"] - tissue["soft"]) * mix, 1.0, interior)
    return img, fat, interior, pleura


def _diaphragm(s: dict, grid: _Grid, z: float, win=None) -> np.ndarray:
    """Signed distance (mm, vertical in the scene) below the diaphragm: > 0 in the abdomen."""
    d0, rise, slope, curv, coefs = s["diaphragm"]
    uu = grid.uu if win is None else grid.uu[win]
    vv = grid.vv if win is None else grid.vv[win]
    wig = _fourier(coefs, uu.astype(np.float32) * np.float32(np.pi / 300.0))
    return vv - (d0 - rise * z / 10.0 + slope * uu + curv * uu * uu + wig).astype(np.float32)


def _mri_slice_surroundings(s: dict, tissue: dict, grid: _Grid, body, z: float, tex: np.ndarray):
    """Intensity and fat fraction of everything around the heart on one slice."""
    img, fat, interior, pleura = body[0].copy(), body[1].copy(), body[2], body[3]
    px = grid.px
    below = _diaphragm(s, grid, z)
    abdomen = _soft(below - 2.0, px) * interior
    # lungs fill the thorax above the diaphragm (the heart and its fat are painted over them later)
    thorax = _soft(-below - 2.0, px) * pleura
    mix = np.clip(0.15 + 0.5 * tex, 0.0, 1.0)  # chest-wall muscles with fat septa
    _layer(img, fat, None, tissue["muscle"] + (tissue["fat"] - tissue["muscle"]) * mix, mix, thorax)
    lung = np.zeros_like(img)
    for bl in s["lungs"]:
        part = _paint_blob(img, fat, grid, bl, z, [(0.0, tissue["lung"], 0.0, 0.3)], mask=thorax, tex=tex)
        if part is not None:
            win, d = part
            lung[win] = np.maximum(lung[win], _soft(d, px) * thorax[win])
    _layer(img, fat, None, tissue["muscle"], 0.0, _soft(2.5 - np.abs(below), px) * interior)
    # pulmonary (and hepatic) vessels: bright dots
    v = s["vessels"]
    on = np.abs(z - v[:, 2]) < v[:, 3]
    ves = None
    if on.any():
        ix, iy = grid.to_index(v[on, 0], v[on, 1])
        ix, iy = np.round(ix).astype(int), np.round(iy).astype(int)
        ok = (ix >= 0) & (iy >= 0) & (ix < grid.nx) & (iy < grid.ny)
        if ok.any():
            ves = np.zeros_like(img)
            np.add.at(ves, (ix[ok], iy[ok]), (v[on, 4][ok] / px) ** 2 * 5.0)
            ves = np.minimum(ndi.gaussian_filter(ves, 0.8, truncate=3.0), 1.0)
            _layer(img, fat, None, 0.8, 0.0, ves * lung)
    # liver under the diaphragm, abdominal organs and bowel, spleen
    liver = _paint_blob(img, fat, grid, s["liver"], z,
                        [(-2.0, tissue["fat"], 1.0, 0.0), (0.0, tissue["liver"], 0.0, 0.05)], mask=abdomen, tex=tex)
    if liver is not None and ves is not None:
        win, d = liver
        _layer(img, fat, win, 0.75, 0.0, ves[win] * 0.8 * _soft(d - 4.0, px) * abdomen[win])
    for bl, val, lumen, zc, ze in s["organs"]:
        if abs(z - zc) < ze:
            # a fat plane around it, the organ, maybe a lumen (air or fluid)
            layers = [(-2.5, tissue["fat"], 1.0, 0.0), (0.0, tissue["spleen"] * val / 0.5, 0.0, 0.15)]
            if lumen is not None:
                layers.append((4.0, lumen, 0.0, 0.0))
            _paint_blob(img, fat, grid, bl, z, layers, mask=abdomen, tex=tex)
    _paint_blob(img, fat, grid, s["spleen"], z, [(-2.0, tissue["fat"], 1.0, 0.0), (0.0, tissue["spleen"], 0.0, 0.05)],
                mask=abdomen, tex=tex)
    # spine (vertebral body with a dark cortex) and the descending aorta in its fat
    for (cx, cy, r), layers in (
        (s["spine"], ((2.0, tissue["muscle"] * 0.5, 0.0), (0.0, 0.6 * tissue["fat"], 0.0))),
        (s["aorta"], ((3.0, tissue["fat"], 1.0), (0.0, 0.9, 0.0))),
    ):
        win = grid.window(cx, cy, r + 4.0)
        if win is None:
            continue
        d = r - np.sqrt((grid.uu[win] - np.float32(cx)) ** 2 + (grid.vv[win] - np.float32(cy)) ** 2)
        for extra, val, fness in layers:
            _layer(img, fat, win, val, fness, _soft(d + extra, px) * interior[win])
    return img, fat


def _mri_render_heart(p: dict, tab: dict, rho, idx, hx, hy, img, fat, tissue: dict, px: float, la) -> None:
    """Paint the heart into the crop ``img`` / ``fat`` in place (painter's order, outside in)."""
    endo, epi, rv_out, wall_out, fat_out, trab = _gather(tab["tables"], idx)
    halo = tissue["soft"] + 0.3 * (tissue["fat"] - tissue["soft"])
    _layer(img, fat, None, halo, 0.0, _soft(fat_out + p["gap"] - rho, px))
    if la is not None:  # left atrium / aortic root at the base: bright blood, unlabelled
        ang, r, _ = la
        d = float(np.interp(ang, _TH, tab["tables"][4])) + r + 1.0
        d_la = r - np.sqrt((hx - d * math.cos(ang)) ** 2 + (hy - d * math.sin(ang)) ** 2)
        _layer(img, fat, None, tissue["fat"], 1.0, _soft(d_la + 3.0, px))
        _layer(img, fat, None, 0.85, 0.0, _soft(d_la, px))
    _layer(img, fat, None, tissue["pericardium"], 0.0, _soft(fat_out + 1.2 - rho, px))
    _layer(img, fat, None, tissue["fat"], 1.0, _soft(fat_out - rho, px))
    _layer(img, fat, None, tissue["myo"], 0.0, _soft(wall_out - rho, px))
    _layer(img, fat, None, tissue["rv_blood"], 0.0, _soft(rv_out - rho, px))
    _layer(img, fat, None, tissue["myo"], 0.0, _soft(epi - rho, px))
    inside = endo - rho
    f_tr = np.clip(1.0 - inside / np.maximum(trab, 0.3), 0.0, 1.0) ** 1.5 * (trab > 0.3)
    lv = tissue["lv_blood"] + (tissue["myo"] - tissue["lv_blood"]) * f_tr
    _layer(img, fat, None, lv, 0.0, _soft(inside, px))
    for cx, cy, r in tab["paps"]:
        _layer(img, fat, None, tissue["myo"], 0.0, _soft(r - np.sqrt((hx - cx) ** 2 + (hy - cy) ** 2), px))


def _mri_render_slices(p: dict, sur: dict, tissue: dict, grid: _Grid, rng_t: np.random.Generator):
    """Noise-free slices (relative to blood = 1) and labels of both phases: dicts by phase."""
    nx, ny, nz, px = grid.nx, grid.ny, p["n_slices"], grid.px
    body = _mri_body(sur, tissue, grid, _smooth_fields(rng_t, grid.xs_mm, grid.ys_mm, 1, 30.0)[0])
    texs = _smooth_fields(rng_t, grid.xs_mm, grid.ys_mm, nz, 9.0, z_corr=0.7)
    fine = _smooth_fields(rng_t, grid.xs_mm, grid.ys_mm, nz, 3.5, z_corr=0.0)
    phases = ("ED", "ES")
    images = {ph: np.zeros((nx, ny, nz), np.float32) for ph in phases}
    labels = {ph: np.zeros((nx, ny, nz), np.uint8) for ph in phases}
    half = 2.5  # through-plane partial volume: the image averages two sub-slices at +-2.5 mm
    for k in range(nz):
        z = p["z0"] + 10.0 * k
        base_img, base_fat = _mri_slice_surroundings(sur, tissue, grid, body, z, texs[k])
        la = sur["la"] if (k == 0 and sur["la"][2]) else None
        tabs = {(ph, dz): _mri_heart_tables(p, z + dz, ph) for ph in phases for dz in (-half, 0.0, half)}
        rmax = max(t["rmax"] for t in tabs.values()) + (2 * sur["la"][1] + 8 if la else 0.0)
        hc = p["drift"] * z
        win = grid.window(hc[0], hc[1], rmax + 6.0)
        cu, cv = grid.uu[win], grid.vv[win]
        acc = {ph: [np.zeros(cu.shape, np.float32), np.zeros(cu.shape, np.float32)] for ph in phases}
        for dz in (-half, 0.0, half):
            hcz = p["drift"] * max(z + dz, 0.0)
            hx, hy = cu - np.float32(hcz[0]), cv - np.float32(hcz[1])
            rho = np.sqrt(hx * hx + hy * hy)
            idx = _angle_index(np.arctan2(hy, hx))
            for ph in phases:
                tab = tabs[(ph, dz)]
                if dz == 0.0:  # labels: hard boundaries at the slice centre
                    endo, epi, rv_out = _gather(tab["tables"][:3], idx)
                    lab = np.zeros(cu.shape, np.uint8)
                    lab[(rho < rv_out) & (rho >= epi)] = 1
                    lab[rho < epi] = 2
                    lab[rho < endo] = 3
                    labels[ph][win + (k,)] = lab
                    continue
                ci, cf = base_img[win].copy(), base_fat[win].copy()
                _mri_render_heart(p, tab, rho, idx, hx, hy, ci, cf, tissue, px, la)
                acc[ph][0] += 0.5 * ci
                acc[ph][1] += 0.5 * cf
        for ph in phases:
            sl_img, sl_fat = base_img.copy(), base_fat.copy()
            sl_img[win], sl_fat[win] = acc[ph]
            # SSFP fat/water interfaces show a dark "India ink" line
            sl_img *= 1.0 - sur["ink"] * 4.0 * sl_fat * (1.0 - sl_fat)
            sl_img *= 1.0 + 0.06 * fine[k]  # fine tissue texture
            images[ph][:, :, k] = sl_img

    return images, labels


def _mri_acquire(images: dict, sur: dict, grid: _Grid, v: MRIVendor, rng_i: np.random.Generator) -> dict:
    """The scanner: off-resonance banding, partial-volume blur, bias field, gain, Rician noise."""
    nx, ny, px = grid.nx, grid.ny, grid.px
    phases = tuple(images)
    nz = images[phases[0]].shape[2]
    r_sh, off, n_b, has_band = sur["band"]
    if has_band:
        du, dv = grid.uu - np.float32(off[0]), grid.vv - np.float32(off[1])
        phase_map = n_b * np.maximum(np.sqrt(du * du + dv * dv) / r_sh - 1.0, 0.0) ** 1.5 * 3.0
        frac_ = phase_map - np.floor(phase_map)
        band = 1.0 - 0.7 * np.exp(-(((frac_ - 0.5) / 0.05) ** 2)) * (phase_map > 0.4)
        for ph in phases:
            images[ph] *= band[:, :, None].astype(np.float32)
    sig = v.psf_mm / px
    gx = np.linspace(-1, 1, nx, dtype=np.float32)[:, None, None]
    gy = np.linspace(-1, 1, ny, dtype=np.float32)[None, :, None]
    gz = np.linspace(-1, 1, nz, dtype=np.float32)[None, None, :]
    c = rng_i.normal(0.0, 1.0, 6)
    c[:5] /= np.linalg.norm(c[:5]) + 1e-6
    log_bias = v.bias * (c[0] * gx + c[1] * gy + c[2] * gx * gx + c[3] * gx * gy + c[4] * gy * gy) + 0.08 * c[5] * gz
    bias = np.exp(log_bias - log_bias.mean()).astype(np.float32)
    gain = v.gain * float(rng_i.uniform(0.85, 1.15))
    sigma = np.float32(v.noise * gain)
    for ph in phases:
        img = ndi.gaussian_filter(images[ph], (sig, sig, 0.0), truncate=3.0) * bias * np.float32(gain)
        n1 = rng_i.standard_normal(img.shape, dtype=np.float32)
        n2 = rng_i.standard_normal(img.shape, dtype=np.float32)
        images[ph] = np.round(np.sqrt((img + sigma * n1) ** 2 + (sigma * n2) ** 2)).astype(np.float32)
    return images


def phantom_mri_patient(index: int, *, seed: int = 0, vendor: str = "A") -> list[Case]:
    """One procedural short-axis cine-MRI patient at end-diastole and end-systole.

    The anatomy depends only on ``(seed, index)``; the vendor changes resolution, contrast,
    noise and bias field. Labels follow the MRI convention (0 background, 1 RV cavity,
    2 LV myocardium, 3 LV cavity including papillary muscles and trabeculations, as in ACDC).

    Args:
        index: patient number (>= 0); the patient id is ``phantom{index:03d}``.
        seed: dataset seed (>= 0); the same seed and index always give the same arrays.
        vendor: one of :data:`MRI_VENDORS`.

    Returns:
        ``[ED case, ES case]``: float32 images (X, Y, Z), Z slices from base to apex, integer-valued
        intensities; uint8 labels; spacing ``(s, s, 10.0)`` mm. ``meta`` holds the vendor, the
        group (``NOR``, ``DCM``, ``HCM``, ``MINF`` or ``RV``), the drawn parameters and the LV
        volumes and EF measured on the labels.

    Raises:
        ValueError: unknown vendor, negative index or seed.
    """
    _check_args(index, seed)
    v: MRIVendor = _vendor(vendor, MRI_VENDORS, "phantom-mri")
    rng_a = _rng(seed, index, 0, "mri")  # anatomy: independent of the vendor
    meta, p = _draw_mri_anatomy(rng_a)
    sur = _draw_mri_surroundings(rng_a, p)
    rot = rng_a.uniform(-0.45, 0.45)
    centre = np.array([rng_a.uniform(-28.0, 8.0), rng_a.uniform(0.0, 35.0)])
    tex_seed = int(rng_a.integers(2**31))

    rng_i = _rng(seed, index, 1 + zlib.crc32(vendor.encode()), "mri")  # appearance
    nx, ny = v.matrices[int(rng_i.integers(len(v.matrices)))]
    px = v.spacing_mm

    def jit() -> float:
        return float(np.exp(rng_i.normal(0.0, 0.06)))

    tissue = {
        "lv_blood": 1.0, "rv_blood": 0.93 * jit(), "myo": v.myo * jit(), "fat": v.fat * jit(),
        "liver": v.liver * jit(), "spleen": v.spleen * jit(), "muscle": v.muscle * jit(),
        "lung": v.lung * jit(), "soft": v.soft * jit(), "pericardium": 0.6 * v.lung,
    }
    grid = _Grid(nx, ny, px, centre, rot)
    images, labels = _mri_render_slices(p, sur, tissue, grid, np.random.default_rng(tex_seed))
    images = _mri_acquire(images, sur, grid, v, rng_i)

    vox_ml = px * px * 10.0 / 1000.0
    edv = float((labels["ED"] == 3).sum()) * vox_ml
    esv = float((labels["ES"] == 3).sum()) * vox_ml
    meta.update({
        "vendor": vendor,
        "rotation_deg": round(math.degrees(rot), 2),
        "heart_offset_mm": [round(float(centre[0]), 2), round(float(centre[1]), 2)],
        "lv_edv_ml": round(edv, 2), "lv_esv_ml": round(esv, 2),
        "lv_ef": round(1.0 - esv / edv, 3) if edv > 0 else 0.0,
        "source": "procedural phantom",
    })
    return [
        Case(
            image=images[ph], label=labels[ph], spacing=(float(px), float(px), 10.0),
            patient_id=phantom_patient_id("phantom-mri", index), phase=ph, modality="mri", view=None, dataset="phantom-mri",
            meta=dict(meta, frame=meta["ed_frame"] if ph == "ED" else meta["es_frame"]),
        )
        for ph in ("ED", "ES")
    ]


# --------------------------------------------------------------------------------------------
# Echocardiography: apical 2CH / 4CH
# --------------------------------------------------------------------------------------------


def _sin_series(coefs: np.ndarray, u: np.ndarray) -> np.ndarray:
    """sum_k c_k sin(k pi u): a smooth perturbation that vanishes at u = 0 and u = 1."""
    out = np.zeros_like(u, dtype=float)
    for k, c in enumerate(coefs, start=1):
        out += c * np.sin(k * np.pi * u)
    return out


def _lv_profile(u: np.ndarray, uw: float, pp: float, taper: float) -> np.ndarray:
    """Half-width of an apical-view LV (1 = widest) from the apex (u=0) to the mitral plane (u=1).

    A superellipse from the apex to the widest point ``uw``, then a slight narrowing (``taper``)
    towards the mitral annulus: a bullet, not an ellipse.
    """
    u = np.clip(u, 0.0, 1.0)
    v = np.clip(u / uw, 0.0, 1.0)
    rise = np.clip(1.0 - (1.0 - v) ** pp, 0.0, None) ** (1.0 / pp)
    return rise * (1.0 - taper * np.clip((u - uw) / (1.0 - uw), 0.0, 1.0) ** 2)


def _draw_echo_anatomy(rng: np.random.Generator) -> tuple[dict, dict]:
    """Patient parameters for the echo phantom: (JSON-able meta, internal parameters)."""
    u = rng.uniform
    group = str(rng.choice(ECHO_GROUPS))
    L = {"NOR": u(72, 88), "DCM": u(86, 102), "HCM": u(64, 78), "MINF": u(78, 94)}[group]
    W = {"NOR": u(40, 50), "DCM": u(54, 66), "HCM": u(30, 40), "MINF": u(46, 56)}[group]
    T = {"NOR": u(8, 11), "DCM": u(6, 8), "HCM": u(13, 18), "MINF": u(8, 10)}[group]
    ef = {"NOR": u(0.55, 0.70), "DCM": u(0.15, 0.35), "HCM": u(0.60, 0.78), "MINF": u(0.30, 0.45)}[group]
    f_l = u(0.84, 0.92)
    # CAMUS's Info_<view>.cfg fields keep their CAMUS names (as the CAMUS reader returns them)
    n_frames = int(rng.integers(14, 40))
    meta = {
        "group": group,
        "lv_length_mm": round(L, 2), "lv_width_mm": round(W, 2), "wall_thickness_mm": round(T, 2),
        "ef_target": round(ef, 3),
        "ED": 1, "ES": int(round(n_frames * u(0.35, 0.6))), "NbFrame": n_frames,
        "Sex": str(rng.choice(("F", "M"))), "Age": int(rng.integers(20, 90)),
        "ImageQuality": str(rng.choice(("Good", "Medium", "Poor"), p=(0.35, 0.45, 0.2))),
        "EF": round(100.0 * ef, 1), "FrameRate": int(rng.integers(30, 80)),
    }
    p = {
        "group": group, "L": L, "W": W, "T": T, "f_l": f_l, "f_w": math.sqrt((1.0 - ef) / f_l),
        "akinesia": u(0.6, 0.9) if group == "MINF" else 0.0,
        "la_len": u(38, 52) * (1.15 if group == "DCM" else 1.0), "la_w": u(34, 46) * (1.1 if group == "DCM" else 1.0),
        "la_es": u(1.08, 1.22),
        "rv_w": u(24, 34), "rv_apex": u(0.35, 0.55), "tv_offset": u(3, 9), "rv_f": u(0.7, 0.85),
        "ra_w": u(30, 42), "ra_len": u(34, 48),
        "quality": {"Good": 0.0, "Medium": 0.5, "Poor": 1.0}[meta["ImageQuality"]],
        "views": {},
    }
    for view in ("2CH", "4CH"):
        p["views"][view] = {
            "apex": (u(-8, 8) + (7.0 if view == "4CH" else 0.0), u(16, 30)),
            "tilt": math.radians(u(-12, 12)), "curv": u(-0.05, 0.05), "w_scale": u(0.9, 1.1),
            "endo": rng.normal(0, 0.05, (2, 3)), "thick": rng.normal(0, 0.12, (2, 3)),
            "uw": u(0.6, 0.8), "pp": u(1.6, 2.3), "taper": u(0.08, 0.2), "t_apex": u(0.6, 0.85),
            "la_tilt": math.radians(u(-14, 14)), "la_c": u(0.3, 0.5), "la": rng.normal(0, 0.06, (2, 2)),
            "drop": rng.normal(0, 1.0, (2, 4)), "peri": u(2.0, 4.0), "lung": u(0.0, 22.0, 2),
        }
    return meta, p


_LA_MAX_WIDENING = 0.9  # mm of atrial half-width gained per mm below the mitral plane, at most
_MITRAL_INSET_MM = 1.5  # the atrial opening's half-width is at least this much below the cavity's


def _echo_tables(p: dict, view: str, phase: str) -> dict:
    """1-D profiles along the LV long axis (distance ``a`` from the endocardial apex, mm)."""
    vp = p["views"][view]
    es = phase == "ES"
    L_ed = p["L"]
    W = p["W"] * vp["w_scale"]
    T = p["T"]
    fl = p["f_l"] if es else 1.0
    L = L_ed * fl
    la_len = p["la_len"] * (p["la_es"] if es else 1.0)
    la_w = p["la_w"] * (math.sqrt(p["la_es"]) if es else 1.0)
    t_ap = T * vp["t_apex"]
    a_min, a_max = -t_ap - 6.0, L_ed + p["la_len"] * p["la_es"] + 12.0
    n = 400
    a = np.linspace(a_min, a_max, n)
    ue = np.clip(a / fl / L_ed, 0.0, 1.0)  # material coordinate along the ED cavity

    def endo_ed(side):
        return (W / 2) * _lv_profile(ue, vp["uw"], vp["pp"], vp["taper"]) * (1.0 + _sin_series(vp["endo"][side], ue))

    def thick(side):
        apical = vp["t_apex"] + (1 - vp["t_apex"]) * np.clip(ue / 0.3, 0, 1)  # thinner at the apex
        return T * (1.0 + _sin_series(vp["thick"][side], ue)) * apical

    # The tables are continuous and extend past the ends of each structure (the LV profiles stay
    # constant beyond the mitral plane, the atrial ones before it): the ends are cut exactly in
    # _echo_geometry by the planes ``a = L`` and ``a = L + la_len``. Zeroing a table past an end
    # instead would make the linear interpolation between samples taper the cavity, the wall and
    # the atrium over the last ~0.4 mm, leaving myocardium specks and sealed background pixels on
    # the mitral line.
    out = {"a_min": a_min, "da": (a_max - a_min) / (n - 1), "n": n, "L": L}
    tabs = []
    h_mv = []  # cavity half-widths at the mitral plane
    for side in (0, 1):  # 0: right (+t), 1: left (-t; the septum in 4CH)
        he = endo_ed(side)
        hp = np.where(a >= 0, he + np.maximum(thick(side), 3.0), 0.0)
        cap = (W / 2 + T) * _lv_profile((a / fl + t_ap) / (L_ed + t_ap), vp["uw"], vp["pp"], 0.0)
        hp = np.maximum(hp, np.where(a >= -t_ap, cap, 0.0))
        if es:
            fw = p["f_w"] + (1.0 - p["f_w"]) * p["akinesia"] * np.exp(-((ue / 0.35) ** 2))
            hs = he * fw
            hp = np.sqrt(np.maximum(hs**2 + hp**2 - he**2, 0.0))
            he = hs
        tabs += [he, hp]
        h_mv.append(float(he[-1]))  # ue = 1 from the mitral plane on
    # left atrium below the mitral plane, the leaflets bowing into it
    h0 = 0.85 * 0.5 * (h_mv[0] + h_mv[1])
    v = (a - L) / la_len
    c = vp["la_c"]
    for side in (0, 1):
        # the atrial opening lies inside the annulus on each side (an asymmetric cavity can be
        # narrower than h0 on one side): an atrium as wide as the cavity's corner would seal
        # background pixels between the corner, the atrium and the wall
        h0s = min(h0, h_mv[side] - _MITRAL_INSET_MM)
        rise = h0s + (la_w / 2 - h0s) * np.sin(0.5 * np.pi * np.clip(v / c, 0, 1))
        fall = (la_w / 2) * np.sqrt(np.clip(1.0 - ((v - c) / (1 - c)) ** 2, 0.0, None))
        h = np.where(v < c, rise, fall) * (1.0 + _sin_series(vp["la"][side], np.clip(v, 0, 1)))
        # below the annulus the atrial wall leaves the mitral plane at 48 degrees or steeper (in the
        # image, with the atrium's tilt): the background between the plane and a wall that widens
        # faster, a wedge narrower than 45 degrees, would rasterise into sealed pixels
        outward = _LA_MAX_WIDENING - (1.0 if side == 0 else -1.0) * math.tan(vp["la_tilt"])
        tabs.append(np.minimum(h, h0s + outward * np.clip(a - L, 0.0, None)))
    # centreline (slightly curved long axis), RV width on the septal side (4CH)
    tc = vp["curv"] * L_ed * 4 * ue * (1 - ue) + np.tan(vp["la_tilt"]) * np.clip(a - L, 0, None)
    tabs.append(tc)
    tv = L - p["tv_offset"] * fl
    rv_a0 = p["rv_apex"] * L_ed
    urv = np.clip((tv - a) / max(tv - rv_a0, 1.0), 0.0, 1.0)  # 0 at the tricuspid plane, 1 at the RV apex
    w_rv = p["rv_w"] * (p["rv_f"] if es else 1.0) * (1.0 - urv) ** 0.7 * ((a >= rv_a0) & (a <= tv))
    tabs.append(w_rv)
    # dropout-prone stretches of each wall (random smooth field along the axis)
    for side in (0, 1):
        tabs.append(0.5 + 0.5 * np.tanh(_sin_series(vp["drop"][side], np.clip(a / L_ed, 0, 1.2))))
    out["tabs"] = np.stack(tabs).astype(np.float32)  # he_R, hp_R, he_L, hp_L, la_R, la_L, tc, w_rv, drop_R, drop_L
    out["tv"] = tv
    out["la_len"] = la_len
    out["ra"] = (p["ra_w"] * (math.sqrt(p["la_es"]) if es else 1.0), p["ra_len"] * (p["la_es"] if es else 1.0))
    return out


_FRAME_WALL_MM = 3.0  # inner wall always inside the sector (the thinnest wall _echo_tables draws)
_FRAME_MARGIN_MM = 1.0  # clearance of the framed structures from the sector's edge


def _echo_framing(p: dict, view: str, v: EchoVendor) -> tuple[float, float]:
    """Apex position (x, y in mm) that keeps the labelled heart of a view inside the sector.

    The sonographer's framing: the LV cavity, the innermost ``_FRAME_WALL_MM`` of its wall (the
    whole wall where thinner) and the left atrium, at ED and at ES, must lie ``_FRAME_MARGIN_MM``
    inside the sector's lateral edges. The outer wall may still leave the sector, as in real
    acquisitions, but the sector never cuts the myocardium to zero width (which would break it in
    two and open the cavity to the background). The drawn apex position is kept when it
    satisfies this (then nothing moves); otherwise the heart is shifted sideways, towards the
    beam's axis, by the least amount that does, and only if no sideways shift is enough, moved
    deeper (by the least amount, with the shift that then fits). The image and the labels are
    rendered from the same, framed geometry. Closed form: a point (x, y) is inside the margin iff
    ``|x| <= k y - m`` with ``k = tan(half angle)``.
    """
    vp = p["views"][view]
    xa, ya = vp["apex"]
    ca, sa = math.cos(vp["tilt"]), math.sin(vp["tilt"])
    t_ap = p["T"] * vp["t_apex"]  # apical wall thickness (as in _echo_tables)
    pts = []
    for phase in ("ED", "ES"):
        tb = _echo_tables(p, view, phase)
        a = tb["a_min"] + tb["da"] * np.arange(tb["n"])
        he_r, hp_r, he_l, hp_l, la_r, la_l, tc = tb["tabs"][:7].astype(float)
        lv = (a >= -min(_FRAME_WALL_MM, t_ap)) & (a <= tb["L"])  # with the apical cap's innermost part
        la = (a >= tb["L"]) & (a <= tb["L"] + tb["la_len"])
        right = np.where(lv, np.minimum(he_r + _FRAME_WALL_MM, hp_r), la_r)
        left = np.where(lv, np.minimum(he_l + _FRAME_WALL_MM, hp_l), la_l)
        keep = lv | la
        pts += [(a[keep], tc[keep] + right[keep]), (a[keep], tc[keep] - left[keep])]
    a = np.concatenate([q[0] for q in pts])
    t = np.concatenate([q[1] for q in pts])
    x = xa + ca * t + sa * a  # heart frame -> image (the inverse of _echo_geometry's rotation)
    y = ya - sa * t + ca * a
    half = math.radians(v.sector_deg) / 2
    k, m = math.tan(half), _FRAME_MARGIN_MM / math.cos(half)
    lo, hi = float(np.max(-k * y + m - x)), float(np.min(k * y - m - x))  # admissible shifts: lo..hi
    dy = max(0.0, (lo - hi) / (2 * k))  # deeper by dy widens the admissible range by 2 k dy
    lo, hi = lo - k * dy, hi + k * dy
    shift = min(max(0.0, lo), hi) if lo <= hi else 0.5 * (lo + hi)
    return float(xa + shift), float(ya + dy)


def _echo_geometry(p: dict, view: str, tb: dict, x: np.ndarray, y: np.ndarray) -> dict:
    """Signed inside distances (mm) of every structure at points (x lateral, y depth)."""
    vp = p["views"][view]
    xa, ya = vp["apex"]
    ca, sa = math.cos(vp["tilt"]), math.sin(vp["tilt"])
    dx, dy = x - np.float32(xa), y - np.float32(ya)
    a = sa * dx + ca * dy  # along the long axis, from the apex towards the base
    t = ca * dx - sa * dy  # across (positive: right of the image)
    f = np.clip((a - tb["a_min"]) / tb["da"], 0, tb["n"] - 1.001)
    i0 = f.astype(np.intp)
    w = (f - i0).astype(np.float32)
    T = tb["tabs"]
    he_r, hp_r, he_l, hp_l, la_r, la_l, tc, w_rv, dr_r, dr_l = T[:, i0] * (1 - w) + T[:, i0 + 1] * w
    tp = t - tc
    right = tp >= 0
    at = np.abs(tp)
    L = tb["L"]
    base = L - a
    g = {"a": a, "t": tp, "L": L}
    g["endo_lat"] = np.where(right, he_r, he_l) - at
    g["endo"] = np.minimum(g["endo_lat"], base)
    g["epi"] = np.minimum(np.where(right, hp_r, hp_l) - at, base)
    g["la_lat"] = np.where(right, la_r, la_l) - at
    g["la"] = np.minimum(np.minimum(g["la_lat"], a - L), L + tb["la_len"] - a)
    g["drop"] = np.where(right, dr_r, dr_l)
    if view == "4CH":
        inner = -hp_l
        g["rv"] = np.where(w_rv > 0.5, np.minimum(inner - tp, tp - (inner - w_rv)), -100.0)
        # right atrium beside the left atrium, below the tricuspid plane
        ra_w, ra_len = tb["ra"]
        b = a - tb["tv"]
        sc = -(p["la_w"] / 2 + 4.0 + ra_w / 2)
        rn = np.sqrt(((tp - sc) / (ra_w / 2)) ** 2 + ((b - ra_len / 2) / (ra_len / 2)) ** 2)
        g["ra"] = (1.0 - rn) * min(ra_w, ra_len) / 2
    return g


def _echo_labels(g: dict) -> np.ndarray:
    # ``la >= 0`` (as the image's atrial blood): a pixel exactly on the mitral plane (a == L, where
    # the cavity's ``endo = L - a`` and the atrium's ``la = a - L`` are both 0) is atrium, not a
    # background pixel sealed between the LV and the LA
    lab = np.zeros(g["a"].shape, np.uint8)
    lab[g["la"] >= 0] = 3
    lab[g["epi"] > 0] = 2
    lab[g["endo"] > 0] = 1
    return lab


def _echo_echogenicity(p: dict, view: str, g: dict, x: np.ndarray, y: np.ndarray, v: EchoVendor,
                       tex: np.ndarray) -> np.ndarray:
    """Backscatter power (dB relative to myocardium) at points; walls along the beam drop out."""
    vp = p["views"][view]
    r = np.sqrt(x * x + y * y) + np.float32(1e-3)
    # extracardiac tissue, darker (lung) far to the sides of the heart
    db = -14.0 + 6.0 * tex
    side = np.abs(g["t"]) - (p["W"] / 2 + p["T"] + 18.0)
    db = db - np.where(g["t"] > 0, vp["lung"][0], vp["lung"][1]) * np.clip(side / 25.0, 0.0, 1.0)
    # chest wall in the near field: skin, fat and muscle layers
    db = np.where(r < vp["chest"], 3.0 + 3.0 * np.cos(r * 1.1) + 2.0 * tex, db)

    def band(d, width):  # the first ``width`` mm outside a surface
        return (d < 0) & (d >= -width)

    blood = v.blood_db
    db = np.where(band(g["epi"], vp["peri"]), 7.0 + 2.0 * tex, db)  # bright pericardium
    db = np.where(band(g["la"], 2.5), 0.0 + 2.0 * tex, db)  # atrial wall
    db = np.where(g["la"] >= 0, blood, db)
    if "rv" in g:
        db = np.where(band(g["rv"], 3.0) & (g["epi"] < 0), 1.0 + 2.0 * tex, db)
        db = np.where(band(g["ra"], 2.5) & (g["la"] < -2.5), 0.0 + 2.0 * tex, db)
        db = np.where((g["ra"] >= 0) & (g["la"] < -2.5), blood, db)
        db = np.where((g["rv"] >= 0) & (g["epi"] < 0), blood, db)
    # myocardium; echo loss where the wall runs along the beam (lateral walls), not at the apex
    myo = (g["epi"] > 0) & (g["endo"] <= 0)
    ax_x, ax_y = math.sin(vp["tilt"]), math.cos(vp["tilt"])
    along = np.abs((x * ax_x + y * ax_y) / r)  # |cos| of the angle between beam and long axis
    drop = (v.dropout * (0.45 + 0.55 * p["quality"]) * np.clip((along - 0.82) / 0.15, 0, 1)
            * np.clip(g["a"] / 30.0, 0.0, 1.0) * g["drop"])
    db_myo = 2.5 * tex + 30.0 * np.log10(np.clip(1.0 - drop, 0.03, 1.0))
    db = np.where(myo, db_myo, db)
    db = np.where(g["endo"] > 0, blood, db)
    # mitral leaflets: a thin bright line along the atrial side of the mitral plane, across the
    # atrial opening, the coaptation point bowing into the atrium; on the ventricular side, the
    # annulus at the corners of the cavity
    atrial = g["a"] > g["L"]
    h = np.where(atrial, 2.0, np.maximum(g["endo_lat"] + np.abs(g["t"]), 2.0))
    bow = 3.0 * np.clip(1.0 - (g["t"] / h) ** 2, 0, 1)
    leaf = (np.abs(g["a"] - g["L"] - bow) < 0.5) & (np.where(atrial, g["la_lat"], g["endo_lat"]) > -1.0)
    db = np.where(leaf, -4.0 + 3.0 * tex, db)
    # near-field clutter: haze over the apex
    return np.maximum(db, v.clutter_db - r / 3.0 + 5.0 * tex).astype(np.float32)


def _echo_image(p: dict, view: str, phase: str, v: EchoVendor,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One scan-converted echo image (X, Y) in 0..255 and its label map."""
    tb = _echo_tables(p, view, phase)
    half = math.radians(v.sector_deg) / 2
    depth = v.depth_mm
    # beam geometry: polar samples (range x angle); speckle is formed here
    dr = min(v.psf_axial_mm / 1.5, 0.35)
    nr = int(depth / dr) + 1
    na = int(2 * half * depth * 0.55 / v.spacing_mm) + 1
    rs = (np.arange(nr, dtype=np.float32) * dr)[:, None]
    al = np.linspace(-half, half, na, dtype=np.float32)[None, :]
    xp, yp = rs * np.sin(al), rs * np.cos(al)
    # tissue texture (shared by ED/ES of a view) and its echogenicity
    tex = ndi.zoom(p["views"][view]["tex"], (nr / 48, na / 24), order=1, grid_mode=True, mode="nearest")[:nr, :na]
    g = _echo_geometry(p, view, tb, xp, yp)
    db = _echo_echogenicity(p, view, g, xp, yp, v, tex)
    amp = np.power(np.float32(10.0), db / np.float32(20.0))
    # complex scatterers, band-limited by the point-spread function -> Rayleigh speckle
    sr = v.psf_axial_mm / dr
    sa = math.radians(v.psf_lateral_deg) / (2 * half / (na - 1))
    z = (rng.standard_normal((nr, na), dtype=np.float32) + 1j * rng.standard_normal((nr, na), dtype=np.float32)) * amp
    norm = np.float32(math.sqrt(2.0 * math.pi * sr * sa))  # so that the mean envelope power is ~ amp**2
    zf = (ndi.gaussian_filter(z.real, (sr, sa)) + 1j * ndi.gaussian_filter(z.imag, (sr, sa))) * norm
    noise = 10 ** (v.noise_db / 20) * (rng.standard_normal((nr, na), dtype=np.float32)
                                       + 1j * rng.standard_normal((nr, na), dtype=np.float32)) / math.sqrt(2)
    env = np.abs(zf + noise)
    # residual attenuation (two-way) after TGC, weaker signal at the sector edges
    env *= np.power(np.float32(10.0), -2 * v.attenuation_db_cm * rs / np.float32(10 * 20))
    env *= 1.0 - 0.35 * (al / half) ** 4
    # log compression to 8-bit grey levels: myocardium ~ 20 dB below white (before the gain)
    grey = np.clip((20 * np.log10(env + 1e-6) + v.gain_db - 20.0 + v.dynamic_range_db)
                   / v.dynamic_range_db, 0.0, 1.0) * 255.0
    # scan conversion onto the Cartesian image, black outside the sector
    nx = int(math.ceil(2 * depth * math.sin(half) / v.spacing_mm)) + 8
    ny = int(math.ceil(depth / v.spacing_mm)) + 4
    xs = ((np.arange(nx, dtype=np.float32) - (nx - 1) / 2) * v.spacing_mm)[:, None]
    ys = (np.arange(ny, dtype=np.float32) * v.spacing_mm)[None, :]
    rr = np.sqrt(xs * xs + ys * ys)
    aa = np.arctan2(np.broadcast_to(xs, rr.shape), np.broadcast_to(ys, rr.shape))
    cone = (np.abs(aa) <= half) & (rr <= depth)
    img = ndi.map_coordinates(grey.astype(np.float32), [rr / dr, (aa + half) / (2 * half) * (na - 1)], order=1,
                              mode="constant", cval=0.0)
    img = np.where(cone, img, 0.0).astype(np.float32)
    gx, gy = np.broadcast_to(xs, rr.shape), np.broadcast_to(ys, rr.shape)
    lab = _echo_labels(_echo_geometry(p, view, tb, gx, gy))
    lab[~cone] = 0
    return img, lab


def phantom_echo_patient(index: int, *, seed: int = 0, vendor: str = "A") -> list[Case]:
    """One procedural echocardiography patient: apical 2CH and 4CH views at ED and ES.

    The anatomy depends only on ``(seed, index)``; the vendor changes the sector (and so where the
    heart is framed in it), the pixel size, speckle, gain, attenuation and dropout. Labels follow the echo convention
    (0 background, 1 LV cavity, 2 LV myocardium, 3 left atrium); the right heart chambers of
    the 4CH view are visible but labelled background, as in CAMUS.

    Args:
        index: patient number (>= 0); the patient id is ``phantom{index:04d}``.
        seed: dataset seed (>= 0); the same seed and index always give the same arrays.
        vendor: one of :data:`ECHO_VENDORS`.

    Returns:
        Four cases ``[2CH ED, 2CH ES, 4CH ED, 4CH ES]``: float32 images (X, Y, 1) with grey levels
        0..255, the transducer at the top (y = 0) and the sector black outside; uint8 labels;
        spacing ``(s, s, 1.0)`` mm. ``meta`` holds the vendor, the group, the drawn parameters
        and CAMUS-style info under CAMUS's names (``ED``, ``ES``, ``NbFrame``, ``Sex``, ``Age``,
        ``ImageQuality``, ``EF`` in %, ``FrameRate``); ``frame`` is the case's frame number.

    Raises:
        ValueError: unknown vendor, negative index or seed.
    """
    _check_args(index, seed)
    v: EchoVendor = _vendor(vendor, ECHO_VENDORS, "phantom-echo")
    rng_a = _rng(seed, index, 0, "echo")
    meta, p = _draw_echo_anatomy(rng_a)
    for view in ("2CH", "4CH"):
        p["views"][view]["tex"] = ndi.gaussian_filter(rng_a.normal(0.0, 1.0, (48, 24)), 1.0, mode="wrap") * 2.5
        p["views"][view]["chest"] = rng_a.uniform(7.0, 14.0)
    rng_i = _rng(seed, index, 1 + zlib.crc32(vendor.encode()), "echo")
    meta.update({"vendor": vendor, "source": "procedural phantom"})
    out = []
    for view in ("2CH", "4CH"):
        p["views"][view]["apex"] = _echo_framing(p, view, v)
        for ph in ("ED", "ES"):
            img, lab = _echo_image(p, view, ph, v, rng_i)
            out.append(Case(
                image=img[:, :, None], label=lab[:, :, None], spacing=(float(v.spacing_mm), float(v.spacing_mm), 1.0),
                patient_id=phantom_patient_id("phantom-echo", index), phase=ph, modality="echo", view=view, dataset="phantom-echo",
                meta=dict(meta, frame=meta[ph]),
            ))
    return out


# --------------------------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------------------------


def phantom_patient_id(dataset: str, index: int) -> str:
    """The id of phantom patient ``index``: ``phantom003`` (MRI) or ``phantom0003`` (echo).

    Args:
        dataset: ``"phantom-mri"`` or ``"phantom-echo"``.
        index: patient number (>= 0).

    Returns:
        The patient id.
    """
    return f"phantom{int(index):0{3 if dataset == 'phantom-mri' else 4}d}"


@dataclass(frozen=True)
class PhantomPatient:
    """One phantom patient, as a phantom dataset lists it: what :func:`read_phantom_patient` draws.

    Attributes:
        dataset: ``"phantom-mri"`` or ``"phantom-echo"``.
        index: patient number.
        seed: dataset seed.
        vendor: the simulated scanner.
    """

    dataset: str
    index: int
    seed: int = 0
    vendor: str = "A"

    @property
    def name(self) -> str:
        """The patient id (:func:`phantom_patient_id`)."""
        return phantom_patient_id(self.dataset, self.index)


@dataclass(frozen=True)
class PhantomSet:
    """Which phantom patients to draw: the source a phantom dataset reads instead of a folder.

    Attributes:
        dataset: ``"phantom-mri"`` or ``"phantom-echo"``.
        n_patients: how many patients.
        seed: dataset seed.
        vendors: the vendors the patients cycle through (None: all of the modality's).
        first_index: index of the first patient.
    """

    dataset: str
    n_patients: int
    seed: int = 0
    vendors: tuple[str, ...] | None = None
    first_index: int = 0


def phantom_patients(dataset: str, n_patients: int, *, seed: int = 0, vendors: tuple[str, ...] | None = None,
                     first_index: int = 0) -> list[PhantomPatient]:
    """The patients ``first_index <= i < first_index + n_patients``, vendors cycling (``vendors[i % len]``).

    Args:
        dataset: ``"phantom-mri"`` or ``"phantom-echo"``.
        n_patients: how many patients (>= 0).
        seed: dataset seed (>= 0).
        vendors: vendor names the patients cycle through; None means all of the modality's
            vendors in order (``MRI_VENDORS`` or ``ECHO_VENDORS``).
        first_index: index of the first patient (to generate disjoint batches).

    Returns:
        One :class:`PhantomPatient` each, in index order.

    Raises:
        ValueError: unknown dataset or vendor, negative count, index or seed.
    """
    if dataset not in PHANTOM_DATASETS:
        raise ValueError(f"unknown phantom dataset {dataset!r}; choose one of {PHANTOM_DATASETS}")
    table = MRI_VENDORS if dataset == "phantom-mri" else ECHO_VENDORS
    if isinstance(vendors, str):
        vendors = (vendors,)
    vendors = tuple(table) if vendors is None else tuple(vendors)
    if not vendors:
        raise ValueError(f"{dataset}: vendors is empty; give at least one of {sorted(table)} (or None for all)")
    for name in vendors:
        _vendor(name, table, dataset)
    if int(n_patients) < 0:
        raise ValueError(f"n_patients must be >= 0, got {n_patients}")
    _check_args(first_index, seed)
    return [PhantomPatient(dataset, i, int(seed), vendors[i % len(vendors)])
            for i in range(int(first_index), int(first_index) + int(n_patients))]


def read_phantom_patient(patient: PhantomPatient) -> list[Case]:
    """Draw one phantom patient (:func:`phantom_mri_patient` or :func:`phantom_echo_patient`).

    Args:
        patient: which patient.

    Returns:
        Its Cases.
    """
    make = phantom_mri_patient if patient.dataset == "phantom-mri" else phantom_echo_patient
    return make(patient.index, seed=patient.seed, vendor=patient.vendor)


def phantom_cases(dataset: str, n_patients: int, *, seed: int = 0, vendors: tuple[str, ...] | None = None,
                  first_index: int = 0) -> list[Case]:
    """Cases of ``n_patients`` phantom patients (all phases, and views for echo).

    Patient ``i`` (``first_index <= i < first_index + n_patients``) is
    ``phantom_*_patient(i, seed=seed, vendor=vendors[i % len(vendors)])``: a patient is the same
    whichever batch it is generated in.

    Args:
        dataset: ``"phantom-mri"`` or ``"phantom-echo"``.
        n_patients: how many patients (>= 0).
        seed: dataset seed (>= 0).
        vendors: vendor names the patients cycle through; None means all of the modality's
            vendors in order (``MRI_VENDORS`` or ``ECHO_VENDORS``).
        first_index: index of the first patient (to generate disjoint batches).

    Returns:
        A flat list of :class:`Case`: ED then ES per MRI patient; 2CH ED, 2CH ES, 4CH ED, 4CH ES
        per echo patient.

    Raises:
        ValueError: unknown dataset or vendor, negative count, index or seed.
    """
    patients = phantom_patients(dataset, n_patients, seed=seed, vendors=vendors, first_index=first_index)
    return [case for patient in patients for case in read_phantom_patient(patient)]


def list_phantom_patients(dataset: str, source: PhantomSet, *, split: str | None = None) -> list[PhantomPatient]:
    """The patients of a :class:`PhantomSet` (a phantom dataset's ``list_patients``).

    Args:
        dataset: ``"phantom-mri"`` or ``"phantom-echo"``.
        source: which patients.
        split: None (phantoms have no official split).

    Returns:
        The patients, as :func:`phantom_patients` lists them.

    Raises:
        DataError: ``source`` is a folder or another dataset's set (a phantom is generated).
    """
    if not isinstance(source, PhantomSet) or source.dataset != dataset:
        raise DataError(f"{source}: {dataset} is generated, not read from a folder; "
                        "load it with load_cases(n_patients=...), or give a PhantomSet of it")
    if split is not None:
        raise ValueError(f"{dataset} has no official split; pass split=None")
    return phantom_patients(dataset, source.n_patients, seed=source.seed, vendors=source.vendors,
                            first_index=source.first_index)


def phantom_example(dataset: str, out_dir: str | Path | None = None, *, n_patients: int = 2, seed: int = 0,
                    layout: str | None = None) -> PhantomSet:
    """A phantom dataset's ``write_example``: it writes nothing, a phantom is generated.

    Args:
        dataset: ``"phantom-mri"`` or ``"phantom-echo"``.
        out_dir: unused (the registry's ``write_example`` signature).
        n_patients: how many patients.
        seed: dataset seed.
        layout: None (a phantom has no layout on disk).

    Returns:
        The :class:`PhantomSet` of those patients.
    """
    if layout is not None:
        raise ValueError(f"{dataset} is generated and has no layout on disk; pass layout=None")
    return PhantomSet(dataset, n_patients, seed=seed)


DATASETS = tuple(
    DatasetSpec(
        name=name,
        modality=modality,
        structures=tuple(structure_names(modality)),
        label_map=IDENTITY_LABEL_MAP,
        list_patients=partial(list_phantom_patients, name),
        read_patient=read_phantom_patient,
        load=partial(phantom_cases, name),
        write_example=partial(phantom_example, name),
        needs_folder=False,
        order=order,
        description="built in, generated on the fly, deterministic per seed",
    )
    for order, (name, modality) in enumerate(zip(PHANTOM_DATASETS, ("mri", "echo")))
)
"""The datasets this module generates (found by :mod:`cardigan_utils.data.registry`)."""
