"""Prompting a language model (Chapter 9): k-shot prompts, answers scored by likelihood,
accuracy against the number of shots, sensitivity to the prompt's format, and calibration.

Few-shot classification with a language model (Brown et al., 2020) puts ``k``
demonstrations and a query in the context and asks which answer the model finds most
likely: no weight changes. :func:`score` gives each candidate answer its log-likelihood
after the prompt (summed over the answer's tokens); :func:`predict` picks the best.

*Contextual calibration* (Zhao et al., 2021) measures the model's bias towards each answer
with a content-free query (``N/A`` in place of the input) and divides it out:
``p_cal(y) ∝ p(y | prompt) / p(y | content-free prompt)``.

Prompts come from a task's demonstrations: :func:`build` writes them with a template
(``x sep y delim``), label words and an order, as :mod:`textbook_lm.data.icl` does for the
chapter's synthetic task.
"""
from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn as nn

from textbook_lm.train import target_logprobs
from textbook_lm.utils import eval_mode

__all__ = ["build", "score", "predict", "calibrate", "Evaluation", "evaluate", "checksum"]


def build(demos: Sequence[tuple[str, str]], query: str, *, sep: str = ":", delim: str = ",",
          labels: dict[str, str] | None = None, order: Sequence[int] | None = None,
          prefix: Sequence[str] = ("<bos>",)) -> list[str]:
    """The words of a k-shot prompt: ``prefix``, then each demonstration ``(x, y)`` as
    ``x sep y' delim`` (``y' = labels[y]`` if ``labels`` renames the label words; no separator
    if ``sep`` is empty), in the given ``order`` (a permutation of the demonstrations'
    indices), then ``query sep``."""
    order = list(range(len(demos))) if order is None else list(order)
    if sorted(order) != list(range(len(demos))):
        raise ValueError(f"order must be a permutation of 0..{len(demos) - 1}, got {order}")
    words, s = list(prefix), [sep] if sep else []
    for i in order:
        x, y = demos[i]
        words += [x, *s, labels[y] if labels else y, delim]
    return words + [query, *s]


@torch.no_grad()
def score(model: nn.Module, prompt: Sequence[int], candidates: Sequence[Sequence[int]]) -> torch.Tensor:
    """log p(candidate | prompt) for each candidate (a list of token ids), summed over its
    tokens: a float tensor of ``len(candidates)``. One batched forward pass."""
    if not candidates or any(len(c) == 0 for c in candidates):
        raise ValueError("need at least one candidate, each at least one token")
    dev = next(model.parameters()).device
    rows = [list(prompt) + list(c) for c in candidates]
    T = max(map(len, rows))
    ids = torch.zeros(len(rows), T, dtype=torch.long)
    for r, row in enumerate(rows):
        ids[r, :len(row)] = torch.tensor(row)
    with eval_mode(model):                       # log p(token t+1 | tokens up to t), every row
        lp = target_logprobs(model, ids[:, :-1].to(dev), ids[:, 1:].to(dev)).cpu()
    start = len(prompt) - 1                      # the position that predicts the first answer token
    return torch.stack([lp[r, start:start + len(c)].sum() for r, c in enumerate(candidates)])


def calibrate(logprobs: torch.Tensor, content_free: torch.Tensor) -> torch.Tensor:
    """Contextual calibration: candidate probabilities divided by the content-free ones and
    renormalised, as log-probabilities (the diagonal W of Zhao et al., with b = 0)."""
    p = logprobs.softmax(-1) / content_free.softmax(-1)
    return (p / p.sum(-1, keepdim=True)).log()


def predict(model: nn.Module, prompt: Sequence[int], candidates: Sequence[Sequence[int]],
            content_free: Sequence[int] | None = None) -> int:
    """Index of the most likely candidate; calibrated if ``content_free`` (the same prompt
    with the query replaced by a content-free input) is given."""
    s = score(model, prompt, candidates)
    if content_free is not None:
        s = calibrate(s, score(model, content_free, candidates))
    return int(s.argmax())


@dataclass
class Evaluation:
    accuracy: float
    n: int
    chance: float

    def __str__(self) -> str:
        return f"accuracy {self.accuracy:.3f} on {self.n} prompts (chance {self.chance:.3f})"


def evaluate(model: nn.Module, make_prompt: Callable[[random.Random], object], n: int = 200,
             seed: int = 0, encode: Callable[[list[str]], list[int]] | None = None,
             calibrated: bool = False, content_free_word: str = "N/A") -> Evaluation:
    """Accuracy over ``n`` prompts from ``make_prompt(rng)``, an object with ``words``,
    ``candidates`` (label words) and ``answer`` (e.g. :meth:`textbook_lm.data.icl.Episodes.prompt`).
    ``encode`` maps words to ids. With ``calibrated``, each prompt's query (the item after the
    last delimiter, ``p.query_at``) is replaced by ``content_free_word`` to measure the bias
    that is divided out."""
    if encode is None:
        raise ValueError("pass encode=..., the function from words to token ids")
    rng, right, chance = random.Random(seed), 0, 0.0
    for _ in range(n):
        p = make_prompt(rng)
        cands = [encode([c]) for c in p.candidates]
        q = p.query_at
        cf = encode(p.words[:q] + [content_free_word] + p.words[q + 1:]) if calibrated else None
        right += p.candidates[predict(model, encode(p.words), cands, cf)] == p.answer
        chance += 1 / len(p.candidates)
    return Evaluation(right / n, n, chance / n)


def checksum(model: nn.Module) -> str:
    """SHA-256 of every parameter and buffer, in order: equal before and after a forward
    pass, different after any change to any weight."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(np.ascontiguousarray(t.detach().cpu().float().numpy()).tobytes())
    return h.hexdigest()
