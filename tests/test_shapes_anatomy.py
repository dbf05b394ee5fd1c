"""Anatomical plausibility checks (shapes.anatomy: plausibility_*) and their post-processing.

Hand-made label maps: a valid slice passes every check, and each deliberate defect (Painchaud's
criteria: holes, disconnections, frontiers, concavity, circularity...) fails exactly the check(s)
written next to it; slice_level on hand-made slices. The real-ACDC tests are skipped unless CARDIGAN_ACDC_DIR is set,
the real-CAMUS one unless CARDIGAN_CAMUS_DIR is.
"""

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.morphology import convex_hull_image

from cardigan_utils.shapes import (
    PLAUSIBILITY_CHECKS,
    PLAUSIBILITY_DEFAULTS,
    anatomy,
    plausibility_checks,
    plausibility_report,
    plausibility_summary,
    postprocess_masks,
    slice_level,
)

MRI_CHECKS = list(PLAUSIBILITY_CHECKS["mri"])
ECHO_CHECKS = list(PLAUSIBILITY_CHECKS["echo"])


def failed(mask, modality="mri", **bounds):
    """The set of checks the mask fails."""
    return {k for k, ok in plausibility_checks(mask, modality=modality, **bounds).items() if not ok}


# ---------------------------------------------------------------------------------------------
# Hand-made MRI slices (0 bg, 1 RV, 2 MYO, 3 LV)
# ---------------------------------------------------------------------------------------------

SIZE, CX, CY = 64, 36, 32  # LV centre at (row CY, column CX); the RV sits on its left


def mri_slice(r_lv=8, r_myo=12, r_rv=10):
    """LV disc, MYO ring, RV crescent on the left touching the MYO (like tests/conftest.disk_case)."""
    y, x = np.mgrid[:SIZE, :SIZE]
    r = np.hypot(y - CY, x - CX)
    m = np.zeros((SIZE, SIZE), np.uint8)
    m[r < r_myo] = 2
    m[r < r_lv] = 3
    m[(np.hypot(y - CY, x - (CX - r_myo - 2)) < r_rv) & (m == 0)] = 1
    return m


def rv_myo_contact():
    """(row, col) of the RV pixel at the middle of the RV-MYO contact (on row CY)."""
    m = mri_slice()
    col = max(c for c in range(SIZE) if m[CY, c] == 1)
    assert m[CY, col + 1] == 2
    return CY, col


def _missing_rv(m):
    m[m == 1] = 0


def _two_lv(m):
    m[CY - 1 : CY + 1, CX - 8 : CX + 9][m[CY - 1 : CY + 1, CX - 8 : CX + 9] == 3] = 2  # MYO bar across the cavity


def _myo_speck(m):
    m[2, SIZE - 3] = 2  # one stray MYO pixel in a far corner


def _myo_hole(m):
    m[CY, CX + 10] = 0  # a background pixel inside the wall (radius 8..12)


def _lv_hole(m):
    m[CY + 3, CX + 2] = 0  # a background pixel inside the cavity


def _lv_touches_background(m):
    m[CY - 1 : CY + 2, CX + 7 :][m[CY - 1 : CY + 2, CX + 7 :] == 2] = 0  # a notch through the lateral wall


def _rv_touches_lv(m):
    row, col = rv_myo_contact()
    m[row, col : CX][m[row, col : CX] == 2] = 1  # an RV channel through the septum to the cavity


def _rv_away_from_myo(m):
    near = ndi.binary_dilation(m >= 2, iterations=2)
    m[(m == 1) & near] = 0  # a 2-pixel gap between RV and MYO


def _background_island(m):
    row, col = rv_myo_contact()
    m[row, col] = 0  # sealed by RV and MYO: a gap inside the heart, not a hole of MYO or LV


def _absurd_rv(m):
    y, x = np.mgrid[:SIZE, :SIZE]
    m[(np.hypot(y - CY, x - CX + 8) < 30) & (x < CX) & (m == 0)] = 1  # an RV 3.5 x the LV + MYO


def _rv_hole(m):
    m[CY, CX - 20] = 0  # a background pixel inside the RV


def _hole_between_lv_and_myo(m):
    m[CY, CX + 7 : CX + 9] = 0  # background where the cavity meets the wall, sealed by both


def _rv_inside_myo(m):
    m[m == 1] = 0
    m[CY - 1 : CY + 2, CX + 9 : CX + 11] = 1  # the only RV: an island inside the wall


def _star_cavity(m):
    y, x = np.mgrid[:SIZE, :SIZE]
    r, t = np.hypot(y - CY, x - CX), np.arctan2(y - CY, x - CX)
    m[m == 3] = 2
    m[(r < 5 + 5 * np.cos(5 * t).clip(0)) & (r < 12)] = 3  # a five-pointed cavity


def _sliver_cavity(m):
    m[m == 3] = 2
    m[CY - 1 : CY + 1, CX - 9 : CX + 10] = 3  # a 2 x 19 slit


def _bean_heart(m):
    y, x = np.mgrid[:SIZE, :SIZE]
    d = np.hypot(y - CY, x - CX - 11)
    m[(d < 10) & (m >= 2)] = 0  # a deep bite out of the lateral side...
    m[(d < 13) & (m == 3)] = 2  # ...lined by the wall


def _hooked_rv(m):
    m[6:CY, CX - 16 : CX - 14][m[6:CY, CX - 16 : CX - 14] == 0] = 1  # an RV arm up from the RV...
    m[6:8, CX - 16 : CX + 22] = 1  # ...over the heart...
    m[6 : CY + 6, CX + 20 : CX + 22] = 1  # ...and down its far side, round a bay of background


MRI_DEFECTS = {
    "two LV components": (_two_lv, {"single_component_LV", "circular_LV", "convex_LV"}),
    "speck of MYO far away": (_myo_speck, {"single_component_MYO", "convex_MYO", "convex_RV"}),  # hulls reach out
    "hole in MYO": (_myo_hole, {"no_holes_MYO", "no_background_inside_heart"}),
    "hole in LV": (_lv_hole, {"no_holes_LV", "no_background_inside_heart"}),
    "hole in RV": (_rv_hole, {"no_holes_RV", "no_background_inside_heart"}),
    "hole between LV and MYO": (_hole_between_lv_and_myo,
                                {"no_holes_between_LV_MYO", "no_background_inside_heart"}),
    "background island between RV and MYO": (_background_island, {"no_holes_between_RV_MYO", "no_background_inside_heart"}),
    "LV touching background at a mid slice": (_lv_touches_background, {"lv_not_touching_background"}),
    "RV touching LV": (_rv_touches_lv, {"rv_not_touching_lv"}),
    "RV away from MYO": (_rv_away_from_myo, {"rv_touches_myo"}),
    "RV inside the MYO ring": (_rv_inside_myo, {"no_holes_MYO"}),
    "star-shaped cavity": (_star_cavity, {"convex_LV", "circular_LV"}),
    "sliver cavity": (_sliver_cavity, {"circular_LV"}),
    "bean-shaped heart": (_bean_heart, {"convex_MYO", "convex_LV"}),
    "RV hooked over the LV": (_hooked_rv, {"convex_RV"}),
    "absurd RV/heart ratio": (_absurd_rv, {"plausible_ratios"}),
}


def defect(name, base=None):
    m = mri_slice() if base is None else base.copy()
    MRI_DEFECTS[name][0](m)
    return m


def test_valid_mri_slice_passes_every_check():
    m = mri_slice()
    checks = plausibility_checks(m)
    assert list(checks) == MRI_CHECKS
    assert all(checks.values()), checks
    assert all(type(v) is bool for v in checks.values())


@pytest.mark.parametrize("name", list(MRI_DEFECTS))
def test_each_mri_defect_fails_exactly_its_checks(name):
    m = defect(name)
    assert not np.array_equal(m, mri_slice()), "the defect must change the mask"
    assert failed(m) == MRI_DEFECTS[name][1]


def test_absurd_myo_ratio_and_bounds_are_configurable():
    thin_wall = mri_slice(r_lv=20, r_myo=21, r_rv=8)  # a 1-pixel wall round a huge cavity: MYO/LV ~ 0.1
    assert failed(thin_wall) == {"plausible_ratios"}
    assert failed(thin_wall, myo_lv_ratio=(0.05, 100.0)) == set()
    assert failed(defect("absurd RV/heart ratio"), rv_epi_ratio=(0.0, 100.0)) == set()
    assert failed(defect("star-shaped cavity"), max_convexity_defect_LV=0.9, min_circularity_LV=0.1) == set()


def apex_slice():
    """An apical slice: a disc of myocardium round a small cavity, no RV."""
    y, x = np.mgrid[:SIZE, :SIZE]
    r = np.hypot(y - CY, x - CX)
    return np.where(r < 2, 3, np.where(r < 8, 2, 0)).astype(np.uint8)


def test_slice_level_from_the_shape():
    assert slice_level(mri_slice()) == "mid"
    assert slice_level(apex_slice()) == "apical"
    assert slice_level(np.where(apex_slice() == 3, 2, apex_slice())) == "apical"  # no cavity at all
    assert slice_level(mri_slice(r_lv=9, r_myo=11, r_rv=15)) == "basal"  # an RV larger than 0.6 x the LV + MYO
    no_rv = mri_slice()
    no_rv[no_rv == 1] = 0
    assert slice_level(no_rv) == "basal"  # a large open cavity without RV: above the RV's base
    small = mri_slice(r_lv=3, r_myo=6, r_rv=5)  # a whole heart under 9 % of the image
    assert slice_level(small) == "apical"
    batch = np.stack([mri_slice(), apex_slice(), no_rv])
    assert slice_level(batch).tolist() == ["mid", "apical", "basal"]
    assert slice_level(batch).tolist() == plausibility_report(batch, details=True)["level"].tolist()
    assert slice_level(echo_slice(), modality="echo") == "apical-view"
    with pytest.raises(ValueError, match="modality"):
        slice_level(mri_slice(), modality="ct")


def test_presence_follows_the_level():
    no_rv = mri_slice()
    no_rv[no_rv == 1] = 0  # read as basal: the RV may be absent there
    assert failed(no_rv) == set()
    assert failed(no_rv, require=("RV", "MYO", "LV")) == {"structures_present"}
    assert failed(apex_slice()) == set()  # apical: neither RV nor cavity needed
    closed = np.where(apex_slice() == 3, 2, apex_slice())
    assert failed(closed) == set()
    assert failed(closed, require=("MYO", "LV")) == {"structures_present"}
    # a cavity without its wall fails at any level
    bare = mri_slice()
    bare[bare == 2] = 0
    assert "structures_present" in failed(bare)
    assert failed(np.zeros((SIZE, SIZE), np.uint8), require=()) == {"structures_present"}  # empty slice
    # the base may open the cavity to the outflow tract, the middle may not
    basal = mri_slice(r_lv=9, r_myo=12, r_rv=17)
    assert slice_level(basal) == "basal" and failed(basal) == set()
    _lv_touches_background(basal)
    assert slice_level(basal) == "basal" and failed(basal) == set()
    assert failed(basal, max_lv_background_fraction_basal=0.0) == {"lv_not_touching_background"}


def test_specks_below_min_component_px():
    m = mri_slice()
    m[m == 1] = 0
    m[3, 3] = m[3, 4] = 1  # the only RV: 2 pixels, a speck with no structure (min_component_px=3)
    assert failed(m) == {"single_component_RV"}  # (no RV: read as basal)
    assert failed(m, require=("RV", "MYO", "LV")) == {"structures_present", "single_component_RV"}
    # with min_component_px=1 it is a real (tiny, detached) RV: the slice reads as apical
    assert failed(m, min_component_px=1) == {"rv_touches_myo", "convex_RV"}
    # a speck next to a present structure counts however small it is, and min_component_px does not hide it
    assert failed(defect("speck of MYO far away"), min_component_px=10) == {"single_component_MYO", "convex_MYO", "convex_RV"}


# the conventions below are shown on tiny squares: the shape criteria (hulls, circularity) and the
# base's allowance for an open cavity are switched off, so only the convention at stake can fail
CONVENTION = {"max_convexity_defect_LV": 1.0, "max_convexity_defect_MYO": 1.0, "min_circularity_LV": 0.0,
              "min_circularity_MYO": 0.0, "max_lv_background_fraction": 0.0, "max_lv_background_fraction_basal": 0.0}


def block(size=12):
    """A filled MYO square (rows/cols 2..9) on a 12x12 background."""
    m = np.zeros((size, size), np.uint8)
    m[2:10, 2:10] = 2
    return m


def test_components_are_8_connected():
    m = block()
    m[4:6, 4:6] = 3
    m[6:8, 6:8] = 3  # touches the first LV block by a corner only: one 8-connected component
    assert failed(m, require=("MYO", "LV"), **CONVENTION) == set()
    m = block()
    m[4:6, 4:6] = 3
    m[7:9, 7:9] = 3  # one pixel apart: two components
    assert failed(m, require=("MYO", "LV"), **CONVENTION) == {"single_component_LV"}


def test_holes_are_sealed_background_only():
    ring = block()
    ring[3:9, 3:9] = 0  # a 1-pixel MYO ring round background: a hole
    assert failed(ring, require=("MYO",), **CONVENTION) == {"no_holes_MYO", "no_background_inside_heart"}
    ring[2, 2] = 0  # remove one corner: the inside leaks out diagonally, so it is not a hole here
    assert ndi.binary_fill_holes(ring > 0)[3, 3]  # (scipy's default, 4-connected background, would fill it)
    assert failed(ring, require=("MYO",), **CONVENTION) == set()


def test_touching_means_sharing_an_edge():
    m = block()
    m[4:8, 4:8] = 3
    m[1:4, 3] = 0  # a background channel from the outside to (3, 3), diagonal to the LV corner (4, 4)
    assert failed(m, require=("MYO", "LV"), **CONVENTION) == set()
    m[3, 4] = 0  # now the background shares an edge with the LV
    assert failed(m, require=("MYO", "LV"), **CONVENTION) == {"lv_not_touching_background"}


def test_image_border_counts_as_background():
    m = np.zeros((SIZE, SIZE), np.uint8)
    m[:, :10] = 2
    m[20:40, :4] = 3  # an LV cavity reaching the image border is not enclosed
    assert failed(m, require=("MYO", "LV"), **CONVENTION) == {"lv_not_touching_background"}


# ---------------------------------------------------------------------------------------------
# Hand-made echo slices (0 bg, 1 LV, 2 MYO, 3 LA): apical view, apex at the top, base at row YB
# ---------------------------------------------------------------------------------------------

YB = 36


def echo_slice(la_shift=0, la_axes=(10, 9)):
    """LV cavity (half ellipse), MYO horseshoe open at the base, LA below the mitral line."""
    y, x = np.mgrid[:SIZE, :SIZE]
    inner = ((y - 28) / 14) ** 2 + ((x - 32) / 8) ** 2 < 1
    outer = ((y - 28) / 18) ** 2 + ((x - 32) / 12) ** 2 < 1
    m = np.zeros((SIZE, SIZE), np.uint8)
    m[outer & (y < YB)] = 2
    m[inner & (y < YB)] = 1
    la = (((y - YB - 4 - la_shift) / la_axes[0]) ** 2 + ((x - 32) / la_axes[1]) ** 2 < 1) & (y >= YB + la_shift)
    m[la] = 3
    return m


def _e_missing_la(m):
    m[m == 3] = 0


def _e_two_lv(m):
    m[20:22][m[20:22] == 1] = 2


def _e_myo_speck(m):
    m[2, 2] = 2


def _e_myo_hole(m):
    m[24, 42] = 0  # inside the lateral wall


def _e_la_hole(m):
    m[YB + 5, 32] = 0


def _e_open_wall(m):
    m[:, 32:][m[:, 32:] == 2] = 0  # the whole lateral wall and half the apex missing


def _e_la_away(m):
    m[:] = echo_slice(la_shift=3)


def _e_background_island(m):
    m[YB - 1, 32] = 0  # between LV and LA on the mitral line, sealed by them


def _e_tiny_la(m):
    m[m == 3] = 0
    m[YB : YB + 2, 31:33] = 3  # a 4-pixel LA under the mitral line: LA/LV ~ 0.014, the opening left uncovered


def _e_thin_wall(m):
    lv = m == 1
    m[m == 2] = 0
    m[ndi.binary_dilation(lv) & ~lv & (m == 0)] = 2  # a wall a pixel thick (edge neighbours only): MYO/LV 0.17


def _e_la_wraps_myo(m):
    y, x = np.mgrid[:SIZE, :SIZE]
    outer = ((y - 28) / 18) ** 2 + ((x - 32) / 12) ** 2 < 1
    m[ndi.binary_dilation(outer, iterations=2) & ~outer & (m == 0) & (y > 12)] = 3  # an atrium sheathing the walls


ECHO_DEFECTS = {
    "missing LA": (_e_missing_la, {"structures_present", "small_lv_background_frontier"}),  # the mitral opening open
    "two LV components": (_e_two_lv, {"single_component_LV"}),
    "speck of MYO far away": (_e_myo_speck, {"single_component_MYO"}),
    "hole in MYO": (_e_myo_hole, {"no_holes_MYO", "no_background_inside_heart"}),
    "hole in LA": (_e_la_hole, {"no_holes_LA", "no_background_inside_heart"}),
    "LV touching background": (_e_open_wall, {"small_lv_background_frontier"}),
    "LA away from LV": (_e_la_away, {"la_touches_lv", "small_lv_background_frontier"}),  # the mitral opening open
    "background island between LV and LA": (_e_background_island, {"no_holes_between_LV_LA", "no_background_inside_heart"}),
    "absurd LA/LV ratio": (_e_tiny_la, {"plausible_ratios", "small_lv_background_frontier"}),
    "one-pixel wall": (_e_thin_wall, {"plausible_ratios"}),  # (the erosion criterion starts at 128x128)
    "LA sheathing the MYO": (_e_la_wraps_myo, {"small_myo_la_frontier", "no_background_inside_heart"}),
}


def test_valid_echo_slice_passes_every_check():
    checks = plausibility_checks(echo_slice(), modality="echo")
    assert list(checks) == ECHO_CHECKS
    assert all(checks.values()), checks


@pytest.mark.parametrize("name", list(ECHO_DEFECTS))
def test_each_echo_defect_fails_exactly_its_checks(name):
    m = echo_slice()
    ECHO_DEFECTS[name][0](m)
    assert not np.array_equal(m, echo_slice())
    assert failed(m, modality="echo") == ECHO_DEFECTS[name][1]


def test_echo_bounds_are_configurable():
    m = echo_slice()
    _e_open_wall(m)
    frontier = plausibility_report(m[None], modality="echo", details=True)["lv_background_frontier"][0]
    assert frontier > 1.0  # LV pixels on the background per column of the cavity's width
    assert failed(m, modality="echo", max_lv_background_frontier=2 * frontier) == set()
    thin = echo_slice()
    _e_thin_wall(thin)
    rep = plausibility_report(thin[None], modality="echo", details=True)
    assert np.isnan(rep["myo_erosion_ratio"][0])  # at 64x64 a real 2-pixel wall vanishes too: not measured
    rep = plausibility_report(thin[None], modality="echo", details=True, erosion_px=1)
    assert rep["myo_erosion_ratio"][0] == 1.0  # a wall one pixel thick vanishes under one erosion
    assert 7 < rep["lv_myo_width_ratio"][0] < 8  # CAMUS max 3.8, but the phantom's thin walls reach 7.4
    assert failed(thin, modality="echo", erosion_px=1, max_lv_myo_width_ratio=4.5) == {
        "myo_not_too_thin", "plausible_lv_myo_width", "plausible_ratios"}
    # the same wall drawn at 128x128: the default erosion (1 pixel per 128) catches it
    thin128 = np.kron(echo_slice(), np.ones((2, 2), np.uint8))
    lv = thin128 == 1
    thin128[thin128 == 2] = 0
    thin128[ndi.binary_dilation(lv) & ~lv & (thin128 == 0)] = 2
    assert {"myo_not_too_thin", "plausible_ratios"} <= failed(thin128, modality="echo")
    assert "myo_not_too_thin" not in failed(np.kron(echo_slice(), np.ones((2, 2), np.uint8)), modality="echo")
    loose = {"max_myo_erosion_ratio": 1.0, "myo_lv_ratio": (0.05, 8.0)}
    assert failed(thin, modality="echo", **loose) == set()
    assert slice_level(np.stack([echo_slice(), thin]), modality="echo").tolist() == ["apical-view"] * 2


# ---------------------------------------------------------------------------------------------
# Report, summary, batching, errors
# ---------------------------------------------------------------------------------------------


def test_report_columns_summary_and_details():
    masks = np.stack([mri_slice(), defect("speck of MYO far away"), defect("hole in MYO"), mri_slice()])
    rep = plausibility_report(masks)
    assert list(rep.columns) == MRI_CHECKS + ["valid"]
    assert list(rep.index) == [0, 1, 2, 3]
    assert all(rep[c].dtype == bool for c in rep.columns)
    assert rep["valid"].tolist() == [True, False, False, True]
    s = plausibility_summary(rep)
    assert s["n_masks"] == 4 and s["valid_fraction"] == 0.5
    assert list(s["failure_rate"]) == MRI_CHECKS
    assert s["failure_rate"]["single_component_MYO"] == 0.25
    assert s["failure_rate"]["no_holes_MYO"] == 0.25 and s["failure_rate"]["rv_touches_myo"] == 0.0
    det = plausibility_report(masks, details=True)
    assert list(det.columns[: len(MRI_CHECKS) + 1]) == MRI_CHECKS + ["valid"]
    extra = {"area_RV", "area_MYO", "area_LV", "n_components_RV", "n_components_MYO", "n_components_LV",
             "level", "lv_background_fraction", "convexity_defect_RV", "convexity_defect_MYO",
             "convexity_defect_LV", "circularity_MYO", "circularity_LV", "myo_lv_ratio", "rv_epi_ratio"}
    assert set(det.columns[len(MRI_CHECKS) + 1 :]) == extra
    assert det["n_components_MYO"].tolist() == [1, 2, 1, 1]
    assert det["myo_lv_ratio"][0] == pytest.approx((masks[0] == 2).sum() / (masks[0] == 3).sum())
    echo = plausibility_report(echo_slice()[None], modality="echo", details=True)
    assert list(echo.columns[: len(ECHO_CHECKS) + 1]) == ECHO_CHECKS + ["valid"]
    assert {"la_lv_ratio", "myo_erosion_ratio", "lv_myo_width_ratio", "lv_background_frontier",
            "myo_la_frontier", "level"} <= set(echo.columns)
    empty = plausibility_report(np.zeros((0, 8, 8), np.uint8))
    assert list(empty.columns) == MRI_CHECKS + ["valid"] and len(empty) == 0
    assert plausibility_summary(empty)["valid_fraction"] is None


def varied_masks(n=32, seed=0):
    """Blobby random label maps (many components, holes, contacts) + the hand-made slices."""
    rng = np.random.default_rng(seed)
    field = ndi.gaussian_filter(rng.normal(size=(n, SIZE, SIZE)), sigma=(0, 3, 3))
    blobs = np.digitize(field, np.quantile(field, [0.45, 0.65, 0.8])).astype(np.uint8)
    return np.concatenate([blobs, np.stack([mri_slice()] + [defect(name) for name in MRI_DEFECTS])])


def test_batch_agrees_with_per_slice_scipy(monkeypatch):
    masks = varied_masks()
    rep = plausibility_report(masks, details=True)
    for i, m in enumerate(masks):
        for value, name in ((1, "RV"), (2, "MYO"), (3, "LV")):
            assert rep[f"n_components_{name}"][i] == ndi.label(m == value, structure=np.ones((3, 3)))[1]
        fg = m > 0
        sealed = ndi.binary_fill_holes(np.pad(fg, 1), structure=np.ones((3, 3)))[1:-1, 1:-1] & ~fg
        assert rep["no_background_inside_heart"][i] == (not sealed.any())
        lv = np.pad(m == 3, 1)
        ring = ndi.binary_dilation(lv) & ~lv
        frac = (ring & (np.pad(m, 1) == 0)).sum() / max(ring.sum(), 1)
        bound = PLAUSIBILITY_DEFAULTS["mri"]["max_lv_background_fraction" + ("_basal" if rep["level"][i] == "basal" else "")]
        assert rep["lv_not_touching_background"][i] == (frac <= bound or (m == 3).sum() < 3 or (m == 2).sum() < 3)
        for name, value in (("LV", 3), ("MYO", 2)):  # the convex hull, per slice, with scikit-image
            x = ndi.binary_fill_holes(np.isin(m, (2, 3)) if name == "MYO" else m == value, structure=np.ones((3, 3)))
            if x.sum() >= 3:
                exact = convex_hull_image(x, offset_coordinates=False).sum()
                approx = x.sum() / (1 - rep[f"convexity_defect_{name}"][i])
                assert exact - 0.5 <= approx <= 1.04 * exact + 2, (i, name, exact, approx)
    for check in ("single_component_MYO", "no_holes_MYO", "lv_not_touching_background", "no_background_inside_heart",
                  "convex_MYO", "circular_LV"):
        assert 0 < rep[check].sum() < len(rep), f"the batch should both pass and fail {check}"
    # chunked processing gives the same answer as one chunk
    monkeypatch.setattr(anatomy, "_CHUNK_PX", 26 * 26 * 5)
    chunked = plausibility_report(masks, details=True)
    assert chunked.equals(rep)
    one = plausibility_checks(masks[7])
    assert one == {k: bool(rep[k][7]) for k in MRI_CHECKS}


def test_input_validation():
    with pytest.raises(ValueError, match=r"shape \(H, W\)"):
        plausibility_checks(np.zeros((2, 8, 8), np.uint8))
    with pytest.raises(ValueError, match=r"shape \(N, H, W\)"):
        plausibility_report(np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match="0..3"):
        plausibility_checks(np.full((8, 8), 4, np.uint8))
    with pytest.raises(ValueError, match="modality"):
        plausibility_checks(mri_slice(), modality="ct")
    with pytest.raises(TypeError, match="unknown mri plausibility option.*la_lv_ratio"):
        plausibility_checks(mri_slice(), la_lv_ratio=(0, 1))
    with pytest.raises(ValueError, match="not among the mri structures"):
        plausibility_checks(mri_slice(), require=("LA",))
    with pytest.raises(ValueError, match="low <= high"):
        plausibility_checks(mri_slice(), myo_lv_ratio=(2, 1))
    with pytest.raises(TypeError, match="unknown echo plausibility option.*rv_epi_ratio"):
        plausibility_checks(echo_slice(), modality="echo", rv_epi_ratio=(0, 1))
    assert all(plausibility_checks(mri_slice().astype(np.float32)).values())  # integer-valued floats are fine


# ---------------------------------------------------------------------------------------------
# Post-processing
# ---------------------------------------------------------------------------------------------


def test_postprocess_repairs_specks_and_holes():
    valid = mri_slice()
    for name in ("speck of MYO far away", "hole in MYO", "hole in LV"):
        bad = defect(name)
        before = bad.copy()
        fixed = postprocess_masks(bad)
        assert np.array_equal(bad, before), "the input must not be modified"
        assert np.array_equal(fixed, valid), name  # speck removed, MYO hole -> MYO, LV hole -> LV
    island = postprocess_masks(defect("background island between RV and MYO"))
    assert all(plausibility_checks(island).values()) and island[rv_myo_contact()] in (1, 2)
    names = ("speck of MYO far away", "hole in MYO", "background island between RV and MYO")
    batch = np.stack([defect(n) for n in names] + [valid])
    assert plausibility_report(batch)["valid"].sum() == 1
    fixed = postprocess_masks(batch)
    assert fixed.dtype == np.uint8 and fixed.shape == batch.shape
    assert plausibility_report(fixed)["valid"].all()
    assert np.array_equal(fixed[-1], valid)  # a valid mask is left alone
    # an island of MYO inside the cavity (a papillary muscle labelled MYO) is a hole of the LV
    papillary = mri_slice()
    papillary[CY + 2 : CY + 4, CX : CX + 2] = 2
    assert failed(papillary) == {"single_component_MYO", "no_holes_LV"}
    assert np.array_equal(postprocess_masks(papillary), valid)
    assert np.array_equal(postprocess_masks(papillary, largest_component=False), valid)  # rule 2a alone
    # each rule can be switched off
    assert np.array_equal(postprocess_masks(defect("hole in MYO"), fill_holes=False), defect("hole in MYO"))
    assert np.array_equal(postprocess_masks(defect("speck of MYO far away"), largest_component=False),
                          defect("speck of MYO far away"))


def test_postprocess_echo():
    valid = echo_slice()
    for fn in (_e_myo_speck, _e_myo_hole, _e_la_hole):
        m = valid.copy()
        fn(m)
        assert np.array_equal(postprocess_masks(m, modality="echo"), valid)
    m = valid.copy()
    m[20, 32] = 0  # a hole in the echo LV cavity (label 1) becomes LV
    assert np.array_equal(postprocess_masks(m, modality="echo"), valid)


# ---------------------------------------------------------------------------------------------
# Real ACDC ground truth (skipped, saying why, without CARDIGAN_ACDC_DIR)
# ---------------------------------------------------------------------------------------------


@pytest.mark.acdc
def test_real_acdc_slices_pass_at_their_level(acdc_dir, tmp_path):
    """>= 99 % of real ACDC slices pass every check, apical and basal ones included, as the VAE
    learns them (the slice cache at 128x128; every training patient, ED + ES, every slice with
    foreground: ~15 s; a 20-patient subset is too small for the claim: one failing slice in 385 is
    0.26 %, and the first 20 of the seeded selection hold 4, 98.96 %); the levels read from the
    shapes agree with the slices' positions well beyond chance."""
    from cardigan_utils.data import load_cases, prepare_cache

    cases = load_cases("acdc", data_dir=acdc_dir, progress=False)
    cache = prepare_cache("acdc", run_dir=tmp_path, image_size=128, cases=cases, progress=False)
    assert len(cache) >= 1500
    rep = plausibility_report(cache.labels, details=True)
    summary = plausibility_summary(rep)
    assert summary["valid_fraction"] >= 0.99, (
        f"{summary['valid_fraction']:.1%} of {len(rep)} real ACDC slices valid; failure rates {summary['failure_rate']}")
    pos = cache.slices["slice_pos"].to_numpy()
    third = np.where(pos < 1 / 3, "basal", np.where(pos < 2 / 3, "mid", "apical"))
    assert (rep["level"].to_numpy() == third).mean() >= 0.55  # 1/3 by chance
    for level in ("basal", "mid", "apical"):
        assert (rep["level"] == level).sum() >= 0.1 * len(rep), level
    # the old fixed presence rule (RV, MYO and LV everywhere) fails the apex and the base
    strict = plausibility_report(cache.labels, require=("RV", "MYO", "LV"))["structures_present"]
    assert strict.mean() < 0.95


# ---------------------------------------------------------------------------------------------
# Real CAMUS ground truth (skipped, saying why, without CARDIGAN_CAMUS_DIR)
# ---------------------------------------------------------------------------------------------


@pytest.mark.camus
def test_real_camus_validation_maps_pass_the_echo_checks(camus_dir):
    """The echo defaults (Painchaud's criteria included) were derived on CAMUS: >= 99 % of the
    validation subgroup's maps (50 patients x 2CH/4CH x ED/ES) pass every check, at 64 and 128, as
    the VAE sees them after the kit's clean-up (the derived copy's rounding seams are not anatomy);
    at 64 the resampling smooths them away and the maps pass without it."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from echo_plausibility import camus_label_cases, vae_label_maps

    cases = camus_label_cases(camus_dir, split="validation")
    assert len(cases) >= 100, "the CAMUS validation subgroup should list at least 25 patients"
    for size in (64, 128):
        maps = vae_label_maps(cases, size)
        versions = {"cleaned": postprocess_masks(maps, modality="echo")} | ({"raw": maps} if size == 64 else {})
        for name, m in versions.items():
            rep = plausibility_report(m, modality="echo")
            summary = plausibility_summary(rep)
            assert summary["valid_fraction"] >= 0.99, (
                f"{size}x{size} {name}: {summary['valid_fraction']:.1%} of {len(m)} real CAMUS maps valid; "
                f"failure rates {summary['failure_rate']}")
