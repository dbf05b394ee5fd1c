"""The conda environment, pyproject and the constraints file describe the same environment."""

import re
import tomllib
from importlib.metadata import version

import yaml
from packaging.requirements import Requirement

from conftest import ROOT


def _names(reqs):
    return {Requirement(r).name.lower() for r in reqs}


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _constraints():
    pins = {}
    for line in (ROOT / ".ci" / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, ver = line.partition("==")
            pins[name.strip().lower().replace("_", "-")] = ver.strip()
    return pins


def test_environment_yml_parses_and_matches_pyproject():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["name"] == "cardigan"
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert "-c .ci/constraints.txt" in pip and "-e ." in pip
    env_names = _names(p for p in pip if not p.startswith("-"))
    project = _pyproject()
    wanted = _names(project["dependencies"]) | _names(project["optional-dependencies"]["dev"])
    assert env_names == wanted


def test_every_dependency_is_pinned_and_torch_is_the_cpu_pin():
    pins = _constraints()
    project = _pyproject()
    for name in _names(project["dependencies"]) | _names(project["optional-dependencies"]["dev"]):
        assert name.replace("_", "-") in pins, f"{name} is not pinned in .ci/constraints.txt"
    assert pins["torch"] == "2.13.0"
    assert re.fullmatch(r"\d+(\.\d+)+.*", pins["monai"])


def test_installed_versions_are_the_pinned_ones():
    pins = _constraints()
    for name in ("numpy", "monai", "nibabel", "papermill"):
        assert version(name) == pins[name], name
    assert version("torch").split("+")[0] == pins["torch"]
