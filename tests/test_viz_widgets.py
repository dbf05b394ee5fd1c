import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest

from cardigan_utils import viz, widgets
from cardigan_utils.data.cache import build_cache
from conftest import disk_case


@pytest.fixture
def cache(tmp_path):
    cases = [disk_case(pid=f"patient{i:03d}", phase=p, radius=8 if p == "ED" else 6) for i in range(5) for p in ("ED", "ES")]
    return build_cache(cases, tmp_path / "c", image_size=32, fov_mm=64.0, progress=False)


def test_figures_are_drawn_and_saved(cache, tmp_path):
    for name, fig in {
        "gallery": viz.cache_gallery(cache, n=5),
        "overview": viz.dataset_overview(cache),
        "ed_es": viz.ed_es_volumes(cache),
        "mid": viz.mid_slices([disk_case(), disk_case(phase="ES")]),
    }.items():
        path = viz.save_figure(fig, tmp_path, "01_datasets", name)
        assert path.stat().st_size > 5_000
    assert "100% of 5 drop" in viz.ed_es_volumes(cache).axes[0].get_title()


def test_class_intensities_per_structure(cache):
    df = viz.class_intensities(cache)
    means = df.groupby("structure")["intensity"].mean()
    assert means["LV"] > means["MYO"] > means["background"]


def test_case_viewer_follows_its_controls():
    cases = [disk_case(pid="patient001"), disk_case(pid="patient001", phase="ES", radius=5), disk_case(pid="patient002", shape=(40, 48, 6))]
    v = widgets.case_viewer(cases)
    assert v.slice.max == 3 and v.case.key == "patient001_ED"
    # tests/test_browser.py finds the viewer in JupyterLab by these classes
    assert "cardigan-case-viewer" in v.widget._dom_classes and "cardigan-slice" in v.slice._dom_classes
    v.variant.value = "ES"
    assert v.case.key == "patient001_ES"
    es_image = v.current_slice()[1]
    assert (es_image == 3).sum() < (cases[0].label[:, :, 0] == 3).sum()
    v.patient.value = "patient002"
    assert v.slice.max == 5
    v.slice.value = 4
    img, lab = v.current_slice()
    assert img.shape == (48, 40)  # rows = y
    v.alpha.value = 0.0
    assert len(v.figure.axes[0].images) == 1  # overlay hidden at opacity 0


def test_dataset_chooser_lists_availability(monkeypatch):
    monkeypatch.delenv("CARDIGAN_CAMUS_DIR", raising=False)
    monkeypatch.setenv("CARDIGAN_ACDC_DIR", "/data/acdc")
    dropdown, box = widgets.dataset_chooser("acdc")
    assert dropdown.value == "acdc"
    html = box.children[1].value
    assert "CARDIGAN_ACDC_DIR=/data/acdc" in html and "not configured (set CARDIGAN_CAMUS_DIR)" in html


def test_echo_look_draws_sector_and_speckle():
    rng = np.random.default_rng(0)
    images = rng.random((6, 64, 64)).astype(np.float32)
    fig = viz.echo_look(images, images[::-1], example=1)
    assert len(fig.axes) == 4 and fig.axes[0].get_title().startswith("real: mean of 6")
    plt.close(fig)
