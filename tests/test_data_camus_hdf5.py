"""cardiGAN's HDF5 layout: read, written, refused when malformed, exported from a synthetic set, found by the registry."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from cardigan_utils.data import DataError, load_cases
from cardigan_utils.data.camus_hdf5 import (CardiganPatient, list_cardigan_patients, read_cardigan_hdf5,
                                            read_cardigan_patient, write_cardigan_hdf5)
from cardigan_utils.data.phantom import phantom_cases
from cardigan_utils.images import SpadeRenderer
from cardigan_utils.networks.spade import SPADEGenerator
from cardigan_utils.networks.vae import ShapeVAE
from cardigan_utils.synthetic import generate_dataset, load_synthetic, to_cardigan_hdf5

H, W = 6, 9  # rows, cols of the hand-written files: not square, so a transposition shows
SPLITS = {"phantom0000": "training", "phantom0001": "validation", "phantom0002": "testing"}


def _one_line_naming(err: pytest.ExceptionInfo, *names: str) -> str:
    message = str(err.value)
    assert "\n" not in message, message
    for name in names:
        assert name in message, message
    return message


def _raw_view(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """One view as cardiGAN stores it: im float32 (2, H, W, 1) in [0, 1], gt uint8 (2, H, W) with every label."""
    im = np.random.default_rng(seed).random((2, H, W, 1)).astype(np.float32)
    gt = np.zeros((2, H, W), np.uint8)
    gt[:, 1:3, 1:4], gt[:, 3, 2:6], gt[:, 4, :3] = 1, 2, 3
    return im, gt


def _cardigan_file(path, mutate=None):
    """A file written with h5py alone (not the kit's writer): /train/patient0001 and /test/patient0002, both views."""
    with h5py.File(path, "w") as f:
        for seed, group in enumerate(f"{split}/{pid}/{view}" for split, pid in (("train", "patient0001"),
                                                                                ("test", "patient0002"))
                                     for view in ("2CH", "4CH")):
            f[f"{group}/im"], f[f"{group}/gt"] = _raw_view(seed)
        if mutate:
            mutate(f)
    return path


def _replace(name: str, make):
    """A mutation that replaces dataset ``name`` by ``make(its data)``."""
    def mutate(f):
        data = f[name][()]
        del f[name]
        f[name] = make(data)
    return mutate


def _delete(*names: str):
    def mutate(f):
        for name in names:
            del f[name]
    return mutate


VIEW = "/train/patient0001/2CH"

MALFORMED = {
    "no split group": (_delete("train"), {"split": "training"}, ["the file has no 'train' group", "it holds /test"]),
    "no split groups at all": (_delete("train", "test"), {}, ["none of the groups /train, /valid, /test"]),
    "patient not a group": (lambda f: f.create_dataset("train/patient0003", data=[1]), {},
                            ["group /train has no 'patient0003' group"]),
    "no view group": (_delete("train/patient0001/4CH"), {}, ["group /train/patient0001 has no '4CH' group"]),
    "no im": (_delete(f"{VIEW}/im"), {}, [f"group {VIEW} has no 'im' dataset"]),
    "no gt": (_delete(f"{VIEW}/gt"), {}, [f"group {VIEW} has no 'gt' dataset"]),
    "im without its channel": (_replace(f"{VIEW}/im", lambda a: a[..., 0]), {}, [f"{VIEW}/im has shape (2, 6, 9)"]),
    "three instants": (_replace(f"{VIEW}/im", lambda a: np.concatenate([a, a[:1]])), {}, [f"{VIEW}/im has shape (3,"]),
    "gt of another size": (_replace(f"{VIEW}/gt", lambda a: a[:, :, :-1]), {}, [f"{VIEW}/gt has shape (2, 6, 8)"]),
    "labels outside 0..3": (_replace(f"{VIEW}/gt", lambda a: np.where(a == 3, 5, a)), {},
                            [f"{VIEW}/gt instant 0 (ED)", "label values [5]"]),
    "non-integer labels": (_replace(f"{VIEW}/gt", lambda a: a * 0.5), {}, [f"{VIEW}/gt holds non-integer labels"]),
    "an empty instant": (_replace(f"{VIEW}/gt", lambda a: np.stack([a[0], 0 * a[1]])), {},
                         [f"{VIEW}/gt instant 1 (ES)", "empty"]),
    "images outside [0, 1]": (_replace(f"{VIEW}/im", lambda a: a * 255), {}, [f"{VIEW}/im has values in", "[0, 1]"]),
    "non-finite images": (_replace(f"{VIEW}/im", lambda a: np.where(a > 0.9, np.nan, a)), {}, [f"{VIEW}/im", "NaN"]),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_file_is_one_line_naming_the_group(case, tmp_path):
    mutate, kwargs, names = MALFORMED[case]
    path = _cardigan_file(tmp_path / "camus.hdf5", mutate)
    with pytest.raises(DataError) as err:
        read_cardigan_hdf5(path, **kwargs)
    _one_line_naming(err, str(path), *names)


def test_a_file_that_is_not_hdf5_or_not_there_and_a_missing_patient(tmp_path):
    junk = tmp_path / "camus05_256.hdf5"
    junk.write_bytes(b"not an HDF5 file")
    with pytest.raises(DataError) as err:
        list_cardigan_patients(tmp_path)  # the folder: its one .hdf5 file
    _one_line_naming(err, str(junk), "not a readable HDF5 file")
    with pytest.raises(DataError) as err:
        read_cardigan_hdf5(tmp_path / "missing.hdf5")
    _one_line_naming(err, str(tmp_path / "missing.hdf5"), "no such file or folder")
    good = _cardigan_file(tmp_path / "good.h5")
    with pytest.raises(DataError) as err:
        list_cardigan_patients(tmp_path)
    _one_line_naming(err, str(tmp_path), "several HDF5 files", junk.name, good.name)
    with pytest.raises(DataError) as err:
        read_cardigan_patient(CardiganPatient(file=good, split="training", name="patient0009"))
    _one_line_naming(err, str(good), "group /train has no 'patient0009' group")
    with pytest.raises(DataError) as err:
        read_cardigan_hdf5(good, patients=["patient0009"])
    _one_line_naming(err, str(good), "patient0009", "patient0001")
    with pytest.raises(ValueError, match="'training'"):
        read_cardigan_hdf5(good, split="train")  # the kit's split names, not the file's groups


def test_a_cardigan_file_reads_upright_in_the_kits_axes(tmp_path):
    """cardiGAN's (row, col) images become (X, Y, 1) Cases that the kit shows as volume[:, :, 0].T."""
    path = _cardigan_file(tmp_path / "camus.hdf5")
    cases = read_cardigan_hdf5(path, phases="ES", views=["4CH"])
    assert [(c.patient_id, c.view, c.phase, c.meta["split"]) for c in cases] == [
        ("patient0001", "4CH", "ES", "training"), ("patient0002", "4CH", "ES", "testing")]
    im, gt = _raw_view(1)  # the seed of /train/patient0001/4CH
    case = cases[0]
    assert case.image.shape == case.label.shape == (W, H, 1)
    assert case.image.dtype == np.float32 and case.label.dtype == np.uint8
    assert np.array_equal(case.image[:, :, 0].T, im[1, :, :, 0]) and np.array_equal(case.label[:, :, 0].T, gt[1])
    assert case.spacing == (1.0, 1.0, 1.0) and not case.spacing_known and np.isnan(case.volume_ml(1))
    assert case.meta["hdf5_group"] == "/train/patient0001/4CH" and case.meta["instant"] == 1
    assert [p.name for p in list_cardigan_patients(path, split="testing")] == ["patient0002"]


def test_cases_written_read_back_with_their_views_phases_ids_and_splits(tmp_path):
    cases = phantom_cases("phantom-echo", 3, seed=2)
    path = write_cardigan_hdf5(cases, tmp_path / "a.hdf5", splits=SPLITS)
    with h5py.File(path, "r") as f:
        assert sorted(f) == ["test", "train", "valid"] and sorted(f["valid"]) == ["phantom0001"]
        stored = f["valid/phantom0001/4CH/im"]
        width, height, _ = next(c for c in cases if c.patient_id == "phantom0001").image.shape
        assert stored.dtype == np.float32 and stored.shape == (2, height, width, 1)  # (row, col) images
    read = read_cardigan_hdf5(path)
    assert [c.key for c in read] == [c.key for c in cases]
    for got, given in zip(read, cases):
        pair = np.stack([c.image for c in cases if (c.patient_id, c.view) == (given.patient_id, given.view)])
        assert np.allclose(got.image, (given.image - pair.min()) / (pair.max() - pair.min()), atol=1e-6)
        assert np.array_equal(got.label, given.label)
        assert got.meta["split"] == SPLITS[given.patient_id] and got.dataset == "camus-hdf5" and got.modality == "echo"
    # what the kit read, written again, reads back identical: arrays in [0, 1] are written as they are
    again = read_cardigan_hdf5(write_cardigan_hdf5(read, tmp_path / "b.hdf5"))
    assert [(c.key, c.meta["split"]) for c in again] == [(c.key, c.meta["split"]) for c in read]
    assert all(np.array_equal(a.image, b.image) and np.array_equal(a.label, b.label) for a, b in zip(again, read))


def test_the_writer_refuses_a_view_without_both_phases_and_leaves_nothing(tmp_path):
    cases = phantom_cases("phantom-echo", 1, seed=0)
    with pytest.raises(DataError) as err:
        write_cardigan_hdf5([c for c in cases if c.key != "phantom0000_4CH_ES"], tmp_path / "a.hdf5")
    _one_line_naming(err, "phantom0000 4CH has no ES Case", "give both phases")
    with pytest.raises(DataError) as err:
        write_cardigan_hdf5(cases + cases[:1], tmp_path / "a.hdf5")
    _one_line_naming(err, "phantom0000_2CH_ED is given twice")
    with pytest.raises(DataError, match="modality='mri'"):
        write_cardigan_hdf5(phantom_cases("phantom-mri", 1, seed=0), tmp_path / "a.hdf5")
    assert not list(tmp_path.iterdir())  # no file, no temporary file
    path = write_cardigan_hdf5(cases, tmp_path / "a.hdf5")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_cardigan_hdf5(cases[:2], path)
    assert len(read_cardigan_hdf5(write_cardigan_hdf5(cases[:2], path, overwrite=True), views="2CH")) == 2


def test_the_registry_reads_the_file_by_path_folder_or_variable(tmp_path, monkeypatch):
    path = write_cardigan_hdf5(phantom_cases("phantom-echo", 3, seed=1), tmp_path / "data" / "camus05_256.hdf5",
                               splits=SPLITS)
    everything = load_cases("camus-hdf5", data_dir=path, progress=False)
    assert len(everything) == 12 and {c.dataset for c in everything} == {"camus-hdf5"}
    validation = load_cases("camus-hdf5", data_dir=path.parent, split="validation", progress=False)
    assert {(c.patient_id, c.meta["split"]) for c in validation} == {("phantom0001", "validation")}
    monkeypatch.setenv("CARDIGAN_CAMUS_HDF5", str(path))
    chosen = load_cases("camus-hdf5", n_patients=2, seed=0, progress=False)
    assert len({c.patient_id for c in chosen}) == 2 and len(chosen) == 8


@pytest.mark.usefixtures("one_torch_thread")
def test_a_synthetic_echo_set_exports_to_the_layout_and_reads_back(tmp_path):
    torch.manual_seed(0)
    vae = ShapeVAE(image_size=64, latent_dim=8, channels=[8, 16, 32, 64]).eval()
    gen = SpadeRenderer(SPADEGenerator(image_size=64, ngf=4, hidden_channels=8, z_dim=8).eval(), config={})
    sets = {modality: generate_dataset(vae, gen, out_dir=tmp_path / modality, n=10, shard_size=4, seed=0,
                                       modality=modality, filter_plausible=False, progress_bar=False)
            for modality in ("echo", "mri")}
    images, labels = load_synthetic(sets["echo"])
    path = to_cardigan_hdf5(sets["echo"], tmp_path / "synthetic.hdf5")
    cases = read_cardigan_hdf5(path)
    # pairs 4k..4k+3 fill synth{k}'s 2CH ED, 2CH ES, 4CH ED, 4CH ES; the last patient (pairs 8, 9) repeats its own
    assert [c.key for c in cases[:4]] == ["synth000000_2CH_ED", "synth000000_2CH_ES", "synth000000_4CH_ED",
                                          "synth000000_4CH_ES"]
    assert len(cases) == 12 and {c.meta["split"] for c in cases} == {"training"}
    for case, pair in zip(cases, [*range(10), 8, 9]):
        assert np.array_equal(case.image[:, :, 0].T, images[pair]) and np.array_equal(case.label[:, :, 0].T, labels[pair])
    with h5py.File(path, "r") as f:
        assert list(f) == ["train"] and f.attrs["pairs"] == 10
    with pytest.raises(FileExistsError):
        to_cardigan_hdf5(sets["echo"], path)
    with pytest.raises(ValueError, match="holds echo"):
        to_cardigan_hdf5(sets["mri"], tmp_path / "mri.hdf5")
