"""The ARPA back-off format: how n-gram models are exchanged (KenLM, SRILM).

Every smoothed model of :mod:`textbook_lm.ngram` has the back-off shape
``p_k(w | h) = alpha_k(h, w) + gamma_k(h) p_{k-1}(w | h')``, which is exactly ARPA's rule: each
stored k-gram is written with ``log10 p_k(w | h)`` and, if it is a context, ``log10 gamma``.
"""
from __future__ import annotations

import math

import numpy as np

from textbook_lm.ngram_counts import BOS, EOS, UNK

__all__ = ["write_arpa"]

_ARPA_NAMES = {BOS: "<s>", EOS: "</s>", UNK: "<unk>"}


def write_arpa(model, path: str) -> None:
    """Write the model in the ARPA back-off format (readable by KenLM and SRILM).

    Every stored k-gram gets ``log10 p_k(w | h)`` and, if it is a context, ``log10 gamma``:
    the recursion above is exactly ARPA's back-off rule. Models that give some word
    probability 0 (MLE) cannot be written.
    """
    c, lines = model.counts, []
    for k in range(1, model.order + 1):
        grams = c.words(k)
        if k == 1:
            grams = grams[1:]                     # <s> is written separately
        ctx = np.full((len(grams), max(model.order - 1, 0)), -1, dtype=np.int64)
        if k > 1:
            ctx[:, -(k - 1):] = grams[:, :-1]
        p = model._prob_ids(ctx, grams[:, -1])
        if np.any(p <= 0):
            raise ValueError(f"{type(model).__name__} gives some {k}-grams probability 0; ARPA needs a smoothed model")
        block = [f"\\{k}-grams:"]
        if k == 1:
            bos_bo = f"\t{_backoff(model, 1, np.asarray([0]))[0]:.10f}" if model.order > 1 else ""
            block.append(f"-99\t<s>{bos_bo}")
        ids = np.arange(len(grams)) + (1 if k == 1 else 0)
        bo = _backoff(model, k, ids) if k < model.order else None
        names = [_ARPA_NAMES.get(w, w) for w in model.vocab.itos]
        for i in range(len(grams)):
            text = " ".join(names[t] for t in grams[i])
            tail = f"\t{bo[i]:.10f}" if bo is not None else ""
            block.append(f"{math.log10(p[i]):.10f}\t{text}{tail}")
        lines.append((k, len(block) - 1, block))
    with open(path, "w", encoding="utf-8") as f:
        f.write("\\data\\\n")
        for k, n, _ in lines:
            f.write(f"ngram {k}={n}\n")
        for _, _, block in lines:
            f.write("\n" + "\n".join(block) + "\n")
        f.write("\n\\end\\\n")

def _backoff(model, k: int, ids: np.ndarray) -> np.ndarray:
    """log10 back-off weight of k-grams ``ids`` used as contexts of order k+1 (0 if never a context)."""
    seen, gamma = model.seen[k + 1][ids], model.gamma[k + 1][ids]
    with np.errstate(divide="ignore"):
        return np.where(seen, np.log10(np.where(seen, gamma, 1.0)), 0.0)
