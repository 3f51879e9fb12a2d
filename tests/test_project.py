"""The project's own promises: config files agree, notebooks carry the stamped setup cell."""
import json
import re
import pytest
from pathlib import Path

import yaml

from textbook_lm import book

tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11+")

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"torch": "pytorch"}          # pip name -> conda-forge name


def _split(req: str) -> tuple[str, str]:
    m = re.match(r"\s*([A-Za-z0-9_.\-]+)\s*(.*)", req)
    return m.group(1).lower(), m.group(2).replace(" ", "")


def test_environment_yml_lists_the_same_packages_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = dict(_split(r) for r in project["dependencies"] + project["optional-dependencies"]["test"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    listed = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for r in dep["pip"]:
                if not r.startswith("-e"):
                    listed.update([_split(r)])
        else:
            listed.update([_split(dep)])
    listed.pop("python"), listed.pop("pip")
    inverse = {v: k for k, v in CONDA_NAMES.items()}
    listed = {inverse.get(k, k): v for k, v in listed.items()}
    assert listed == wanted
    assert "-e ." in env["dependencies"][-1]["pip"]


def test_requirements_are_ranges_not_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for r in project["dependencies"] + project["optional-dependencies"]["test"]:
        assert "==" not in r, r


def test_every_notebook_starts_with_the_stamped_setup_cell():
    notebooks = sorted((ROOT / "book").glob("*.ipynb"))
    assert notebooks
    assert book.check(ROOT) == []
    assert "git+" + book.repository_url(ROOT) in book.setup_cell_source(ROOT)


def test_stamp_repairs_a_notebook(tmp_path):
    (tmp_path / "book").mkdir()
    (tmp_path / "_config.yml").write_text((ROOT / "_config.yml").read_text())
    nb = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": ["# Hi"]},
                    {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": ["1 + 1"]}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "book" / "x.ipynb").write_text(json.dumps(nb))
    assert len(book.check(tmp_path)) == 3      # setup cell + two Colab metadata keys
    assert book.stamp(tmp_path) == [tmp_path / "book" / "x.ipynb"]
    assert book.check(tmp_path) == [] and book.stamp(tmp_path) == []


def test_book_config_and_toc():
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert cfg["only_build_toc_files"] is True
    assert cfg["execute"]["execute_notebooks"] in ("off", "cache")
    assert {"dollarmath", "amsmath"} <= set(cfg["parse"]["myst_enable_extensions"])
    assert cfg["launch_buttons"]["colab_url"] and cfg["launch_buttons"]["binderhub_url"]
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for p in toc["parts"] for c in p["chapters"]]
    for f in files:
        assert any((ROOT / (f + ext)).is_file() for ext in (".md", ".ipynb")), f
    # every chapter notebook is in the table of contents
    for nb in (ROOT / "book").glob("*.ipynb"):
        assert f"book/{nb.stem}" in files, nb


def test_ci_runs_the_readme_test_command():
    readme, ci = (ROOT / "README.md").read_text(), (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make book" in readme
    assert re.search(r"^make test$", ci, re.M)
    assert "torch==" in ci and "TEXTBOOK_LM_DATA" in ci
