"""Checkpoints (cardigan_utils.checkpoint): every file that is not the checkpoint asked for is refused in one line.

A missing, empty, truncated, damaged or foreign file given as a model, a ``.pt`` without its
``.json``, a ``.json`` that is broken or disagrees with the weights, a checkpoint of another kind,
and a damaged ``<name>_last.pt`` when a trainer resumes: each is one ``CheckpointError`` (a
``ValueError``) naming the file, what it is not and what to do, through the Python API and through
the ``cardigan`` command, and never torch's advice to load with ``weights_only=False``.
"""

import json
import shutil
import traceback
from pathlib import Path

import numpy as np
import pytest
import torch

from cardigan_utils.checkpoint import CheckpointError, MissingCheckpointError, kind_of, load_checkpoint, save_checkpoint
from cardigan_utils.data import load_cases, prepare_cache
from cardigan_utils.data.export import write_dataset
from cardigan_utils.images import load_generator, load_spade, train_spade
from cardigan_utils.segmentation import load_segmenter, train_segmenter
from cardigan_utils.shapes import load_vae, train_vae
from cardigan_utils.study import run_path

from conftest import refused, snapshot

pytestmark = [pytest.mark.reliability, pytest.mark.usefixtures("one_torch_thread")]

KINDS = ("vae", "spade", "segmenter")
VAE = dict(latent_dim=4, channels=[4, 8, 8, 8], batch_size=16)
SPADE = dict(ngf=4, hidden_channels=8, ndf=8, z_dim=4, n_layers_d=2, num_scales=1, batch_size=8, amp=False)
UNET = dict(channels=(4, 8), num_res_units=1, batch_size=4, steps_per_epoch=2)
COMMON = dict(device="cpu", progress_bar=False)


def _slices(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.random((n, 32, 32), dtype=np.float32), rng.integers(0, 4, (n, 32, 32)).astype(np.uint8)


def _train(kind: str, cache, run_dir: Path, *, max_epochs: int = 1, **kw):
    """One of the kit's trainers, tiny: the checkpoints it writes are the real thing."""
    if kind == "vae":
        return train_vae(cache, run_dir=run_dir, max_epochs=max_epochs, **{**VAE, **kw}, **COMMON)
    if kind == "spade":
        return train_spade(cache, run_dir=run_dir, max_epochs=max_epochs, **{**SPADE, **kw}, **COMMON)
    return train_segmenter([_slices(8, 0)], val=_slices(4, 1), run_dir=run_dir, max_epochs=max_epochs,
                           data={"modality": "mri", "image_size": 32, "fov_mm": None}, **{**UNET, **kw}, **COMMON)


LOADERS = {
    "vae": lambda path: load_vae(path, device="cpu"),
    "spade": lambda path: load_spade(path, device="cpu"),
    "generator": lambda path: load_generator(path, device="cpu"),
    "segmenter": lambda path: load_segmenter(path, device="cpu"),
}
"""Every loader of the kit, by name; ``generator`` reads SPADE checkpoints through the family contract."""

KIND_OF_LOADER = {"vae": "vae", "spade": "spade", "generator": "spade", "segmenter": "segmenter"}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return prepare_cache("phantom-mri", run_dir=tmp_path_factory.mktemp("base"), image_size=64, n_patients=4,
                         progress=False)


@pytest.fixture(scope="module")
def trained(cache, tmp_path_factory) -> dict[str, Path]:
    """Kind -> a folder with ``<kind>.pt``, ``<kind>_last.pt`` (and their configs and history), one epoch each."""
    out = {}
    for kind in KINDS:
        out[kind] = tmp_path_factory.mktemp(kind)
        _train(kind, cache, out[kind])
    return out


@pytest.fixture(scope="module")
def phantom_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("acdc_like")
    write_dataset(load_cases("phantom-mri", n_patients=1, seed=5, progress=False), root / "ACDC", layout="acdc")
    return root / "ACDC" / "training"


def _copy(src: Path, dst: Path) -> Path:
    """Copy a checkpoint and its config (the pair travels together)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    shutil.copyfile(src.with_suffix(".json"), dst.with_suffix(".json"))
    return dst


def _edit_config(path: Path, edit) -> Path:
    config = json.loads(path.with_suffix(".json").read_text())
    edit(config)
    path.with_suffix(".json").write_text(json.dumps(config))
    return path


def _torch_zip_that_is_not_weights(path: Path, marker: Path) -> None:
    """A torch file whose unpickling would create ``marker``: what a weights-only load must refuse."""

    class Payload:
        def __reduce__(self):
            return open, (str(marker), "w")

    torch.save({"model": Payload()}, path)


def _damaged(good: Path, how: str, where: Path) -> Path:
    """A bad checkpoint at ``where/<good's name>`` (with ``good``'s config beside it unless ``how`` says otherwise)."""
    bad = where / good.name
    where.mkdir(parents=True, exist_ok=True)
    data = good.read_bytes()
    if how == "missing":
        return bad
    if how == "folder":
        bad.mkdir()
        return bad
    if how != "no config":
        shutil.copyfile(good.with_suffix(".json"), bad.with_suffix(".json"))
    if how in ("no config", "broken config", "config not an object"):
        bad.write_bytes(data)
        if how == "broken config":
            text = good.with_suffix(".json").read_text()
            bad.with_suffix(".json").write_text(text[: len(text) // 2])
        elif how == "config not an object":
            bad.with_suffix(".json").write_text("[1, 2]")
        return bad
    if how == "empty":
        bad.write_bytes(b"")
    elif how == "random bytes":
        bad.write_bytes(np.random.default_rng(0).integers(0, 256, 4096).astype(np.uint8).tobytes())
    elif how == "text":
        bad.write_text("this is not a model\n")
    elif how == "truncated":
        bad.write_bytes(data[: len(data) // 2])
    elif how == "end cut off":
        bad.write_bytes(data[:-10])
    elif how == "corrupted":
        middle = len(data) // 2
        bad.write_bytes(data[:middle] + bytes(64) + data[middle + 64 :])
    elif how == "npz":
        with open(bad, "wb") as f:
            np.savez(f, model=np.zeros(3))
    elif how == "code, not weights":
        _torch_zip_that_is_not_weights(bad, where / "executed")
    elif how == "state without weights":
        torch.save({"epoch": 1}, bad)
    elif how == "a tensor":
        torch.save(torch.ones(3), bad)
    else:
        raise AssertionError(how)
    return bad


DAMAGES = {
    "missing": "does not exist",
    "folder": "is a folder",
    "empty": "is empty",
    "random bytes": "is not a torch checkpoint",
    "text": "is not a torch checkpoint",
    "truncated": "is not a torch checkpoint",
    "end cut off": "is not a torch checkpoint",
    "corrupted": "fails its checksum",
    "npz": "is not a checkpoint the kit can read",
    "code, not weights": "is not a checkpoint the kit can read",
    "state without weights": "holds no",
    "a tensor": "holds a Tensor",
    "no config": "has no config beside it",
    "broken config": "has a damaged config",
    "config not an object": "not a checkpoint's",
}
"""How a checkpoint file is damaged -> what the message says it is."""


def _one_line(err: BaseException, *mentions) -> str:
    """The error's message: one line, naming everything in ``mentions``, never suggesting weights_only=False."""
    text = str(err)
    assert isinstance(err, CheckpointError) and isinstance(err, ValueError), type(err)
    assert "\n" not in text, text
    for m in mentions:
        assert str(m) in text, f"{m!r} not in {text!r}"
    shown = "".join(traceback.format_exception(err))  # what a notebook shows, chained causes included
    assert "weights_only=False" not in shown and "weights_only` set to `False" not in shown, shown
    return text


# ---------------------------------------------------------------------------------------------
# What every checkpoint records


def test_every_checkpoint_records_its_kind_and_whether_it_resumes(trained):
    for kind, folder in trained.items():
        final = json.loads((folder / f"{kind}.json").read_text())
        last = json.loads((folder / f"{kind}_last.json").read_text())
        assert (final["kind"], final["resumable"]) == (kind, False)
        assert (last["kind"], last["resumable"]) == (kind, True)
        assert kind_of(final) == kind_of(last) == kind


def test_a_checkpoint_cannot_be_saved_without_a_kind(tmp_path):
    with pytest.raises(ValueError, match="kind"):
        save_checkpoint(tmp_path / "m.pt", {"w": torch.ones(1)}, config={}, kind="")
    assert not (tmp_path / "m.pt").exists()


def test_the_trained_checkpoints_load(trained):
    assert not load_vae(trained["vae"] / "vae.pt", device="cpu").training
    assert load_generator(trained["spade"] / "spade.pt", device="cpu").style_dim == 4
    model, config = load_segmenter(trained["segmenter"] / "segmenter.pt", device="cpu")
    assert config["kind"] == "segmenter" and not model.training


# ---------------------------------------------------------------------------------------------
# A bad file given to a loader


@pytest.mark.parametrize("how", DAMAGES)
@pytest.mark.parametrize("loader", LOADERS)
def test_a_bad_file_is_refused_by_every_loader_in_one_line(trained, tmp_path, loader, how):
    kind = KIND_OF_LOADER[loader]
    bad = _damaged(trained[kind] / f"{kind}.pt", how, tmp_path / "given")
    before = snapshot(tmp_path / "given")
    with pytest.raises(CheckpointError) as err:
        LOADERS[loader](bad)
    _one_line(err.value, bad, DAMAGES[how], "give" if how != "broken config" else "copy it again")
    assert snapshot(tmp_path / "given") == before
    assert not (tmp_path / "given" / "executed").exists()  # the weights-only load ran nothing


def test_a_missing_checkpoint_is_still_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="train the model first") as err:
        load_vae(tmp_path / "vae.pt", device="cpu")
    assert isinstance(err.value, MissingCheckpointError) and isinstance(err.value, CheckpointError)
    assert "notebook 02" in str(err.value)


def test_a_folder_holding_the_checkpoint_is_named(trained, tmp_path):
    with pytest.raises(CheckpointError, match=f"did you mean {trained['segmenter'] / 'segmenter.pt'}"):
        load_segmenter(trained["segmenter"], device="cpu")


def test_torchs_advice_to_drop_weights_only_is_never_passed_on(trained, tmp_path):
    bad = _damaged(trained["vae"] / "vae.pt", "code, not weights", tmp_path)
    with pytest.raises(Exception) as raw:  # what torch itself says about this file
        torch.load(bad, weights_only=True)
    assert "weights_only" in str(raw.value)
    for how in ("code, not weights", "random bytes", "npz"):
        bad = _damaged(trained["vae"] / "vae.pt", how, tmp_path / how)
        with pytest.raises(CheckpointError) as err:
            load_checkpoint(bad, kind="vae")
        assert "weights_only" not in str(err.value) and err.value.__cause__ is None
        _one_line(err.value, bad)
    assert not (tmp_path / "executed").exists()


# ---------------------------------------------------------------------------------------------
# A checkpoint of another kind, of an older kit, or whose config disagrees with its weights


@pytest.mark.parametrize(("loader", "other"), [(l, k) for l in LOADERS for k in KINDS if k != KIND_OF_LOADER[l]])
def test_a_checkpoint_of_another_kind_is_refused_naming_both(trained, loader, other):
    kind = KIND_OF_LOADER[loader]
    for name in (f"{other}.pt", f"{other}_last.pt"):
        with pytest.raises(CheckpointError) as err:
            LOADERS[loader](trained[other] / name)
        _one_line(err.value, trained[other] / name, f"is a {other} checkpoint, not a {kind} one", f"give the {kind}.pt")


@pytest.mark.parametrize("loader", LOADERS)
def test_a_checkpoint_written_before_kinds_loads_by_the_shape_of_its_config(trained, tmp_path, loader):
    """Old run directories hold configs without "kind": their structure says what they are."""
    kind = KIND_OF_LOADER[loader]
    old = {k: _edit_config(_copy(trained[k] / f"{k}.pt", tmp_path / k / f"{k}.pt"),
                           lambda c: (c.pop("kind"), c.pop("resumable"))) for k in KINDS}
    LOADERS[loader](old[kind])
    for other in set(KINDS) - {kind}:  # an old checkpoint of another kind is still refused
        with pytest.raises(CheckpointError) as err:
            LOADERS[loader](old[other])
        _one_line(err.value, f"is a {other} checkpoint, not a {kind} one")
    unknown = _edit_config(old[kind], lambda c: (c.update(model={"width": 4}), c.pop("family", None)))
    with pytest.raises(CheckpointError) as err:
        LOADERS[loader](unknown)
    _one_line(err.value, unknown, f"does not say it is a {kind} checkpoint")


WRONG_ARCHITECTURE = {"vae": {"latent_dim": 6}, "spade": {"ngf": 8}, "segmenter": {"channels": [8, 16]}}
"""Settings another training used: the weights beside them do not fit the network they build."""


@pytest.mark.parametrize("loader", LOADERS)
def test_a_config_that_disagrees_with_the_weights_is_refused(trained, tmp_path, loader):
    kind = KIND_OF_LOADER[loader]
    path = _copy(trained[kind] / f"{kind}.pt", tmp_path / f"{kind}.pt")
    _edit_config(path, lambda c: c["model"].update(WRONG_ARCHITECTURE[kind]))
    with pytest.raises(CheckpointError) as err:
        LOADERS[loader](path)
    _one_line(err.value, path, "weights that do not fit the network its config describes", "of another size",
              "copy the .pt and its .json together")
    _edit_config(path, lambda c: c["model"].update(width_multiplier=2))  # settings the network does not take
    with pytest.raises(CheckpointError) as err:
        LOADERS[loader](path)
    _one_line(err.value, path, f"build no {kind}", "width_multiplier")
    _edit_config(path, lambda c: c.pop("model"))
    with pytest.raises(CheckpointError) as err:
        LOADERS[loader](path)
    _one_line(err.value, path, "without the")


def test_weights_of_another_network_are_refused_naming_what_differs(trained, tmp_path):
    path = _copy(trained["segmenter"] / "segmenter.pt", tmp_path / "segmenter.pt")
    state = torch.load(path, weights_only=True)
    state["model"]["extra.weight"] = torch.zeros(2)
    first = next(iter(state["model"]))
    del state["model"][first]
    torch.save(state, path)
    with pytest.raises(CheckpointError) as err:
        load_segmenter(path, device="cpu")
    _one_line(err.value, "1 missing", repr(first), "1 unexpected", "'extra.weight'")


# ---------------------------------------------------------------------------------------------
# Resuming: a damaged <name>_last.pt stops the trainer (it never starts over silently)


RESUME_DAMAGES = {
    "truncated": "is not a torch checkpoint",
    "corrupted": "fails its checksum",
    "no config": "has no config beside it",
    "another kind": "checkpoint, not a",
    "a final checkpoint": "is a final checkpoint",
}


@pytest.mark.parametrize("how", RESUME_DAMAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_a_damaged_last_checkpoint_stops_the_trainer_in_one_line(trained, cache, tmp_path, kind, how):
    run_dir = shutil.copytree(trained[kind], tmp_path / "run")
    last = run_dir / f"{kind}_last.pt"
    if how == "another kind":
        other = "vae" if kind != "vae" else "segmenter"
        _copy(trained[other] / f"{other}_last.pt", last)
    elif how == "a final checkpoint":
        _copy(run_dir / f"{kind}.pt", last)
    else:
        last.unlink()
        last.with_suffix(".json").unlink()
        _damaged(trained[kind] / f"{kind}_last.pt", how, run_dir)
    before = snapshot(run_dir)
    with pytest.raises(CheckpointError) as err:
        _train(kind, cache, run_dir, max_epochs=2)
    _one_line(err.value, last, RESUME_DAMAGES[how], "training cannot resume from it",
              f"delete it and {kind}_last.json", "another run dir", "resume=False")
    assert snapshot(run_dir) == before  # nothing trained over, nothing started again
    assert len(_train(kind, cache, run_dir, max_epochs=1, resume=False)) == 1  # as the message says


def test_resuming_another_models_weights_is_refused(trained, cache, tmp_path):
    """A run dir whose ``vae_last.pt`` holds a VAE of another size: its weights do not fit."""
    run_dir = shutil.copytree(trained["vae"], tmp_path / "run")
    before = snapshot(run_dir)
    with pytest.raises(CheckpointError) as err:
        _train("vae", cache, run_dir, max_epochs=2, latent_dim=6)
    _one_line(err.value, run_dir / "vae_last.pt", "model weights that do not fit", "delete it")
    assert snapshot(run_dir) == before


# ---------------------------------------------------------------------------------------------
# The cardigan command: one line, exit status 1, nothing changed


def _refused(capsys, argv, **kw) -> str:
    line = refused(capsys, argv, **kw)
    assert "weights_only" not in line
    return line


SEGMENT_CASES = ("missing", "folder", "empty", "random bytes", "truncated", "corrupted", "code, not weights",
                 "no config", "broken config", "a vae checkpoint", "a spade checkpoint", "config disagrees")


@pytest.mark.parametrize("case", SEGMENT_CASES)
def test_cardigan_segment_refuses_a_bad_model(trained, phantom_folder, tmp_path, capsys, case):
    given = tmp_path / "given"
    good = trained["segmenter"] / "segmenter.pt"
    if case in DAMAGES:
        bad, mention = _damaged(good, case, given), DAMAGES[case]
    elif case == "config disagrees":
        bad = _edit_config(_copy(good, given / "segmenter.pt"), lambda c: c["model"].update(channels=[8, 16]))
        mention = "do not fit"
    else:
        other = case.split()[1]
        bad, mention = _copy(trained[other] / f"{other}.pt", given / "model.pt"), f"is a {other} checkpoint"
    given.mkdir(exist_ok=True)
    out = tmp_path / "out"
    _refused(capsys, ["segment", "--model", bad, "--input", phantom_folder, "--output", out],
             mentions=[bad, mention], unchanged=[given, phantom_folder])
    assert not out.exists()


def _run_dir(cache, path: Path) -> Path:
    """A run directory holding a copy of notebook 01's cache."""
    shutil.copytree(cache.path, path / "cache" / cache.path.name)
    return path


GENERATE_CASES = {
    "vae truncated": ("vae", "truncated", "is not a torch checkpoint"),
    "vae is a generator": ("vae", "spade", "is a spade checkpoint, not a vae one"),
    "generator is a vae": ("spade", "vae", "is a vae checkpoint, not a spade one"),
    "generator without config": ("spade", "no config", "has no config beside it"),
}


@pytest.mark.parametrize("case", GENERATE_CASES)
def test_cardigan_generate_refuses_bad_models(trained, cache, tmp_path, capsys, case):
    run_dir = _run_dir(cache, tmp_path / "run")
    for kind in ("vae", "spade"):
        _copy(trained[kind] / f"{kind}.pt", run_dir / f"{kind}.pt")
    which, how, mention = GENERATE_CASES[case]
    bad = run_dir / f"{which}.pt"
    bad.unlink()
    bad.with_suffix(".json").unlink()
    if how in KINDS:
        _copy(trained[how] / f"{how}.pt", bad)
    else:
        _damaged(trained[which] / f"{which}.pt", how, run_dir)
    _refused(capsys, ["generate", "--run-dir", run_dir, "--profile", "smoke", "--image-size", "64", "--device", "cpu"],
             mentions=[bad, mention], unchanged=[run_dir])
    assert not (run_dir / "synthetic").exists()


@pytest.mark.parametrize("kind", KINDS)
def test_cardigan_train_refuses_a_damaged_last_checkpoint(trained, cache, tmp_path, capsys, kind):
    run_dir = _run_dir(cache, tmp_path / "run")
    where = run_dir / "segmenter" if kind == "segmenter" else run_dir
    last = _damaged(trained[kind] / f"{kind}_last.pt", "truncated", where)
    shutil.copyfile(trained[kind] / f"{kind}_history.csv", where / f"{kind}_history.csv")
    _refused(capsys, ["train", kind, "--run-dir", run_dir, "--profile", "smoke", "--image-size", "64", "--device", "cpu"],
             mentions=[last, "training cannot resume from it", "delete it"], unchanged=[run_dir])


def test_cardigan_train_refuses_a_last_checkpoint_of_another_kind(trained, cache, tmp_path, capsys):
    run_dir = _run_dir(cache, tmp_path / "run")
    last = _copy(trained["segmenter"] / "segmenter_last.pt", run_dir / "vae_last.pt")
    _refused(capsys, ["train", "vae", "--run-dir", run_dir, "--profile", "smoke", "--image-size", "64", "--device", "cpu"],
             mentions=[last, "is a segmenter checkpoint, not a vae one", "delete it"], unchanged=[run_dir])


def test_cardigan_study_refuses_a_damaged_run_checkpoint(trained, cache, tmp_path, capsys):
    run_dir = _run_dir(cache, tmp_path / "run")
    folder = run_path(run_dir, "real", 1.0, 0)
    last = _damaged(trained["segmenter"] / "segmenter_last.pt", "truncated", folder)
    _refused(capsys, ["study", "--run-dir", run_dir, "--profile", "smoke", "--image-size", "64", "--regimes", "real",
                      "--fractions", "1", "--seeds", "0", "--device", "cpu"],
             mentions=[last, "training cannot resume from it"], unchanged=[folder])
