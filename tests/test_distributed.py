"""Training under torchrun: two CPU processes (gloo) end with the same weights and resume together."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from cardigan_utils import distributed
from cardigan_utils.data import prepare_cache

ROOT = Path(__file__).resolve().parents[1]


def test_one_process_outside_torchrun(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    ctx = distributed.context()
    assert not ctx.distributed and ctx.is_main
    order = np.arange(10)
    assert distributed.shard(order, ctx) is order and distributed.mean(2.5, ctx) == 2.5
    model = torch.nn.Linear(2, 2)
    assert distributed.wrap(model, ctx, torch.device("cpu")) is model


def test_shards_are_disjoint_equal_and_cover_the_permutation():
    order = np.random.default_rng(0).permutation(11)
    parts = [distributed.shard(order, distributed.Context(rank=r, world_size=3)) for r in range(3)]
    assert [len(p) for p in parts] == [3, 3, 3]  # the tail of 2 is dropped: every rank runs as many steps
    assert sorted(np.concatenate(parts)) == sorted(order[:9])
    assert list(parts[1]) == list(order[1:9:3])  # DistributedSampler's partition


@pytest.fixture(scope="module")
def torchrun_out(tmp_path_factory):
    cache = prepare_cache("phantom-mri", run_dir=tmp_path_factory.mktemp("ddp_cache"), image_size=64, n_patients=5,
                          progress=False)
    out = tmp_path_factory.mktemp("ddp")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CARDIGAN_PROGRESS": "0"}
    env.pop("WORLD_SIZE", None)
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(ROOT / "tests" / "ddp_worker.py"), str(cache.path), str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


@pytest.mark.parametrize("what", ["vae", "vae_resumed", "spade", "segmenter"])
def test_both_ranks_hold_identical_weights(torchrun_out, what):
    a = torch.load(torchrun_out / f"{what}_rank0.pt", weights_only=True)
    b = torch.load(torchrun_out / f"{what}_rank1.pt", weights_only=True)
    assert a.keys() == b.keys() and len(a) > 4
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"{what}: ranks differ in {different[:5]}"
    if what == "spade":  # spectral norm's power-iteration vectors are buffers: the same on both ranks too
        assert any(k.startswith("discriminator.") and k.endswith("_u") for k in a)


def test_rank_zero_writes_and_both_ranks_resume_from_its_checkpoint(torchrun_out):
    first = pd.read_csv(torchrun_out / "vae_history_rank0.csv")
    resumed = [pd.read_csv(torchrun_out / f"vae_resumed_history_rank{r}.csv") for r in (0, 1)]
    assert list(first.epoch) == [1] and all(list(h.epoch) == [1, 2] for h in resumed)
    # rank 1 never validates: its first row has a validation loss only because it read rank 0's history
    assert resumed[1].val_loss.notna().iloc[0] and np.isclose(resumed[1].loss.iloc[0], first.loss.iloc[0])
    assert np.isclose(resumed[0].loss.iloc[1], resumed[1].loss.iloc[1])  # the loss is averaged over the ranks
    assert torch.load(torchrun_out / "vae" / "vae_last.pt", weights_only=True)["epoch"] == 2
    best = torch.load(torchrun_out / "vae" / "vae.pt", weights_only=True)["model"]  # the best epoch, with its prior
    for r in (0, 1):  # every rank ends holding what rank 0 wrote
        held = torch.load(torchrun_out / f"vae_resumed_rank{r}.pt", weights_only=True)
        assert all(torch.equal(v, held[f"vae.{k}"]) for k, v in best.items()), r
    for name in ("spade/spade.pt", "spade/spade_last.pt", "segmenter/segmenter.pt", "segmenter/segmenter_history.csv"):
        assert (torchrun_out / name).exists(), name
    assert len(pd.read_csv(torchrun_out / "segmenter" / "segmenter_history.csv")) == 2


# --- `cardigan train`: the notebooks' training cells as a command ----------------------------------


def _notebook_defaults(name):
    """Literal values of a notebook's parameters cell."""
    import ast
    import json

    nb = json.loads((ROOT / "notebooks" / name).read_text())
    cell = next(c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", []))
    values = {}
    for node in ast.parse("".join(cell["source"])).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            try:
                values[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass  # os.environ.get(...)
    return values


def _profile_params_keywords(name, stage):
    """The keywords a notebook passes by name to ``config.profile_params(..., stage=stage)``: ``{kw: variable}``."""
    import ast
    import json

    nb = json.loads((ROOT / "notebooks" / name).read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        try:
            tree = ast.parse("".join(cell["source"]))
        except SyntaxError:
            continue  # IPython magics
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == "profile_params"
                    and any(k.arg == "stage" and isinstance(k.value, ast.Constant) and k.value.value == stage
                            for k in node.keywords)):
                return {k.arg: k.value.id for k in node.keywords if isinstance(k.value, ast.Name)}
    raise AssertionError(f"{name} never calls profile_params(..., stage={stage!r})")


def test_train_command_takes_the_notebooks_parameters():
    from cardigan_utils import cli
    from cardigan_utils.config import PROFILES

    # what the notebooks' parameters cells used to set themselves (the old NOTEBOOK_DEFAULTS)
    formerly_in_the_cells = {"vae": {"latent_dim", "beta"}, "spade": {"fm_weight", "compile"}}
    for kind, notebook in (("vae", "02_shape_vae.ipynb"), ("spade", "03_spade_gan.ipynb")):
        cell = _notebook_defaults(notebook)
        shared = set(cli.train_parameters(kind, profile="smoke")) & set(cell)
        assert formerly_in_the_cells[kind] <= shared, (kind, shared)
        # None in the cell: the notebook takes the value from the profile_params the command uses
        assert all(cell[k] is None for k in shared), (kind, {k: cell[k] for k in shared})
        passed = _profile_params_keywords(notebook, stage=kind)
        assert all(passed.get(k) == k for k in shared), (kind, passed)
    kw = cli.train_parameters("spade", profile="smoke", overrides={"max_epochs": 3})
    assert kw["ngf"] == PROFILES["smoke"]["spade"]["ngf"] and kw["max_epochs"] == 3 and kw["fm_weight"] == 10.0
    with pytest.raises(ValueError, match="takes no \\['latent_dim'\\]"):
        cli.train_parameters("segmenter", profile="smoke", overrides={"latent_dim": 4})


def test_train_command_without_a_cache_says_which_notebook_writes_it(tmp_path, capsys):
    from cardigan_utils import cli

    assert cli.main(["train", "vae", "--run-dir", str(tmp_path), "--profile", "smoke"]) == 1
    assert "run notebook 01 first" in capsys.readouterr().err


def test_train_command_under_torchrun_trains_and_resumes(tmp_path, capsys):
    run_dir = tmp_path / "run"
    prepare_cache("phantom-mri", run_dir=run_dir, image_size=64, n_patients=5, progress=False)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CARDIGAN_PROGRESS": "0"}
    env.pop("WORLD_SIZE", None)

    def torchrun(*args):
        done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                               "-m", "cardigan_utils.cli", *args, "--run-dir", str(run_dir), "--profile", "smoke",
                               "--device", "cpu"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
        return done.stdout

    said = torchrun("train", "vae", "-p", "max_epochs", "1")
    assert said.count("cardigan: vae trained to epoch 1 on 2 process(es)") == 1  # rank 0 alone speaks
    torchrun("train", "spade")
    torchrun("train", "segmenter", "-p", "max_epochs", "1")
    torchrun("train", "segmenter", "-p", "max_epochs", "2")
    assert (run_dir / "vae.pt").exists() and (run_dir / "spade.pt").exists()
    history = pd.read_csv(run_dir / "segmenter" / "segmenter_history.csv")
    assert list(history.epoch) == [1, 2]  # the second call resumed from the first one's checkpoint

    # generation: the two processes write disjoint shards; the set is the one a single process makes
    said = torchrun("generate", "-p", "n_synthetic", "30", "-p", "shard_size", "10", "-p", "filter_plausible", "false")
    assert "30 pairs in 3 shard(s) by 2 process(es)" in said
    from cardigan_utils import synthetic
    from cardigan_utils.data import cache_dir, load_cache
    from cardigan_utils.images import load_spade
    from cardigan_utils.shapes import load_vae

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each torchrun process
    try:
        alone = synthetic.generate_dataset(load_vae(run_dir / "vae.pt", device="cpu"),
                                           load_spade(run_dir / "spade.pt", device="cpu"), out_dir=tmp_path / "alone",
                                           n=30, shard_size=10, modality="mri", filter_plausible=False, progress_bar=False,
                                           spacing_mm=float(load_cache(cache_dir(run_dir, "phantom-mri", 64)).slices["spacing_mm"].median()))
    finally:
        torch.set_num_threads(threads)
    shared = run_dir / "synthetic" / "phantom-mri_64"
    assert synthetic.read_manifest(shared)["processes"] == 2
    for k in range(3):
        a, b = np.load(alone / f"shard_{k:05d}.npz"), np.load(shared / f"shard_{k:05d}.npz")
        assert np.array_equal(a["labels"], b["labels"]) and np.allclose(a["images"], b["images"], atol=1e-2), k
    assert len(load_cache(cache_dir(run_dir, "synthetic-phantom-mri", 64))) == 30  # notebook 05 can use it

    # another size of set in the same place: refused in words, made with --overwrite
    from cardigan_utils import cli

    again = ["generate", "--run-dir", str(run_dir), "--profile", "smoke", "--device", "cpu",
             "-p", "n_synthetic", "20", "-p", "shard_size", "10", "-p", "filter_plausible", "false"]
    assert cli.main(again) == 1 and "holds a set generated with" in capsys.readouterr().err
    assert cli.main([*again, "--overwrite"]) == 0 and synthetic.read_manifest(shared)["n"] == 20
