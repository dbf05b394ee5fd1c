"""Classroom labs: student copies of the teacher notebooks, with nbgrader's markers and metadata.

The notebooks in ``notebooks/`` are the teacher's versions. An exercise is three cells:

- a Markdown cell tagged ``exercise``: the task, and a paragraph starting ``**A good answer**``;
- a code cell with nbgrader metadata ``solution: true`` whose answer sits between
  ``### BEGIN SOLUTION`` and ``### END SOLUTION``;
- a check cell (nbgrader ``grade: true, locked: true`` with ``points``) that tells the student,
  in words, what is wrong.

Cells tagged ``teacher`` are removed from student copies. The student copies are made by
nbgrader's own preprocessors (ClearSolutions, ClearHiddenTests, ClearOutput, LockCells), the ones
``nbgrader generate_assignment`` runs, so teachers who grade with nbgrader can use the teacher
notebooks as its ``source`` directly.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import nbformat

from .notebook import EXERCISE_TAG, cell_tags, nbgrader_metadata, sequence
from .runs import OutputRecord, check_apart, check_output_dir

SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")
TEACHER_TAG = "teacher"


class CheckFailed(AssertionError):
    """A check cell's verdict: what is wrong, in words a student can act on."""


def check(ok: bool, *, passed: str, failed: str) -> None:
    """The verdict of a check cell: print ``passed``, or raise :class:`CheckFailed` with ``failed``.

    Args:
        ok: whether the student's answer is right.
        passed: what to say when it is.
        failed: what to say when it is not: what was expected, what came out, where to look.

    Raises:
        CheckFailed: ``ok`` is false.
    """
    if not ok:
        raise CheckFailed(f"Not yet: {failed}")
    print(f"Well done: {passed}")


def exercises(nb) -> list[dict[str, Any]]:
    """The exercises of a teacher notebook, in order.

    Args:
        nb: a notebook (``nbformat.NotebookNode``).

    Returns:
        One dict per ``exercise`` Markdown cell: ``title`` (its first line without ``#``), ``text``
        (the whole cell), ``good_answer`` (its ``**A good answer**`` paragraph), ``points`` (of the
        check cells up to the next exercise) and ``grade_ids`` of its solution and check cells.
    """
    found: list[dict[str, Any]] = []
    for cell in nb.cells:
        if cell.cell_type == "markdown" and EXERCISE_TAG in cell_tags(cell):
            text = cell.source.strip()
            good = re.search(r"\*\*A good answer\*\*(.*?)(?:\n\n|$)", text, flags=re.S)
            found.append({"title": text.splitlines()[0].lstrip("# ").strip(), "text": text,
                          "good_answer": " ".join(good.group(1).split()).strip(" :") if good else "", "points": 0.0, "grade_ids": []})
        elif found and nbgrader_metadata(cell):
            meta = nbgrader_metadata(cell)
            found[-1]["grade_ids"].append(meta.get("grade_id", ""))
            if meta.get("grade"):
                found[-1]["points"] += float(meta.get("points", 0))
    return found


def check_teacher_notebook(nb) -> list[str]:
    """Problems that would make a broken student copy (empty list: none).

    Args:
        nb: a teacher notebook.

    Returns:
        Messages: solution cells without the markers, unbalanced markers, check cells without
        points or not locked, duplicate grade ids.
    """
    problems, ids = [], []
    for i, cell in enumerate(nb.cells):
        meta = nbgrader_metadata(cell)
        begin, end = (cell.source.count(m) for m in SOLUTION_MARKERS)
        if begin != end:
            problems.append(f"cell {i}: {begin} BEGIN SOLUTION and {end} END SOLUTION markers")
        if not meta:
            if begin:
                problems.append(f"cell {i}: solution markers in a cell without nbgrader metadata")
            continue
        ids.append(meta.get("grade_id"))
        if meta.get("solution") and cell.cell_type == "code" and not begin:
            problems.append(f"cell {i}: solution cell {meta.get('grade_id')!r} has no BEGIN/END SOLUTION region")
        if meta.get("grade") and not (meta.get("locked") and float(meta.get("points", 0)) > 0):
            problems.append(f"cell {i}: check cell {meta.get('grade_id')!r} must be locked and worth points")
    duplicates = sorted({g for g in ids if ids.count(g) > 1})
    if duplicates:
        problems.append(f"duplicate grade ids: {duplicates}")
    return problems


def student_notebook(nb):
    """The student copy of a teacher notebook (a new notebook; ``nb`` is left as it is).

    Solutions are replaced by ``# YOUR CODE HERE`` / ``raise NotImplementedError()``, hidden tests
    and ``teacher`` cells removed, every output cleared, graded and locked cells marked read-only.

    Args:
        nb: a teacher notebook.

    Returns:
        The student notebook.

    Raises:
        ValueError: the teacher notebook is malformed (see :func:`check_teacher_notebook`), or
            solution text would survive.
    """
    # imported here: every notebook imports this module for lab.check, and nbgrader takes seconds to import
    from nbgrader.preprocessors import ClearHiddenTests, ClearOutput, ClearSolutions, LockCells

    problems = check_teacher_notebook(nb)
    if problems:
        raise ValueError("teacher notebook: " + "; ".join(problems))
    student = copy.deepcopy(nb)
    student.cells = [c for c in student.cells if TEACHER_TAG not in cell_tags(c)]
    resources: dict[str, Any] = {}
    for step in (ClearSolutions(), ClearHiddenTests(), ClearOutput(), LockCells()):
        student, resources = step.preprocess(student, resources)
    for cell in student.cells:
        if any(m in cell.source for m in (*SOLUTION_MARKERS, "BEGIN HIDDEN TESTS")):
            raise ValueError("a solution region survived in the student copy")
    student.metadata.pop("papermill", None)
    return student


def lab_sheet(nb, *, name: str) -> str:
    """A short Markdown lab sheet for one notebook: objectives, time, exercises, good answers.

    Args:
        nb: the teacher notebook; its metadata ``cardigan_lab`` holds ``objectives`` (list) and
            ``minutes`` (expected time in the ``lab`` profile).
        name: the notebook's file name.

    Returns:
        The sheet's Markdown text.
    """
    info = nb.metadata.get("cardigan_lab", {})
    lines = [f"# Lab sheet: {name}", ""]
    if info.get("objectives"):
        lines += ["## Learning objectives", "", *[f"- {o}" for o in info["objectives"]], ""]
    if info.get("minutes"):
        lines += ["## Expected time", "", f"About {info['minutes']} minutes on a 2-core laptop CPU with the `lab` "
                  "profile (computation), plus the time to think and write.", ""]
    found = exercises(nb)
    lines += ["## Exercises", ""]
    for k, ex in enumerate(found, 1):
        lines += [f"{k}. **{ex['title']}** ({ex['points']:g} point{'s' if ex['points'] != 1 else ''})"]
        if ex["good_answer"]:
            lines += [f"   - A good answer: {ex['good_answer']}"]
    lines += ["", "Run the notebook top to bottom; a check cell under each exercise tells you, in words, what is "
              "still wrong. Cells marked read-only are part of the lab and stay as they are.", ""]
    return "\n".join(lines)


def build_lab(notebook_dir: str | Path, out_dir: str | Path) -> list[Path]:
    """Write the student copy and the lab sheet of every numbered notebook that holds exercises.

    The output folder keeps a record of what it wrote (:class:`~cardigan_utils.runs.OutputRecord`):
    a second build replaces those files and no others. Every copy is made, and every file checked,
    before the first is written, so a refusal leaves the folder as it was.

    Args:
        notebook_dir: the teacher notebooks (``notebooks/``).
        out_dir: where the student notebooks and ``<stem>.md`` lab sheets go; apart from
            ``notebook_dir`` (neither inside the other).

    Returns:
        The files written.

    Raises:
        ValueError: ``out_dir`` is, holds or lies inside ``notebook_dir``; a malformed teacher notebook.
        FileExistsError: a file the kit did not write, or one changed since (a teacher's notebook,
            a student's work in a copy, a sheet edited by hand), stands where a copy or sheet goes.
        OSError: ``out_dir`` is a file or cannot be written (naming it).
    """
    check_apart(out_dir, {"--notebooks": notebook_dir}, output_name="--out")
    out = check_output_dir(out_dir, option="--out")
    made: dict[Path, str] = {}
    for path in sequence(notebook_dir):
        nb = nbformat.read(path, as_version=4)
        if not exercises(nb):
            continue
        student = student_notebook(nb)
        nbformat.validate(student)
        made[out / path.name] = nbformat.writes(student).rstrip("\n") + "\n"  # as nbformat.write
        made[out / f"{path.stem}.md"] = lab_sheet(nb, name=path.name)
    record = OutputRecord(out, command="cardigan lab build")
    for target in made:
        record.check_replaceable(target)
    for target, text in made.items():
        with record.writing(target) as tmp:
            tmp.write_text(text, encoding="utf-8")
    return list(made)


def fill_in(student, teacher):
    """A student copy with every stub replaced by the teacher's solution (what a perfect student writes).

    Used to check that the exercises can be passed from the student copy itself.

    Args:
        student: a student notebook made by :func:`student_notebook`.
        teacher: the teacher notebook it was made from.

    Returns:
        A new notebook.
    """
    region = re.compile(r"^([ \t]*)### BEGIN SOLUTION\n(.*?)^[ \t]*### END SOLUTION[ \t]*\n?", flags=re.S | re.M)
    stub = re.compile(r"^([ \t]*)# YOUR CODE HERE\n[ \t]*raise NotImplementedError\(\)[ \t]*\n?", flags=re.M)
    answers = {nbgrader_metadata(c).get("grade_id"): [m.group(2) for m in region.finditer(c.source + "\n")]
               for c in teacher.cells if nbgrader_metadata(c).get("solution")}
    filled = copy.deepcopy(student)
    for cell in filled.cells:
        meta = nbgrader_metadata(cell)
        if not meta.get("solution") or cell.cell_type != "code":
            continue
        pending = iter(answers[meta["grade_id"]])
        cell.source = stub.sub(lambda m: next(pending), cell.source + "\n").rstrip("\n")
    return filled
