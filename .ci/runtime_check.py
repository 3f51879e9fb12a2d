"""Prove that the runtime dependencies alone run the book: `make runtime-check` runs this in a
fresh venv holding only torch and `pip install .` (no extras). Usage:

    python .ci/runtime_check.py --source . book/01_ngrams.ipynb

It checks, and exits non-zero at the first failure:

1. the venv holds none of the packages that only the `book` and `test` extras require, and
   `textbook_lm` is imported from the installed wheel, not from the source tree;
2. the wheel holds every file of the source package (modules and shipped artefacts at any
   depth under results/), and its version is `textbook_lm.__version__`;
3. every module of the installed package imports (walked with pkgutil, so modules that move
   or appear need no edit here; a module that fails to import fails the check);
4. the notebook's code cells run in an IPython shell from the first one (the setup cell) up to,
   not including, the first cell that imports a module this venv lacks (a test-only reference
   library such as nltk). Corpora are read from $TEXTBOOK_LM_DATA as in the notebooks.

A plain script, not a pytest module: it must run where pytest is not installed.
"""
from __future__ import annotations

import argparse
import ast
import importlib
import importlib.metadata as md
import importlib.util
import json
import os
import pkgutil
import re
import sys
import time
import traceback
from pathlib import Path

MIN_CELLS = 4           # the setup cell and a few after it, or the notebook check proves little


def fail(msg: str) -> None:
    print(f"runtime-check FAILED: {msg}", flush=True)
    sys.exit(1)


def _name(requirement: str) -> str:
    return re.match(r"\s*([A-Za-z0-9_.\-]+)", requirement).group(1).lower().replace("_", "-")


def check_environment(source: Path | None) -> None:
    import textbook_lm

    where = Path(textbook_lm.__file__).resolve()
    site = Path(sys.prefix).resolve()
    if site not in where.parents:
        fail(f"textbook_lm was imported from {where}, not from this venv ({site}): run from "
             "outside the source tree, after `pip install .`")
    requires = md.requires("textbook_lm") or []
    runtime = {_name(r) for r in requires if "extra ==" not in r}
    extra_only = sorted({_name(r) for r in requires if "extra ==" in r} - runtime)
    present = []
    for name in extra_only:
        try:
            present.append(f"{name} {md.version(name)}")
        except md.PackageNotFoundError:
            pass
    if present:
        fail(f"this venv should hold only the runtime dependencies, but it has {present}")
    version = md.version("textbook_lm")
    if version != textbook_lm.__version__:
        fail(f"installed distribution is version {version}, textbook_lm.__version__ is "
             f"{textbook_lm.__version__}")
    print(f"textbook_lm {version} installed at {where.parent}; runtime dependencies "
          f"{sorted(runtime)}; none of the extras' {len(extra_only)} packages present")
    if source is not None:
        ours = _files(source / "textbook_lm")
        theirs = _files(where.parent)
        missing = sorted(ours - theirs)
        if missing:
            fail(f"{len(missing)} file(s) of the source package are not in the wheel: "
                 + ", ".join(missing[:20]))
        print(f"the wheel holds all {len(ours)} files of the source package "
              f"({sum(f.startswith('results/') for f in ours)} under results/)")


def _files(pkg: Path) -> set[str]:
    return {p.relative_to(pkg).as_posix() for p in pkg.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


def import_every_module() -> None:
    import textbook_lm

    errors: list[str] = []

    def onerror(name: str) -> None:   # a package whose import failed while walking
        errors.append(f"{name}: {traceback.format_exc(limit=-3)}")

    names = ["textbook_lm"]
    for info in pkgutil.walk_packages(textbook_lm.__path__, "textbook_lm.", onerror=onerror):
        names.append(info.name)
    t0 = time.perf_counter()
    for name in names:
        if name.rsplit(".", 1)[-1] == "__main__":
            # Importing it would run a command-line program; its imports are those of the
            # package it belongs to, which is imported here.
            print(f"  not imported: {name} (a __main__ script)")
            continue
        try:
            importlib.import_module(name)
        except BaseException:       # SystemExit included: a module must not exit on import
            errors.append(f"{name}: {traceback.format_exc(limit=-3)}")
    if errors:
        fail(f"{len(errors)} module(s) failed to import:\n" + "\n".join(errors))
    print(f"imported all {len(names)} modules of textbook_lm in {time.perf_counter() - t0:.1f} s: "
          + ", ".join(n.removeprefix("textbook_lm.") for n in names[1:]))


def _imported_top_level(source: str, shell) -> set[str]:
    code = shell.transform_cell(source)           # IPython syntax (%magic) -> Python
    names = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def run_first_cells(notebook: Path) -> None:
    os.environ.setdefault("MPLBACKEND", "Agg")
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    class Shell(InteractiveShell):
        def enable_gui(self, gui=None):      # `%matplotlib inline` needs no GUI event loop
            pass

    nb = json.loads(notebook.read_text(encoding="utf-8"))
    cells = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    shell = Shell.instance()
    os.chdir(notebook.parent)           # as Jupyter does; book/ holds no copy of the package
    print(f"running the code cells of {notebook.name} (TEXTBOOK_LM_DATA="
          f"{os.environ.get('TEXTBOOK_LM_DATA', '<unset>')})")
    ran, stop = 0, None
    t_all = time.perf_counter()
    for i, src in enumerate(cells):
        missing = sorted(m for m in _imported_top_level(src, shell) if importlib.util.find_spec(m) is None)
        if missing:
            stop = f"cell {i} imports {', '.join(missing)}, not a runtime dependency"
            break
        t0 = time.perf_counter()
        with capture_output() as out:
            result = shell.run_cell(src, store_history=False, silent=False)
        if not result.success:
            print(out.stdout, out.stderr, sep="\n")
            fail(f"cell {i} of {notebook.name} raised {result.error_in_exec or result.error_before_exec!r}:\n{src}")
        ran += 1
        first = src.strip().splitlines()[0] if src.strip() else ""
        print(f"  cell {i:>2} ok in {time.perf_counter() - t0:5.1f} s   {first[:70]}")
    if ran < MIN_CELLS:
        fail(f"only {ran} code cell(s) of {notebook.name} ran before {stop}; the check needs "
             f"at least {MIN_CELLS}")
    print(f"ran {ran} of {len(cells)} code cells in {time.perf_counter() - t_all:.1f} s; "
          + (f"stopped before {stop}" if stop else "that is all of them"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebook", type=Path, help="the chapter whose first cells to run")
    ap.add_argument("--source", type=Path, help="the source tree, to check the wheel holds all of it")
    args = ap.parse_args(argv)
    notebook = args.notebook.resolve()
    source = args.source.resolve() if args.source else None
    # Import the package from the venv, never from the source tree beside this script.
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() not in
                   {Path(__file__).resolve().parent, *([source] if source else [])}]
    os.chdir(notebook.parent)
    t0 = time.perf_counter()
    import torch

    print(f"python {sys.version.split()[0]}, torch {torch.__version__} (in {sys.prefix})")
    check_environment(source)
    import_every_module()
    run_first_cells(notebook)
    print(f"runtime-check passed in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
