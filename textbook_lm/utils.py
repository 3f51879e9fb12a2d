"""Small helpers every chapter uses: pick a device, seed everything, show source code, and
the few model utilities every model module shares (one of each): count parameters,
initialise weights, run in eval mode and restore, and the cross-entropy of next-token logits."""
from __future__ import annotations

import contextlib
import html
import inspect
import os
import random
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["device", "seed", "show_source", "Source", "count_params", "init_weights", "eval_mode",
           "cross_entropy"]


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
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
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


def count_params(model: nn.Module, embeddings: bool = True) -> int:
    """Number of parameters of ``model``, each tensor counted once (tied or shared weights,
    e.g. GPT's output layer and token embedding, or ALBERT's shared block, count once).

    ``embeddings=False`` leaves out the weights of every ``nn.Embedding`` (token, position and
    segment tables), the convention of Kaplan et al. (2020) for scaling laws.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"count_params needs a torch.nn.Module, got {type(model).__name__}")
    skip = set() if embeddings else {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    return sum(p.numel() for p in model.parameters() if id(p) not in skip)   # parameters() skips duplicates


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """GPT-2 / BERT initialisation, for ``model.apply(init_weights)``: weights of linear and
    embedding layers from N(0, std^2), biases of linear layers zero; LayerNorms keep (1, 0)."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=std)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """``with eval_mode(model):`` runs the block with dropout off (``model.eval()``) and gives
    the model back in the mode it had, training or not, even when the block raises."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy of next-token (or class) logits ``(..., V)`` against ``targets (...)``, in
    nats; positions whose target is -100 are ignored (padding, unscored tokens). ``reduction``
    is "mean" (per scored target), "sum" or "none". Computed in float32 at least."""
    if logits.shape[:-1] != targets.shape:
        raise ValueError(f"logits {tuple(logits.shape)} need targets of shape {tuple(logits.shape[:-1])}, "
                         f"got {tuple(targets.shape)}")
    flat = logits.reshape(-1, logits.size(-1))
    if flat.dtype in (torch.float16, torch.bfloat16):
        flat = flat.float()
    out = F.cross_entropy(flat, targets.reshape(-1), ignore_index=-100, reduction=reduction)
    return out.view(targets.shape) if reduction == "none" else out
