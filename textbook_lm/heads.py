"""What attention heads do (Chapter 9): previous-token and induction heads, measured and ablated.

An *induction head* (Olsson et al., 2022) completes patterns: at a token ``A`` it looks back
for an earlier ``A``, attends to the token that followed it, ``B``, and copies ``B``. It
needs a *previous-token head* in an earlier layer, which writes "the token before me was
``A``" into every position, so that the induction head's query ``A`` can match the key of
the position after the earlier ``A``. Olsson et al.'s measurements, for our models:

* :func:`prefix_matching`: on a random sequence repeated twice, the attention a head puts,
  from each token of the second half, on the token after that token's first occurrence.
* :func:`previous_token`: the attention a head puts on the token just before.
* :func:`copying`: does the head's output raise the logit of the token it attends to? The
  eigenvalue statistic of Elhage et al. (2021), ``sum(eigenvalues) / sum(|eigenvalues|)`` of
  ``W_U W_O W_V W_E`` (layer norms ignored; Olsson et al. measured copying on activations).
* :func:`icl_score`: the loss late in the context minus the loss early in it.
* :func:`ablate`: switch heads off (their output zeroed, or replaced by its mean) through
  the attention module's ``head_hook``, without changing the model.

Heads are named ``(layer, head)``. The helpers work on any model of the package whose
attention modules are :class:`textbook_lm.attention.MultiHeadAttention` (GPT, BERT).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterable, Iterator

import torch
import torch.nn as nn

from textbook_lm.attention import MultiHeadAttention, record
from textbook_lm.utils import eval_mode

__all__ = ["attention_modules", "attention_maps", "previous_token", "prefix_matching", "copying",
           "icl_score", "head_means", "ablate"]


def attention_modules(model: nn.Module) -> list[MultiHeadAttention]:
    """The model's self-attention modules, one per layer, in order."""
    mods = [m for _, m in model.named_modules() if isinstance(m, MultiHeadAttention)]
    if not mods:
        raise TypeError(f"{type(model).__name__} has no MultiHeadAttention module")
    return mods


@torch.no_grad()
def attention_maps(model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """Attention weights of every layer and head on ``ids (B, T)``: shape (L, H, B, T, T)."""
    dev = next(model.parameters()).device
    with eval_mode(model), record(model) as maps:
        model(ids.to(dev))
    return torch.stack([maps[n] for n in maps]).transpose(1, 2).cpu()


def previous_token(maps: torch.Tensor) -> torch.Tensor:
    """Mean attention on the token just before, per layer and head: (L, H), from maps
    (L, H, B, T, T); the first position (which has no previous token) is left out."""
    return maps.diagonal(-1, dim1=-2, dim2=-1).mean((-1, -2))


def prefix_matching(maps: torch.Tensor, half: int) -> torch.Tensor:
    """Mean attention, from each token of the second copy of a repeated sequence, on the token
    after its first occurrence: (L, H). ``maps`` (L, H, B, T, T) on ``<bos> s s`` with ``s``
    of ``half`` tokens (:func:`textbook_lm.data.icl.repeated_random`): the token at position
    ``half + i`` repeats the one at ``i`` (1-based, ``<bos>`` at 0), and the induction target
    is ``i + 1``."""
    q = torch.arange(half + 1, 2 * half)                    # second copy, except its last token
    return maps[..., q, q - half + 1].mean((-1, -2))


@torch.no_grad()
def copying(model: nn.Module) -> torch.Tensor:
    """Copying score per layer and head, (L, H): ``sum(eigenvalues) / sum(|eigenvalues|)`` of
    the head's OV circuit read from token to logit, ``W_U W_O^h W_V^h W_E`` (V x V; layer norms
    left out), the statistic of Elhage et al. (2021). 1: the head raises the logit of whatever
    token it attends to; -1: it lowers it."""
    W_E = model.wte.weight                                   # (V, C)
    W_U = model.lm_head.weight                               # (V, C)
    scores = []
    for m in attention_modules(model):
        C, d = m.out.in_features, m.head_dim
        W_V = m.qkv.weight[2 * C:]                           # (C, C): rows are value dimensions
        row = []
        for h in range(m.n_heads):
            ov = m.out.weight[:, h * d:(h + 1) * d] @ W_V[h * d:(h + 1) * d]    # (C, C)
            circuit = W_U @ ov @ W_E.T                                          # (V, V)
            ev = torch.linalg.eigvals(circuit.double().cpu())
            row.append(float(ev.real.sum() / ev.abs().sum()))
        scores.append(row)
    return torch.tensor(scores)


def icl_score(losses: torch.Tensor, early: int | slice, late: int | slice) -> float:
    """Olsson et al.'s in-context learning score: the loss at a late position minus the loss
    at an early one (they took token 500 and token 50 of 512); negative when the model
    predicts better with more context. ``losses`` is per position (mean over examples);
    ``early`` and ``late`` are indices or slices of it (averaged)."""
    pick = (lambda s: losses[s].float().mean())
    return float(pick(late) - pick(early))


def _by_layer(model: nn.Module, heads: Iterable[tuple[int, int]]) -> dict[int, list[int]]:
    mods, out = attention_modules(model), {}
    for layer, head in heads:
        if not (0 <= layer < len(mods) and 0 <= head < mods[layer].n_heads):
            raise ValueError(f"no head ({layer}, {head}): the model has {len(mods)} layers of "
                             f"{mods[0].n_heads} heads")
        out.setdefault(layer, []).append(head)
    return out


@torch.no_grad()
def head_means(model: nn.Module, ids: torch.Tensor) -> list[torch.Tensor]:
    """Each layer's head outputs averaged over the batch ``ids`` and its positions:
    one (H, head_dim) tensor per layer, for mean ablation."""
    mods, sums = attention_modules(model), []

    def keep(y):
        sums.append(y.mean((0, 2)))
        return y

    for m in mods:
        m.head_hook = keep
    try:
        with eval_mode(model):
            model(ids.to(next(model.parameters()).device))
    finally:
        for m in mods:
            m.head_hook = None
    return sums


@contextmanager
def ablate(model: nn.Module, heads: Iterable[tuple[int, int]],
           means: list[torch.Tensor] | None = None) -> Iterator[None]:
    """Inside the block, the listed ``(layer, head)`` heads are switched off: their output
    (before ``W_O``) is zero, or with ``means`` (from :func:`head_means`) its mean over
    reference data. Everything else in the model is untouched; on exit the heads are back."""
    mods, chosen = attention_modules(model), _by_layer(model, heads)
    for layer, hs in chosen.items():
        def hook(y, hs=hs, layer=layer):
            y = y.clone()
            for h in hs:
                y[:, h] = 0.0 if means is None else means[layer][h].to(y)
            return y
        if mods[layer].head_hook is not None:
            raise RuntimeError(f"layer {layer} already has a head hook (nested ablate?)")
        mods[layer].head_hook = hook
    try:
        yield
    finally:
        for layer in chosen:
            mods[layer].head_hook = None
