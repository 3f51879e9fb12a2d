"""The package's two layers: concepts and experiments, one direction of imports, no cycles,
concept modules a reader can read in one sitting, and nothing written into the package unasked."""
import argparse
import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "textbook_lm"


def _modules() -> dict[str, Path]:
    out = {}
    for p in sorted(PKG.rglob("*.py")):
        parts = list(p.relative_to(PKG.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


MODULES = _modules()


def _is_experiment(name: str) -> bool:
    return name == "textbook_lm.experiments" or name.startswith("textbook_lm.experiments.")


def _imports(name: str, path: Path) -> set[str]:
    """Every textbook_lm module that ``name`` imports, at module level or inside functions."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)     # `from pkg import module`
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def test_the_import_graph_has_no_cycle():
    state, stack = {}, []

    def visit(n):
        state[n] = "open"
        stack.append(n)
        for m in sorted(GRAPH[n]):
            if m == "textbook_lm" or (n.startswith(m + ".") and m != "textbook_lm"):
                continue                                  # a package's own __init__ is not a dependency edge
            if state.get(m) == "open":
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(m):] + [m]))
            if m not in state:
                visit(m)
        stack.pop()
        state[n] = "done"

    for n in sorted(GRAPH):
        if n not in state:
            visit(n)


def test_concept_modules_never_import_experiments():
    bad = {n: sorted(m for m in deps if _is_experiment(m)) for n, deps in GRAPH.items() if not _is_experiment(n)}
    assert not {n: d for n, d in bad.items() if d}


def test_the_graph_walker_sees_function_level_imports(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("def f():\n    from textbook_lm.experiments import gpt\n    import textbook_lm.hub\n")
    assert _imports("textbook_lm.fake", src) == {"textbook_lm.experiments", "textbook_lm.experiments.gpt",
                                                 "textbook_lm.hub"}


def test_every_module_imports_in_a_fresh_interpreter_and_concepts_pull_in_no_experiment():
    concepts = [n for n in MODULES if not _is_experiment(n)]
    code = (
        "import importlib, json, sys\n"
        f"concepts = {concepts!r}\n"
        "for n in concepts: importlib.import_module(n)\n"
        "pulled = sorted(m for m in sys.modules if m.startswith('textbook_lm.experiments'))\n"
        f"for n in {sorted(MODULES)!r}: importlib.import_module(n)\n"
        "print(json.dumps(pulled))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


@pytest.mark.parametrize("name", sorted(n for n in MODULES if not _is_experiment(n)))
def test_concept_modules_are_readable_in_one_sitting(name):
    lines = MODULES[name].read_text(encoding="utf-8").count("\n")
    assert lines <= 400, f"{name} has {lines} lines; move recipes, studies or CLIs to textbook_lm.experiments"


def test_commands_write_outside_the_package_unless_told():
    from textbook_lm import hub
    from textbook_lm.experiments import add_output_args, output_dir

    ap = argparse.ArgumentParser()
    add_output_args(ap)
    assert hub.SHIPPED_DIR not in output_dir(ap.parse_args([]), "x").resolve().parents
    assert output_dir(ap.parse_args(["--out", "/tmp/y"]), "x") == Path("/tmp/y/x")
    assert output_dir(ap.parse_args(["--into-package"]), "x") == hub.SHIPPED_DIR / "x"
