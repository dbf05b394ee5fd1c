"""What every trainer shares (cardigan_utils.loop): resuming from ``<name>_last.pt`` and closing an epoch."""

import json
import time

import pandas as pd
import torch

from cardigan_utils import loop
from cardigan_utils.runs import write_csv_atomic

CONFIG = {"model": {"width": 4}, "train": {"lr": 0.1}}


def _close(run_dir, history, epoch, **row):
    """Close epoch ``epoch`` as a trainer does, with a tiny state to resume from."""
    state = {"weights": torch.full((2,), float(epoch)), "epoch": epoch}
    loop.close_epoch({"epoch": epoch, **row}, history, t0=time.perf_counter(), run_dir=run_dir, name="net",
                     kind="net", config=CONFIG, last_state=state)


def test_resume_from_nothing_starts_from_scratch(tmp_path):
    resumed = loop.resume_from(tmp_path, "net", kind="net", device="cpu")
    assert resumed.state is None and resumed.config == {} and resumed.start_epoch == 0 and resumed.history == []


def test_resume_from_the_last_checkpoint_returns_its_epoch_and_history(tmp_path):
    history = []
    _close(tmp_path, history, 1, loss=0.75, seconds=1.5)
    _close(tmp_path, history, 2, loss=0.5, seconds=2.5)
    resumed = loop.resume_from(tmp_path, "net", kind="net", device="cpu")
    assert resumed.start_epoch == 2
    assert resumed.history == [{"epoch": 1, "loss": 0.75, "seconds": 1.5}, {"epoch": 2, "loss": 0.5, "seconds": 2.5}]
    assert resumed.state["epoch"] == 2 and torch.equal(resumed.state["weights"], torch.full((2,), 2.0))
    assert resumed.config == {**CONFIG, "epoch": 2, "kind": "net", "resumable": True}
    # resume=False starts again even though a checkpoint exists
    assert loop.resume_from(tmp_path, "net", kind="net", device="cpu", resume=False).start_epoch == 0


def test_resume_ignores_history_rows_after_the_checkpoint(tmp_path):
    history = []
    _close(tmp_path, history, 1, loss=0.75)
    _close(tmp_path, history, 2, loss=0.5)
    # killed between the history write and the checkpoint write of epoch 3: one row too many
    write_csv_atomic(tmp_path / "net_history.csv", pd.DataFrame(history + [{"epoch": 3, "loss": 0.25, "seconds": 1.0}]))
    resumed = loop.resume_from(tmp_path, "net", kind="net", device="cpu")
    assert resumed.start_epoch == 2 and [row["epoch"] for row in resumed.history] == [1, 2]


def test_close_epoch_writes_the_history_and_the_last_checkpoint(tmp_path):
    history = []
    loop.close_epoch({"epoch": 1, "loss": 0.5}, history, t0=time.perf_counter() - 3.0, run_dir=tmp_path, name="net",
                     kind="net", config=CONFIG, last_state={"epoch": 1, "weights": torch.ones(3)})
    assert history[0]["seconds"] >= 3.0  # timed from t0
    loop.close_epoch({"epoch": 2, "loss": 0.25, "seconds": 42.0}, history, t0=time.perf_counter(), run_dir=tmp_path,
                     name="net", kind="net", config=CONFIG, last_state={"epoch": 2, "weights": torch.zeros(3)})
    assert history[1]["seconds"] == 42.0  # a preset time is kept
    written = pd.read_csv(tmp_path / "net_history.csv")
    assert list(written.epoch) == [1, 2] and list(written.loss) == [0.5, 0.25] and written.seconds.iloc[1] == 42.0
    assert loop.last_path(tmp_path, "net") == tmp_path / "net_last.pt"
    last = torch.load(tmp_path / "net_last.pt", weights_only=True)
    assert last["epoch"] == 2 and torch.equal(last["weights"], torch.zeros(3))
    assert json.loads((tmp_path / "net_last.json").read_text()) == {**CONFIG, "epoch": 2, "kind": "net", "resumable": True}


def test_epoch_and_rank_seeds():
    from cardigan_utils.distributed import Context

    assert loop.epoch_seed(3, 1) != loop.epoch_seed(3, 2) != loop.epoch_seed(4, 2)
    assert loop.rank_seed(3, 1, Context(rank=0, world_size=2)) == loop.epoch_seed(3, 1)  # rank 0: the one-process seed
    assert loop.rank_seed(3, 1, Context(rank=1, world_size=2)) != loop.epoch_seed(3, 1)
