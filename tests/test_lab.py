"""Student copies: solutions replaced by nbgrader's stub, teacher cells gone, outputs cleared, sheets written."""

import re

import nbformat
import pytest

from cardigan_utils import lab, notebook


def _teacher():
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["cardigan_lab"] = {"objectives": ["compute a Dice coefficient"], "minutes": 3}
    intro = nbformat.v4.new_code_cell("x = 1", outputs=[nbformat.v4.new_output("stream", text="hello\n")])
    task = nbformat.v4.new_markdown_cell("### Exercise 1: Dice by hand\nWrite it.\n\n**A good answer** matches the kit within 1e-6.",
                                         metadata={"tags": ["exercise"]})
    solution = nbformat.v4.new_code_cell("def dice(a, b):\n    ### BEGIN SOLUTION\n    return 2 * (a & b).sum() / (a.sum() + b.sum())\n    ### END SOLUTION",
                                         metadata={"nbgrader": {"solution": True, "grade": False, "locked": False,
                                                                "grade_id": "dice", "schema_version": 3}})
    check = nbformat.v4.new_code_cell("import numpy as np\na = np.ones(4, bool)\nassert abs(dice(a, a) - 1) < 1e-6, 'two equal masks have Dice 1'",
                                      metadata={"nbgrader": {"solution": False, "grade": True, "locked": True, "points": 2,
                                                             "grade_id": "check_dice", "schema_version": 3}})
    secret = nbformat.v4.new_code_cell("print('the answer key')", metadata={"tags": ["teacher"]})
    nb.cells = [intro, task, solution, check, secret]
    return nb


def test_student_copy_has_stub_no_solution_no_outputs_no_teacher_cells():
    teacher = _teacher()
    student = lab.student_notebook(teacher)
    text = "\n".join(c.source for c in student.cells)
    assert "# YOUR CODE HERE" in text and "raise NotImplementedError()" in text
    assert "2 * (a & b)" not in text and "BEGIN SOLUTION" not in text and "answer key" not in text
    assert all(not c.get("outputs") for c in student.cells if c.cell_type == "code")
    check = student.cells[3]
    assert check.metadata["editable"] is False and check.metadata["deletable"] is False  # nbgrader's LockCells
    assert "2 * (a & b)" in teacher.cells[2].source  # the teacher copy is untouched


def test_the_stub_raises_and_the_filled_in_copy_passes_the_check():
    teacher = _teacher()
    student = lab.student_notebook(teacher)
    stubbed = {}
    exec(student.cells[2].source, stubbed)
    with pytest.raises(NotImplementedError):
        exec(student.cells[3].source, stubbed)
    filled = lab.fill_in(student, teacher)
    assert filled.cells[2].source == teacher.cells[2].source.replace("    ### BEGIN SOLUTION\n", "").replace("\n    ### END SOLUTION", "")
    answered = {}
    exec(filled.cells[2].source, answered)
    exec(filled.cells[3].source, answered)  # the check passes


def test_malformed_teacher_notebooks_are_refused():
    nb = _teacher()
    nb.cells[2].source = nb.cells[2].source.replace("    ### END SOLUTION", "")
    with pytest.raises(ValueError, match="BEGIN SOLUTION"):
        lab.student_notebook(nb)
    nb = _teacher()
    nb.cells[3].metadata["nbgrader"]["points"] = 0
    assert any("worth points" in p for p in lab.check_teacher_notebook(nb))


def test_lab_sheet_lists_objectives_time_and_exercises():
    sheet = lab.lab_sheet(_teacher(), name="01_datasets.ipynb")
    assert "compute a Dice coefficient" in sheet and "About 3 minutes" in sheet
    assert "**Exercise 1: Dice by hand** (2 points)" in sheet and "matches the kit within 1e-6" in sheet


def test_without_exercises_keeps_every_other_cell_and_says_where_they_were():
    teacher = _teacher()
    answer = nbformat.v4.new_markdown_cell("YOUR ANSWER HERE", metadata={"nbgrader": {"solution": True, "grade": False,
                                                                                    "grade_id": "answer", "schema_version": 3}})
    after = nbformat.v4.new_code_cell("y = x + 1")
    teacher.cells += [answer, after]
    demo = notebook.without_exercises(teacher, note="*no exercises here*")
    assert [c.source for c in demo.cells] == [teacher.cells[0].source, "*no exercises here*", teacher.cells[4].source, "y = x + 1"]
    assert demo.cells[0].outputs == teacher.cells[0].outputs  # the kept cells as they were
    assert len(teacher.cells) == 7  # the teacher notebook is untouched
    plain = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")])
    assert notebook.without_exercises(plain, note="unused").cells == plain.cells


def _names(cells) -> tuple[set[str], set[str]]:
    """(names bound, names read) by the Python code of ``cells`` (IPython magics skipped)."""
    import ast

    bound, read = set(), set()
    for cell in cells:
        if cell.cell_type != "code":
            continue
        code = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
        for node in ast.walk(ast.parse(code)):
            if isinstance(node, ast.Name):
                (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
            elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                bound.add(node.name)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                bound.update((a.asname or a.name).split(".")[0] for a in node.names)
    return bound, read


def test_committed_notebooks_run_without_their_exercises():
    """Nothing outside the exercises reads a name that only an exercise defines (``make demo`` leaves them out)."""
    for path in notebook.sequence():
        teacher = nbformat.read(str(path), as_version=4)
        demo = notebook.without_exercises(teacher, note="left out")
        assert not any(EXERCISE in c.source for c in demo.cells for EXERCISE in ("BEGIN SOLUTION", "lab.check("))
        kept_bound, kept_read = _names(demo.cells)
        exercise_bound, _ = _names([c for c in teacher.cells if c not in demo.cells])
        orphans = (exercise_bound - kept_bound) & kept_read
        assert not orphans, f"{path.name}: cells outside the exercises read {sorted(orphans)}, defined only in exercises"


def test_check_speaks_in_words(capsys):
    lab.check(True, passed="Dice matches MONAI's.", failed="unused")
    assert "Well done: Dice matches MONAI's." in capsys.readouterr().out
    with pytest.raises(AssertionError, match="Not yet: your Dice is 0.5, MONAI's 0.7"):
        lab.check(False, passed="unused", failed="your Dice is 0.5, MONAI's 0.7")


# --- the real notebooks -------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from cardigan_utils.notebook import NOTEBOOK_DIR

    out = tmp_path_factory.mktemp("lab")
    written = lab.build_lab(NOTEBOOK_DIR, out)
    return NOTEBOOK_DIR, out, written


def test_every_notebook_with_exercises_gets_a_copy_and_a_sheet_without_solutions(built):
    notebooks, out, written = built
    copies = sorted(p for p in written if p.suffix == ".ipynb")
    assert copies and all((out / f"{p.stem}.md").exists() for p in copies)
    for copy in copies:
        teacher = nbformat.read(notebooks / copy.name, as_version=4)
        assert len(lab.exercises(teacher)) >= 3, f"{copy.name}: fewer than three exercises"
        for cell in teacher.cells:  # check cells speak through lab.check and compare floats with a tolerance
            if cell.get("metadata", {}).get("nbgrader", {}).get("grade"):
                assert "lab.check(" in cell.source or "nothing to check" in cell.source, (copy.name, cell.source[:80])
                assert not re.search(r"^\s*assert |==\s*-?\d+\.\d|\d\.\d+\s*==", cell.source, flags=re.M), (copy.name, cell.source)
        info = teacher.metadata["cardigan_lab"]  # measured by benchmarks/lab_profile.py: a 10-minute slot each
        assert len(info["objectives"]) >= 2 and 0 < info["minutes"] <= 10, (copy.name, info)
        assert f"About {info['minutes']} minutes" in (out / f"{copy.stem}.md").read_text()
        student = nbformat.read(copy, as_version=4)
        for t_cell in teacher.cells:
            if t_cell.get("metadata", {}).get("nbgrader", {}).get("solution") and t_cell.cell_type == "code":
                body = t_cell.source.split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0].strip()
                assert all(body not in s.source for s in student.cells), f"{copy.name}: solution text left"
        assert all(not c.get("outputs") for c in student.cells if c.cell_type == "code")


def _execute(nb, tmp_path, name, run_dir):
    import papermill as pm

    from cardigan_utils.notebook import NOTEBOOK_DIR

    path = tmp_path / name
    nbformat.write(nb, path)
    return pm.execute_notebook(str(path), str(tmp_path / f"out_{name}"), parameters={"profile": "smoke", "run_dir": str(run_dir)},
                               kernel_name="python3", cwd=str(NOTEBOOK_DIR), progress_bar=False)


@pytest.mark.notebooks
def test_student_copies_stop_at_the_first_exercise_and_filled_in_copies_pass(built, smoke_run, tmp_path):
    """Every student copy, run by papermill, stops with NotImplementedError at its first exercise; filled in, it passes.

    The copies run in a copy of the smoke sequence's run directory, so each notebook finds what the
    notebooks before it wrote, and training resumes from finished checkpoints instead of starting again.
    """
    import shutil

    import papermill as pm

    notebooks, out, written = built
    run_dir = tmp_path / "run"
    shutil.copytree(smoke_run[0], run_dir)
    names = [p.name for p in written if p.suffix == ".ipynb"]
    assert len(names) == 5, names
    for name in names:
        student = nbformat.read(out / name, as_version=4)
        with pytest.raises(pm.PapermillExecutionError) as stopped:
            _execute(student, tmp_path, name, run_dir)
        assert stopped.value.ename == "NotImplementedError", f"{name}: {stopped.value.ename}: {stopped.value.evalue}"
        executed = nbformat.read(tmp_path / f"out_{name}", as_version=4)
        failed = next(c for c in executed.cells
                      if c.cell_type == "code" and any(o.get("output_type") == "error" for o in c.get("outputs", [])))
        teacher = nbformat.read(notebooks / name, as_version=4)
        assert failed.metadata["nbgrader"]["grade_id"] in lab.exercises(teacher)[0]["grade_ids"], name  # the stub or its check
        filled = lab.fill_in(student, teacher)
        _execute(filled, tmp_path, "filled_" + name, run_dir)  # raises if any check cell fails
        checks = [c for c in nbformat.read(tmp_path / f"out_filled_{name}", as_version=4).cells
                  if c.get("metadata", {}).get("nbgrader", {}).get("grade")]
        said = ["".join(o.get("text", "") for o in c.outputs if o.get("output_type") == "stream") for c in checks]
        assert all("Well done" in t or "nothing to check" in t or "needs MRI" in t for t in said), (name, said)


@pytest.mark.notebooks
def test_teacher_copies_pass_every_check_cell(smoke_run):
    """The sequence as committed (solutions in place) says "Well done" under every exercise."""
    run_dir, done = smoke_run
    for d in done:
        executed = nbformat.read(run_dir / "notebooks" / d["notebook"], as_version=4)
        checks = [c for c in executed.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade")]
        assert len(checks) >= 3, f"{d['notebook']}: {len(checks)} check cells"
        for c in checks:
            said = "".join(o.get("text", "") for o in c.outputs if o.get("output_type") == "stream")
            assert "Well done" in said, (d["notebook"], c.metadata["nbgrader"]["grade_id"], said)
