"""The dataset registry: lookup, discovery, and one reader contract that every registered dataset meets."""

from __future__ import annotations

import dataclasses
import sys
import textwrap

import numpy as np
import pytest

import cardigan_utils.data as data_pkg
from cardigan_utils.data import DataError, dataset_dir, dataset_names, dataset_specs, get_dataset, load_cases, reference_cases
from cardigan_utils.data.acdc import list_acdc_patients, load_acdc, read_acdc_patient, write_acdc_example
from cardigan_utils.data.prepare import find_dataset_root, prepare_dataset, verify_dataset
from cardigan_utils.data.registry import IDENTITY_LABEL_MAP, DatasetSpec, discover_datasets, remap_labels
from cardigan_utils.labels import LABELS

BUILT_IN = ("phantom-mri", "phantom-echo", "acdc", "camus")

# every registered dataset, once per layout its example can be written in
CONTRACT = [(spec.name, layout) for spec in dataset_specs() for layout in (spec.layouts or (None,))]


def _one_line_naming(err: Exception, *names: str) -> None:
    message = str(err)
    assert "\n" not in message, message
    for name in names:
        assert name in message, message


# --- lookup -----------------------------------------------------------------------------------


def test_built_in_datasets_come_first_in_a_stable_order():
    assert dataset_names()[:4] == BUILT_IN
    assert [s.name for s in dataset_specs()] == list(dataset_names())
    assert get_dataset("acdc").env_var == "CARDIGAN_ACDC_DIR" and get_dataset("camus").env_var == "CARDIGAN_CAMUS_DIR"
    assert not get_dataset("phantom-mri").needs_folder and get_dataset("phantom-mri").env_var is None


@pytest.mark.parametrize("call", ["get_dataset", "load_cases", "verify_dataset", "find_dataset_root", "prepare_dataset",
                                  "dataset_dir"])
def test_an_unregistered_name_is_an_error_listing_the_registered_ones(call, tmp_path):
    calls = {
        "get_dataset": lambda: get_dataset("mnist"),
        "load_cases": lambda: load_cases("mnist", data_dir=tmp_path),
        "verify_dataset": lambda: verify_dataset(tmp_path, "mnist"),
        "find_dataset_root": lambda: find_dataset_root(tmp_path, "mnist"),
        "prepare_dataset": lambda: prepare_dataset(tmp_path, dataset="mnist", run_dir=tmp_path / "run", image_size=32),
        "dataset_dir": lambda: dataset_dir("mnist", tmp_path),
    }
    with pytest.raises(ValueError, match="unknown dataset 'mnist'") as err:
        calls[call]()
    assert not isinstance(err.value, DataError)
    _one_line_naming(err.value, *dataset_names())
    assert not (tmp_path / "run").exists()


def test_dataset_dir_prefers_the_argument_then_the_spec_variable(monkeypatch, tmp_path):
    assert dataset_dir("phantom-echo", tmp_path) is None
    monkeypatch.setenv("CARDIGAN_CAMUS_DIR", str(tmp_path))
    assert dataset_dir("camus") == tmp_path
    assert dataset_dir("camus", "~/x") == (tmp_path.home() / "x")
    monkeypatch.delenv("CARDIGAN_CAMUS_DIR")
    with pytest.raises(FileNotFoundError, match="set CARDIGAN_CAMUS_DIR"):
        dataset_dir("camus")


def test_generated_datasets_have_no_download_to_prepare(tmp_path):
    with pytest.raises(DataError, match="phantom-mri is generated") as err:
        find_dataset_root(tmp_path, "phantom-mri")
    _one_line_naming(err.value, str(tmp_path), "acdc", "camus")
    with pytest.raises(ValueError, match="generated datasets need n_patients"):
        load_cases("phantom-echo")


def test_reference_cases_read_the_first_real_dataset_of_the_modality(tmp_path, monkeypatch):
    root = write_acdc_example(tmp_path / "acdc", n_patients=2, seed=3)
    monkeypatch.setenv("CARDIGAN_ACDC_DIR", str(root))
    cases = reference_cases("mri", n_patients=1)
    assert len({c.patient_id for c in cases}) == 1 and {c.dataset for c in cases} == {"acdc"}
    with pytest.raises(ValueError, match="modality must be one of"):
        reference_cases("ct")


# --- the reader contract, run on every registered dataset ----------------------------------------


@pytest.mark.parametrize("name,layout", CONTRACT, ids=[f"{n}-{lay}" if lay else n for n, lay in CONTRACT])
def test_reader_contract(name, layout, tmp_path):
    spec = get_dataset(name)
    source = spec.write_example(tmp_path / "example", n_patients=2, seed=1, layout=layout)

    # (a) it lists the patients: two, with distinct ids
    patients = spec.list_patients(source)
    ids = [p.name for p in patients]
    assert len(ids) == 2 and len(set(ids)) == 2 and all(isinstance(i, str) and i for i in ids)

    # (b) one patient reads into Cases of the spec's modality, labels in 0..3 and only its structures
    cases = spec.read_patient(patients[0])
    assert cases and {c.patient_id for c in cases} == {ids[0]}
    allowed = {0, *spec.label_values}
    for case in cases:
        assert case.modality == spec.modality and case.dataset == spec.name
        assert case.label.dtype == np.uint8 and case.image.shape == case.label.shape
        assert set(np.unique(case.label).tolist()) <= allowed
        spec.check_case(case)
    seen = set().union(*(np.unique(c.label).tolist() for c in cases))
    assert seen == allowed, f"the example labels {seen}, the spec declares {allowed}"

    # the whole example verifies cleanly, and load_cases reads a seeded selection of it
    report = spec.verify(source, progress=False)
    assert not report.problems and {c.patient_id for c in report.cases} == set(ids)
    if spec.needs_folder:
        chosen = load_cases(name, data_dir=source, n_patients=1, seed=0, progress=False)
        assert len(verify_dataset(source, name).cases) == len(report.cases)
        assert find_dataset_root(tmp_path, name) == source
    else:
        chosen = load_cases(name, n_patients=1, seed=1)
    assert len({c.patient_id for c in chosen}) == 1 and {c.patient_id for c in chosen} <= set(ids)

    # (c) a bad folder is a one-line DataError naming it
    empty = tmp_path / "empty"
    empty.mkdir()
    junk = tmp_path / "junk"
    junk.mkdir()
    for file in ("notes.txt", "patient001.nii.gz", "patient0001_2CH_ED.mhd", "data.hdf5"):
        (junk / file).write_bytes(b"not a dataset")
    for bad in (empty, junk, tmp_path / "missing"):
        with pytest.raises(DataError) as err:
            spec.verify(bad, progress=False)
        _one_line_naming(err.value, str(bad))


def test_the_contract_covers_every_layout_of_the_built_in_readers():
    assert set(CONTRACT) >= {("phantom-mri", None), ("phantom-echo", None), ("acdc", "acdc"),
                             ("camus", "camus-nifti"), ("camus", "camus-mhd"), ("camus-hdf5", None)}


def test_verify_reports_a_reader_that_breaks_its_declaration(tmp_path):
    """A reader returning labels it does not declare (a forgotten label map) is reported, patient by patient."""
    root = write_acdc_example(tmp_path / "acdc", n_patients=2, seed=0)

    def read_without_remapping(patient):
        return [dataclasses.replace(c, dataset="lv-only") for c in read_acdc_patient(patient)]

    lv_only = DatasetSpec(name="lv-only", modality="mri", structures=("MYO", "LV"), label_map={0: 0, 1: 3, 2: 2},
                          list_patients=list_acdc_patients, read_patient=read_without_remapping, load=load_acdc,
                          write_example=write_acdc_example, env_var="LV_ONLY_DIR")
    report = lv_only.verify(root, progress=False)
    assert not report.cases and [p for p, _ in report.problems] == ["patient001", "patient002"]
    assert "label values [1] are not among the structures lv-only declares" in report.problems[0][1]
    mislabelled = DatasetSpec(**{**{f: getattr(lv_only, f) for f in ("structures", "label_map", "list_patients",
                                                                       "load", "write_example", "env_var")},
                                 "name": "not-acdc", "modality": "mri", "read_patient": read_acdc_patient})
    assert "dataset='acdc'" in mislabelled.verify(root, progress=False).problems[0][1]


# --- declarations -------------------------------------------------------------------------------


def _spec(**changes) -> DatasetSpec:
    fields = dict(name="probe", modality="mri", structures=("RV", "MYO", "LV"), label_map=IDENTITY_LABEL_MAP,
                  list_patients=list_acdc_patients, read_patient=read_acdc_patient, load=load_acdc,
                  write_example=write_acdc_example, env_var="PROBE_DIR")
    return DatasetSpec(**{**fields, **changes})


@pytest.mark.parametrize("changes,message", [
    ({"name": "Probe Set"}, "lowercase"),
    ({"modality": "ct"}, "modality must be one of"),
    ({"structures": ("LA",)}, "among the mri structures"),
    ({"structures": ("LV", "LV")}, "distinct"),
    ({"label_map": {0: 0, 1: 3, 2: 2, 3: 1, 4: 4}}, "exactly the kit labels"),
    ({"structures": ("MYO", "LV"), "label_map": IDENTITY_LABEL_MAP}, "exactly the kit labels"),
    ({"label_map": {0: 1, 1: 0, 2: 2, 3: 3}}, "send 0 to 0"),
    ({"load": None}, "load must be a function"),
    ({"env_var": None}, "needs env_var"),
    ({"needs_folder": False}, "no env_var"),
])
def test_a_bad_declaration_is_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        _spec(**changes)


def test_structures_and_label_maps_in_the_kit_convention():
    mnms = _spec(label_map={0: 0, 1: 3, 2: 2, 3: 1})  # M&Ms stores 1 LV, 2 MYO, 3 RV
    assert mnms.label_values == (1, 2, 3) and [LABELS["mri"][v] for v in mnms.label_values] == ["RV", "MYO", "LV"]
    stored = np.array([[0, 1], [2, 3]])
    assert remap_labels(stored, mnms.label_map, source="x.nii.gz").tolist() == [[0, 3], [2, 1]]
    assert remap_labels(stored, mnms.label_map, source="x").dtype == np.uint8
    with pytest.raises(DataError, match=r"gt\.nii\.gz: label values \[7\] are not in the dataset's label map"):
        remap_labels(np.array([0, 7]), mnms.label_map, source="gt.nii.gz")
    sunnybrook = _spec(structures=("MYO", "LV"), label_map={0: 0, 1: 3, 2: 2})
    assert sunnybrook.label_values == (2, 3)
    assert get_dataset("camus").structures == ("LV", "MYO", "LA")


# --- discovery ----------------------------------------------------------------------------------

_PROBE_MODULE = """
from cardigan_utils.data.acdc import list_acdc_patients, load_acdc, read_acdc_patient, write_acdc_example
from cardigan_utils.data.registry import DatasetSpec

DATASETS = (
    DatasetSpec(name={name!r}, modality="mri", structures=("MYO", "LV"), label_map={{0: 0, 1: 3, 2: 2}},
                list_patients=list_acdc_patients, read_patient=read_acdc_patient, load=load_acdc,
                write_example=write_acdc_example, env_var="PROBE_DIR"),
)
"""


@pytest.fixture
def probe_package(tmp_path, monkeypatch):
    """A factory of throw-away packages on sys.path: ``make(name, {module: source}) -> name``; removed afterwards."""
    made: list[str] = []

    def make(name: str, modules: dict[str, str]) -> str:
        pkg = tmp_path / name
        pkg.mkdir()
        (pkg / "__init__.py").write_text('"""A probe package."""\n')
        for module, text in modules.items():
            (pkg / f"{module}.py").write_text(textwrap.dedent(text))
        monkeypatch.syspath_prepend(str(tmp_path))
        made.append(name)
        return name

    yield make
    for key in [k for k in sys.modules if any(k == n or k.startswith(n + ".") for n in made)]:
        del sys.modules[key]


def test_discovery_finds_a_new_reader_module_in_the_data_package(tmp_path, monkeypatch):
    """Adding a dataset is one new module: dropped into cardigan_utils.data, it is registered."""
    folder = tmp_path / "more_readers"
    folder.mkdir()
    (folder / "probe_reader.py").write_text(_PROBE_MODULE.format(name="probe-mri"))
    monkeypatch.setattr(data_pkg, "__path__", [*data_pkg.__path__, str(folder)])
    try:
        found = discover_datasets("cardigan_utils.data")
    finally:
        sys.modules.pop("cardigan_utils.data.probe_reader", None)
    # after the built-in ones (among the readers of the default order, by module name: see the next tests)
    assert tuple(found)[:len(BUILT_IN)] == BUILT_IN and set(found) == {*dataset_names(), "probe-mri"}
    assert found["probe-mri"].label_values == (2, 3)
    assert "probe-mri" not in dataset_names()  # the cached registry of the session is untouched


def test_discovery_refuses_a_name_declared_twice(probe_package):
    package = probe_package("registry_probe_twice", {
        "first_reader": _PROBE_MODULE.format(name="probe"),
        "second_reader": _PROBE_MODULE.format(name="probe"),
        "not_a_reader": "X = 1\n",
    })
    with pytest.raises(ValueError, match="'probe' is declared twice") as err:
        discover_datasets(package)
    _one_line_naming(err.value, f"{package}.first_reader", f"{package}.second_reader")


def test_discovery_orders_and_checks_declarations(probe_package):
    package = probe_package("registry_probe_order", {
        "a_reader": _PROBE_MODULE.format(name="zeta"),
        "b_reader": _PROBE_MODULE.format(name="alpha"),
    })
    assert tuple(discover_datasets(package)) == ("zeta", "alpha")  # module order, then declaration order
    package = probe_package("registry_probe_bad", {"reader": "DATASETS = ['acdc']\n"})
    with pytest.raises(TypeError, match=r"registry_probe_bad\.reader\.DATASETS must be a tuple of DatasetSpec"):
        discover_datasets(package)
