"""Small helpers every chapter uses: pick a device, seed everything, show source code."""
from __future__ import annotations

import html
import inspect
import os
import random
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["device", "seed", "show_source", "Source", "update_manifest", "save_half", "load_half"]


def device() -> torch.device:
    """The best available device: CUDA, then Apple's MPS where it works, then the CPU.

    Setting the environment variable ``TEXTBOOK_LM_DEVICE`` (e.g. ``cpu``) overrides the
    choice, which is handy to compare speeds or to reproduce a CPU run on a GPU machine.
    """
    forced = os.environ.get("TEXTBOOK_LM_DEVICE")
    if forced:
        return torch.device(forced)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        try:  # some MPS builds report available but fail on first use
            torch.zeros(1, device="mps")
            return torch.device("mps")
        except RuntimeError:
            pass
    return torch.device("cpu")


def seed(n: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (all devices) with ``n``."""
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"seed must be a non-negative int, got {n!r}")
    random.seed(n)
    np.random.seed(n % 2**32)
    torch.manual_seed(n)


@dataclass
class Source:
    """Source code of a package object that renders highlighted in notebooks and on the site."""

    code: str
    name: str
    path: str
    first_line: int

    def __str__(self) -> str:
        return self.code

    def __repr__(self) -> str:
        return f"# {self.name}  ({self.path}, line {self.first_line})\n{self.code}"

    def _repr_html_(self) -> str:
        header = (f"<div style='font-size:0.85em;color:#555'><code>{html.escape(self.name)}</code> "
                  f"&mdash; {html.escape(self.path)}, line {self.first_line}</div>")
        try:
            from pygments import highlight
            from pygments.formatters import HtmlFormatter
            from pygments.lexers import PythonLexer

            # Inline styles (noclasses) so the colours survive in the static site, which
            # does not carry Pygments' CSS for notebook outputs.
            body = highlight(self.code, PythonLexer(), HtmlFormatter(noclasses=True, style="default"))
        except ImportError:  # pygments ships with Jupyter, but stay safe
            body = f"<pre>{html.escape(self.code)}</pre>"
        return header + body


def show_source(obj: object) -> Source:
    """Return the source of a function, class, method or module of this package.

    In a notebook the result renders with syntax highlighting (and keeps its colours in
    the static site); ``print(show_source(f))`` gives plain text.
    """
    try:
        code = inspect.getsource(obj)
        lines, first = inspect.getsourcelines(obj)
        path = inspect.getsourcefile(obj) or "?"
    except (TypeError, OSError) as err:
        raise TypeError(f"show_source needs a Python function, class or module, got {type(obj).__name__}: {err}") from None
    name = getattr(obj, "__qualname__", getattr(obj, "__name__", repr(obj)))
    module = getattr(obj, "__module__", None) or getattr(obj, "__name__", "")
    marker = f"{os.sep}textbook_lm{os.sep}"
    short = "textbook_lm/" + path.split(marker, 1)[1] if marker in path else os.path.basename(path)
    full = f"{module}.{name}" if module and not name.startswith(module) else name
    return Source(code=code, name=full, path=short.replace(os.sep, "/"), first_line=max(first, 1))


def update_manifest(path, name: str, **fields) -> dict:
    """Record the shipped file ``path`` under ``name`` in the ``manifest.json`` beside it:
    file name, sha256, size in bytes, then ``fields`` (e.g. training time, score, command)."""
    import hashlib
    import json
    from pathlib import Path

    path = Path(path)
    manifest_path = path.with_name("manifest.json")
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    manifest[name] = {"file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                      "bytes": path.stat().st_size, **fields}
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest[name]


def save_half(path, state: dict, **fields):
    """Write a shipped model to ``path``: the floating-point tensors of ``state`` in float16
    (others as they are) under ``"model"``, beside plain ``fields`` (config, vocabulary,
    info), so ``weights_only=True`` can read it. A tensor that appears under two names (tied
    weights) is converted once and stored once."""
    from pathlib import Path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    converted, half = {}, {}
    for k, v in state.items():
        key = (v.data_ptr(), v.shape)
        if key not in converted:
            converted[key] = v.half() if v.is_floating_point() else v
        half[k] = converted[key]
    torch.save({**fields, "model": half}, path)
    return path


def load_half(path, command: str) -> dict:
    """Read a file written by :func:`save_half`, its tensors back in float32. A missing file
    raises ``FileNotFoundError`` naming ``command``, the package command that makes it."""
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; make it with: {command}")
    blob = torch.load(path, map_location="cpu", weights_only=True)
    blob["model"] = {k: v.float() if v.is_floating_point() else v for k, v in blob["model"].items()}
    return blob
