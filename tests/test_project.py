"""The project's own promises: config files agree, notebooks carry the stamped setup cell."""
import ast
import importlib.util
import json
import re
import subprocess
import sys
import pytest
from pathlib import Path

import yaml
from packaging.version import Version

import textbook_lm
from textbook_lm import book

tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11+")

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"torch": "pytorch"}          # pip name -> conda-forge name


def _split(req: str) -> tuple[str, str]:
    m = re.match(r"\s*([A-Za-z0-9_.\-]+)\s*(.*)", req)
    return m.group(1).lower(), m.group(2).replace(" ", "")


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _requirements() -> list[str]:
    """The runtime dependencies and every extra's."""
    project = _project()["project"]
    return project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]


def test_environment_yml_lists_the_same_packages_as_pyproject():
    wanted = dict(_split(r) for r in _requirements())
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


def test_requirements_are_ranges_with_upper_bounds_not_pins():
    requirements = _requirements()
    assert len(requirements) > 10
    for r in requirements:
        name, spec = _split(r)
        assert "==" not in spec and "~=" not in spec, f"{r}: a pin; use a range"
        assert re.search(r"(^|,)>=", spec), f"{r}: no lower bound"
        assert re.search(r"(^|,)<", spec), f"{r}: no upper bound"


def test_extras_split_runtime_site_and_test_tools():
    project = _project()["project"]
    runtime = {_split(r)[0] for r in project["dependencies"]}
    assert runtime == {"torch", "numpy", "matplotlib", "tqdm", "regex", "ipywidgets"}
    extras = {k: {_split(r)[0] for r in v} for k, v in project["optional-dependencies"].items()}
    assert set(extras) == {"book", "cjk", "test"}
    assert {"jupyter-book", "jupyterlab", "pyyaml", "mplfonts"} <= extras["book"]
    assert extras["cjk"] == {"mplfonts"}
    assert {"pytest", "nbval", "hypothesis", "nltk", "transformers"} <= extras["test"]
    assert not (extras["book"] | extras["test"]) & runtime


def _imports(tree: ast.AST, at_import_time: bool) -> set[str]:
    """Top-level names of absolute imports; with at_import_time, only those run on import
    (not inside function bodies)."""
    names, todo = set(), [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        if at_import_time and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        todo.extend(ast.iter_child_nodes(node))
    return names


def _notebook_imports(path: Path) -> set[str]:
    names = set()
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] == "code":
            src = "\n".join(l for l in "".join(cell["source"]).splitlines() if not l.lstrip().startswith(("%", "!")))
            names |= _imports(ast.parse(src), at_import_time=False)
    return names


def test_runtime_dependencies_are_what_the_package_imports():
    runtime = {_split(r)[0] for r in _project()["project"]["dependencies"]}
    runtime_modules = {n.replace("-", "_") for n in runtime}      # their import names
    stdlib = set(sys.stdlib_module_names) | {"textbook_lm", "__future__"}
    on_import, anywhere = set(), set()
    for path in (ROOT / "textbook_lm").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        on_import |= _imports(tree, at_import_time=True) - stdlib
        anywhere |= _imports(tree, at_import_time=False) - stdlib
    # Every module imports on a runtime-only install (`make runtime-check` proves it in a venv).
    assert on_import <= runtime_modules, f"imported on import but not a runtime dependency: {on_import - runtime_modules}"
    # ... and no runtime dependency is there for nothing: the package imports each, except
    # ipywidgets, which the notebooks' explorers import (and which brings IPython, that
    # `plot.tokens_html` imports).
    notebooks = {m for nb in (ROOT / "book").glob("*.ipynb") for m in _notebook_imports(nb)}
    assert runtime_modules - anywhere <= {"ipywidgets"}
    assert "ipywidgets" in anywhere | notebooks


def test_package_data_ships_every_artefact_at_any_depth():
    patterns = _project()["tool"]["setuptools"]["package-data"]["textbook_lm"]
    pkg = ROOT / "textbook_lm"
    shipped = {p for pattern in patterns for p in pkg.glob(pattern) if p.is_file()}
    results = {p for p in (pkg / "results").rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert results and results <= shipped, sorted(str(p.relative_to(pkg)) for p in results - shipped)
    assert "results/**/*" in patterns         # nested folders (results/<artefact>/...) included


def test_the_version_is_set_in_one_place():
    project = _project()
    assert "version" not in project["project"] and project["project"]["dynamic"] == ["version"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "textbook_lm.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", textbook_lm.__version__)
    assert book.release_version() == textbook_lm.__version__


def test_every_notebook_starts_with_the_stamped_setup_cell():
    notebooks = sorted((ROOT / "book").glob("*.ipynb"))
    assert notebooks
    assert book.check(ROOT) == []


def test_the_setup_cell_installs_the_release_only_where_the_package_is_missing(monkeypatch):
    """Run the cell twice: with textbook_lm importable (no install) and with it 'missing'."""
    source = book.setup_cell_source(ROOT)
    url = f"git+{book.repository_url(ROOT)}@v{textbook_lm.__version__}"
    assert f'url = "{url}"' in source and 'release = "textbook_lm[cjk] @ " + url' in source
    release = f"textbook_lm[cjk] @ {url}"
    assert max(len(line) for line in source.splitlines()) <= 88
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append((cmd, kw)))
    exec(compile(source, "<setup cell>", "exec"), {})
    assert calls == []
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "textbook_lm" else real(name, *a))
    exec(compile(source, "<setup cell>", "exec"), {})
    assert calls == [([sys.executable, "-m", "pip", "install", "-q", release], {"check": True})]


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


def _make_variable(name: str) -> str:
    m = re.search(rf"^{name}\s*\?=\s*(.+?)\s*$", (ROOT / "Makefile").read_text(), re.M)
    assert m, f"Makefile sets no {name}"
    return m.group(1)


def test_ci_runs_the_readme_test_command():
    readme, ci = (ROOT / "README.md").read_text(), (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make book" in readme
    assert re.search(r"^make test$", ci, re.M)                 # on the newest torch the range allows
    assert re.search(r"^make unit-oldest$", ci, re.M)          # the unit tests on the oldest
    assert "TEXTBOOK_LM_DATA" in ci and "torch.__version__" in ci


def test_torch_versions_tested_are_the_ends_of_the_range():
    torch_req = next(r for r in _project()["project"]["dependencies"] if _split(r)[0] == "torch")
    assert _make_variable("TORCH") == torch_req.replace(" ", "")
    lower = re.search(r">=([\d.]+)", torch_req).group(1)
    oldest = re.fullmatch(r"torch==([\d.]+)", _make_variable("TORCH_OLDEST"))
    assert oldest and Version(oldest.group(1)) == Version(lower)


def test_make_installs_the_extras_each_command_needs():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^BOOK_EXTRAS\s*:=\s*book$", makefile, re.M)
    assert re.search(r"^TEST_EXTRAS\s*:=\s*book,test$", makefile, re.M)
    assert re.search(r"^book: setup-book$", makefile, re.M) and re.search(r"^test: setup\b.*\bruntime-check\b", makefile, re.M)


def test_notebook_code_follows_the_book_style():
    """Code lines fit the site's column (88 characters); no text under 9 points and no figure
    wider than ``plot.MAX_WIDTH_IN`` (the two keep every label >= 9 px on the site)."""
    from textbook_lm import plot

    problems = []
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        for i, cell in enumerate(c for c in cells if c["cell_type"] == "code"):
            src = "".join(cell["source"])
            where = f"{path.name} code cell {i}"
            problems += [f"{where}: {len(l)}-character line" for l in src.splitlines() if len(l) > 88]
            problems += [f"{where}: text of {v} pt" for v in
                         re.findall(r"(?:fontsize|labelsize)\s*=\s*(\d+(?:\.\d+)?)", src) if float(v) < 9]
            problems += [f"{where}: figure {v} in wide" for v in
                         re.findall(r"figsize\s*=\s*\(\s*(\d+(?:\.\d+)?)", src) if float(v) > plot.MAX_WIDTH_IN]
    assert not problems, problems
