"""Tools for the book's notebooks: the shared setup cell and notebook metadata.

``python -m textbook_lm.book stamp`` rewrites the first code cell of every notebook in
``book/`` from :data:`SETUP_TEMPLATE` and makes the notebook metadata ask Colab for a GPU.
The cell installs a release, not whatever ``main`` is: the git tag ``v<version>`` of the
repository, where the URL comes from ``_config.yml`` and the version from ``__version__`` in
``textbook_lm/__init__.py`` (each the one place it is set). Bumping the version therefore
means tagging the release and re-stamping the notebooks.
``python -m textbook_lm.book check`` exits non-zero if any notebook differs, or if the glossary or
the fact-check index (:mod:`textbook_lm.appendices`) disagrees with the chapters.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

__all__ = ["SETUP_TEMPLATE", "setup_cell_source", "repository_url", "release_version", "stamp", "check",
           "COLAB_METADATA"]

SETUP_TEMPLATE = '''\
# Setup: this cell opens every chapter (written by `python -m textbook_lm.book stamp`).
# It installs the book's package, pinned to this edition's release, where it is missing
# (e.g. on Colab), with a font for Chinese figure labels, then imports it.
import importlib.util, subprocess, sys
if importlib.util.find_spec("textbook_lm") is None:
    url = "git+{repo_url}@v{version}"
    release = "textbook_lm[cjk] @ " + url
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", release], check=True)
import textbook_lm as tlm
tlm.seed(0)
print(f"textbook_lm {{tlm.__version__}} | device: {{tlm.device()}}")'''

COLAB_METADATA = {"accelerator": "GPU", "colab": {"gpuType": "T4", "provenance": []}}


def _root(start: Path | None = None) -> Path:
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / "_config.yml").is_file() and (d / "book").is_dir():
            return d
    raise FileNotFoundError(f"no book root (a folder with _config.yml and book/) at or above {here}")


def repository_url(root: Path | None = None) -> str:
    import yaml

    cfg = yaml.safe_load((_root(root) / "_config.yml").read_text(encoding="utf-8"))
    return cfg["repository"]["url"].rstrip("/")


def release_version() -> str:
    """The package version, read from the text of ``textbook_lm/__init__.py`` (the one place
    it is set; pyproject.toml reads it from there too), so nothing heavy is imported."""
    text = Path(__file__).with_name("__init__.py").read_text(encoding="utf-8")
    m = re.search(r"^__version__\s*=\s*[\"']([^\"']+)[\"']", text, re.M)
    if m is None:
        raise ValueError("textbook_lm/__init__.py has no line `__version__ = \"X.Y.Z\"`")
    return m.group(1)


def setup_cell_source(root: Path | None = None) -> str:
    return SETUP_TEMPLATE.format(repo_url=repository_url(root), version=release_version())


def _notebooks(root: Path) -> list[Path]:
    return sorted(p for p in (root / "book").glob("*.ipynb"))


def _first_code_cell(nb: dict) -> dict | None:
    return next((c for c in nb["cells"] if c["cell_type"] == "code"), None)


def check(root: Path | None = None) -> list[str]:
    """Problems found: notebooks whose setup cell or Colab metadata differ from the template."""
    root = _root(root)
    want, problems = setup_cell_source(root), []
    for p in _notebooks(root):
        nb = json.loads(p.read_text(encoding="utf-8"))
        cell = _first_code_cell(nb)
        if cell is None or "".join(cell["source"]) != want:
            problems.append(f"{p.name}: first code cell is not the stamped setup cell")
        for k, v in COLAB_METADATA.items():
            if nb.get("metadata", {}).get(k) != v:
                problems.append(f"{p.name}: metadata {k!r} should be {v!r}")
    return problems


def stamp(root: Path | None = None) -> list[Path]:
    """Write the setup cell and metadata into every notebook; returns the notebooks changed."""
    root = _root(root)
    want, changed = setup_cell_source(root), []
    for p in _notebooks(root):
        text = p.read_text(encoding="utf-8")
        nb = json.loads(text)
        cell = _first_code_cell(nb)
        if cell is None:
            cell = {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": []}
            nb["cells"].insert(0, cell)
        if "".join(cell["source"]) != want:
            cell["source"] = want.splitlines(keepends=True)
        nb.setdefault("metadata", {}).update(COLAB_METADATA)
        new = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
        if new != text:
            p.write_text(new, encoding="utf-8")
            changed.append(p)
    return changed


def main(argv: list[str] | None = None) -> int:
    from . import appendices as ap_

    ap = argparse.ArgumentParser(prog="python -m textbook_lm.book", description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=["stamp", "check", "appendices", "check-terms"],
                    help="stamp: rewrite setup cells; check: setup cells, glossary, fact checks and "
                         "appendix pages; appendices: regenerate Appendices B and C; check-terms: the "
                         "glossary and fact checks of some chapters only (--chapters, --glossary, --facts)")
    ap.add_argument("--chapters", type=int, nargs="*", help="check-terms: the chapters to check")
    ap.add_argument("--glossary", nargs="+", default=["book/glossary.yml"],
                    help="check-terms: glossary file(s), read as one list")
    ap.add_argument("--facts", default="book/factchecks.yml", help="check-terms: fact-check file")
    args = ap.parse_args(argv)
    if args.command == "stamp":
        for p in stamp():
            print(f"stamped {p}")
        return 0
    if args.command == "appendices":
        for p in ap_.write_appendices(_root()):
            print(f"wrote {p}")
        return 0
    if args.command == "check-terms":
        only = set(args.chapters) if args.chapters else None
        terms = [e for path in args.glossary for e in ap_.load_glossary(path)]
        problems = ap_.check_glossary(_root(), terms, only)
        if Path(args.facts).is_file():
            problems += ap_.check_factchecks(_root(), ap_.load_factchecks(args.facts), only)
    else:
        problems = check() + ap_.check_appendices(_root())
    for line in problems:
        print(line)
    print(f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
