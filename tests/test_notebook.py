import asyncio
import json

import nbformat
import pytest

from cardigan_utils import cli, notebook
from conftest import ROOT


def _notebook(path, cells, params="profile = 'smoke'\nseed = 0\nrun_dir = 'x'\n"):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(params, metadata={"tags": ["parameters"]})] + [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nbformat.write(nb, str(path))
    return path


def test_sequence_order_and_declared_parameters(tmp_path):
    for name in ("02_b.ipynb", "01_a.ipynb", "notes.ipynb"):
        _notebook(tmp_path / name, ["1"])
    assert [p.name for p in notebook.sequence(tmp_path)] == ["01_a.ipynb", "02_b.ipynb"]
    assert notebook.declared_parameters(tmp_path / "01_a.ipynb") == {"profile", "seed", "run_dir"}
    with pytest.raises(FileNotFoundError, match="no numbered notebooks"):
        notebook.sequence(tmp_path / "none")


def test_run_sequence_passes_parameters_and_names_the_failing_cell(tmp_path):
    nbdir = tmp_path / "nb"
    nbdir.mkdir()
    _notebook(nbdir / "01_ok.ipynb", ["import pathlib\npathlib.Path(run_dir, 'seen.txt').write_text(f'{profile} {seed}')"])
    _notebook(nbdir / "02_bad.ipynb", ["x = 1", "raise ValueError('broken on purpose')"])
    lines = []
    with pytest.raises(notebook.NotebookFailed, match=r"02_bad\.ipynb failed in cell \[4\] \(\"raise ValueError\('broken on purpose'\)\"\) with ValueError: broken on purpose"):
        notebook.run_sequence(tmp_path / "run", profile="smoke", seed=7, notebook_dir=nbdir, log=lines.append)
    assert (tmp_path / "run" / "seen.txt").read_text() == "smoke 7"
    assert lines[0].startswith("[1/2] 01_ok") and lines[-1].startswith("[2/2] 02_bad")
    assert (tmp_path / "run" / "notebooks" / "02_bad.ipynb").exists()


def test_kernel_failures_name_the_notebook_and_unknown_parameters_are_refused(tmp_path):
    nbdir = tmp_path / "nb"
    nbdir.mkdir()
    _notebook(nbdir / "01_a.ipynb", ["1"])
    # A kernel that cannot start (or dies) is not a cell error: the notebook is still named.
    with pytest.raises(notebook.NotebookFailed, match=r"01_a\.ipynb failed: NoSuchKernel"):
        notebook.run_sequence(tmp_path / "run", notebook_dir=nbdir, kernel_name="no-such-kernel", log=lambda line: None)
    with pytest.raises(ValueError, match=r"no notebook of this run declares \['n_patinets'\]"):
        notebook.run_sequence(tmp_path / "run", notebook_dir=nbdir, parameters={"n_patinets": 3}, log=lambda line: None)


def test_run_sequence_can_leave_the_exercises_out(tmp_path):
    nbdir = tmp_path / "nb"
    nbdir.mkdir()
    path = _notebook(nbdir / "01_a.ipynb", ["import pathlib\npathlib.Path(run_dir, 'study.txt').write_text('ran')"],
                     params="run_dir = 'x'\n")
    nb = nbformat.read(str(path), as_version=4)
    nb.cells += [nbformat.v4.new_markdown_cell("### Exercise 1: fail", metadata={"tags": ["exercise"]}),
                 nbformat.v4.new_code_cell("raise RuntimeError('the exercise ran')",
                                           metadata={"nbgrader": {"solution": True, "grade": False, "grade_id": "e1"}})]
    nbformat.write(nb, str(path))
    lines = []
    done = notebook.run_sequence(tmp_path / "run", notebook_dir=nbdir, exercises=False, log=lines.append)
    assert (tmp_path / "run" / "study.txt").read_text() == "ran" and done[0]["exercises"] is False
    assert "no exercises" in lines[0]
    executed = nbformat.read(str(tmp_path / "run" / "notebooks" / "01_a.ipynb"), as_version=4)
    assert executed.cells[-1].source == notebook.SKIPPED_EXERCISES
    assert len(nbformat.read(str(path), as_version=4).cells) == 4  # the notebook itself keeps them
    with pytest.raises(notebook.NotebookFailed, match="the exercise ran"):
        notebook.run_sequence(tmp_path / "run2", notebook_dir=nbdir, log=lambda line: None)


def test_relative_data_dir_is_resolved_from_the_caller(tmp_path, monkeypatch):
    nbdir = tmp_path / "nb"
    nbdir.mkdir()
    _notebook(nbdir / "01_a.ipynb", ["import pathlib\npathlib.Path(run_dir, 'd.txt').write_text(str(data_dir))"],
              params="run_dir = 'x'\ndata_dir = None\n")
    monkeypatch.chdir(tmp_path)
    notebook.run_sequence(tmp_path / "run", data_dir="mydata", notebook_dir=nbdir, log=lambda line: None)
    assert (tmp_path / "run" / "d.txt").read_text() == str(tmp_path / "mydata")


def test_cli_reports_failures_without_traceback(tmp_path, capsys):
    assert cli.main(["run", "--run-dir", str(tmp_path), "--only", "99"]) == 1
    assert "no notebook" in capsys.readouterr().err


def test_clean_notebook_keeps_only_marked_outputs(tmp_path):
    nb = nbformat.v4.new_notebook()
    keep = nbformat.v4.new_code_cell("# NBVAL_CHECK_OUTPUT\nprint(1)", execution_count=2,
                                     outputs=[nbformat.v4.new_output("stream", text="1\n")])
    drop = nbformat.v4.new_code_cell("print(2)", execution_count=3, outputs=[nbformat.v4.new_output("stream", text="2\n")],
                                     metadata={"papermill": {"duration": 1}})
    nb.cells = [keep, drop]
    nbformat.write(nb, str(tmp_path / "a.ipynb"))
    assert notebook.clean_notebook(tmp_path / "a.ipynb")
    clean = json.loads((tmp_path / "a.ipynb").read_text())
    assert clean["cells"][0]["outputs"] and not clean["cells"][1]["outputs"]
    assert clean["cells"][1]["execution_count"] is None and "papermill" not in clean["cells"][1]["metadata"]
    assert not notebook.clean_notebook(tmp_path / "a.ipynb")  # idempotent


def test_committed_notebooks_are_clean_and_have_a_parameters_cell():
    """Notebooks are committed without outputs, except cells marked for nbval."""
    for path in notebook.sequence():
        before = path.read_text()
        copy = ROOT / "notebooks" / f".{path.name}.check"
        try:
            notebook.clean_notebook(path, output=copy)
            assert copy.read_text() == before, f"{path.name} is not clean: run `make clean-notebooks`"
        finally:
            copy.unlink(missing_ok=True)
        params = notebook.declared_parameters(path)
        assert {"profile", "dataset", "data_dir", "run_dir", "seed"} <= params, path.name
        nb = json.loads(before)
        assert nb["metadata"]["kernelspec"]["name"] == "python3"
        assert sum("parameters" in c["metadata"].get("tags", []) for c in nb["cells"]) == 1
        assert any(notebook.CHECK_MARK in "".join(c["source"]) for c in nb["cells"]), f"{path.name}: no nbval-checked cell"


def test_cardigan_run_prints_only_its_own_lines(tmp_path, capfd):
    """Kernels talk over private IPC sockets: no "running over TCP without encryption" warning,
    and the socket folder is gone once the notebook has run."""
    import glob
    import tempfile

    nbdir = tmp_path / "nb"
    nbdir.mkdir()
    _notebook(nbdir / "01_a.ipynb", ["import os\nprint(os.getpid())"])
    before = set(glob.glob(f"{tempfile.gettempdir()}/cardigan-kernel-*"))
    notebook.run_sequence(tmp_path / "run", notebook_dir=nbdir, log=print)
    out, err = capfd.readouterr()
    assert "TCP" not in out + err and "WARNING" not in out + err, err
    assert out.splitlines()[0].startswith("[1/1] 01_a") and not err.strip()
    assert set(glob.glob(f"{tempfile.gettempdir()}/cardigan-kernel-*")) == before
    manager = notebook.LocalKernelManager()
    assert manager.transport == "ipc" and manager.ip.startswith(manager.socket_dir)
    asyncio.run(manager.cleanup_resources())
