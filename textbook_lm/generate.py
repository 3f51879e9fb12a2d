"""Decoding: turning a language model's next-token distributions into text.

* :func:`generate`: greedy (``temperature=0``), sampling with a temperature, top-k, top-p
  (nucleus), a repetition penalty and stop tokens, seeded, with or without a KV cache.
* :func:`beam_search`: keep the ``beams`` most probable continuations at every step.
* :func:`filter_logits`: the top-k / top-p rules on their own, for plots and tests.

Works with any model ``model(idx (B, T)) -> logits (B, T, V)`` that has ``cfg.block_size``;
the KV cache needs ``model.new_cache()`` and ``model(idx, cache=...)`` (``gpt.GPT``).

**Context rule.** A model sees at most ``block_size`` tokens. When prompt + generated text is
longer, the model is given the last ``block_size`` tokens. With a cache, the cache is then
rebuilt from those tokens (learned positions are absolute, so cached keys cannot be
shifted); generation stays correct, and is as slow as without a cache from that point on.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn as nn

__all__ = ["filter_logits", "apply_repetition_penalty", "generate", "beam_search"]


def filter_logits(logits: torch.Tensor, top_k: int | None = None, top_p: float | None = None) -> torch.Tensor:
    """Set to ``-inf`` every logit outside the top-k set and/or the top-p (nucleus) set.

    ``logits (..., V)``. Top-k keeps the ``k`` largest (ties at the boundary all kept). Top-p
    keeps the smallest set of most probable tokens whose probabilities sum to at least ``p``
    (the most probable token is always kept).
    """
    if top_k is not None:
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        kth = torch.topk(logits, min(top_k, logits.size(-1)), dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, -math.inf)
    if top_p is not None:
        if not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(-1)
        before = probs.cumsum(-1) - probs                  # probability mass of the tokens ranked above
        drop_sorted = before >= top_p                      # keep a token while the mass above it is < p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, -math.inf)
    return logits


def apply_repetition_penalty(logits: torch.Tensor, previous: torch.Tensor, penalty: float) -> torch.Tensor:
    """Make tokens that already occur in ``previous (B, T)`` less likely (Keskar et al., 2019):
    their positive logits are divided by ``penalty``, negative ones multiplied. ``logits (B, V)``."""
    if penalty == 1.0:
        return logits
    if penalty <= 0:
        raise ValueError(f"repetition penalty must be > 0, got {penalty}")
    seen = torch.gather(logits, 1, previous)
    seen = torch.where(seen > 0, seen / penalty, seen * penalty)
    return logits.scatter(1, previous, seen)


def _as_batch(prompt: torch.Tensor | Sequence[int], device) -> torch.Tensor:
    idx = torch.as_tensor(prompt, dtype=torch.long, device=device)
    if idx.dim() == 1:
        idx = idx[None]
    if idx.dim() != 2 or idx.size(1) == 0:
        raise ValueError(f"prompt must be a non-empty (T,) or (B, T) sequence of token ids, got shape {tuple(idx.shape)}")
    return idx


@torch.no_grad()
def generate(model: nn.Module, prompt: torch.Tensor | Sequence[int], max_new_tokens: int, *,
             temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
             repetition_penalty: float = 1.0, stop_tokens: Sequence[int] = (), seed: int | None = None,
             use_cache: bool = True, return_logits: bool = False):
    """Continue ``prompt`` ((T,) or (B, T) token ids) by up to ``max_new_tokens`` tokens.

    ``temperature=0`` is greedy decoding (always the most likely token); otherwise tokens are
    sampled from ``softmax(logits / temperature)`` after the repetition penalty and the
    top-k / top-p filters. A sequence stops after producing one of ``stop_tokens`` (later
    positions are filled with that stop token); generation ends when all have stopped.
    Returns ids ``(B, T + n)`` and, with ``return_logits``, the raw next-token logits of
    every step ``(B, n, V)``.
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    was = model.training
    model.eval()
    dev = next(model.parameters()).device
    idx = _as_batch(prompt, dev)
    block = model.cfg.block_size
    gen = torch.Generator(device=dev).manual_seed(seed) if seed is not None else None
    stops = torch.tensor(list(stop_tokens), dtype=torch.long, device=dev)
    done = torch.zeros(idx.size(0), dtype=torch.bool, device=dev)
    cache, steps = None, []
    for _ in range(max_new_tokens):
        if use_cache and hasattr(model, "new_cache"):
            if cache is None or idx.size(1) > block:   # (re)fill the cache from the last block_size tokens
                cache, window = model.new_cache(), idx[:, -block:]
                logits = model(window, cache=cache)[:, -1]
            else:
                logits = model(idx[:, -1:], cache=cache)[:, -1]
        else:
            logits = model(idx[:, -block:])[:, -1]
        steps.append(logits)
        logits = apply_repetition_penalty(logits, idx, repetition_penalty)
        if temperature == 0:
            nxt = logits.argmax(-1)
        else:
            probs = filter_logits(logits / temperature, top_k, top_p).softmax(-1)
            nxt = torch.multinomial(probs, 1, generator=gen)[:, 0]
        if len(stops):
            last = idx[:, -1]
            nxt = torch.where(done, last, nxt)         # stopped sequences repeat their stop token
            done |= torch.isin(nxt, stops)
        idx = torch.cat([idx, nxt[:, None]], dim=1)
        if len(stops) and done.all():
            break
    model.train(was)
    return (idx, torch.stack(steps, 1)) if return_logits else idx


@torch.no_grad()
def beam_search(model: nn.Module, prompt: torch.Tensor | Sequence[int], max_new_tokens: int, beams: int = 4, *,
                stop_tokens: Sequence[int] = (), length_penalty: float = 1.0) -> tuple[list[int], float]:
    """The continuation of one prompt ((T,) ids) with the highest log-probability found by beam search.

    At every step each of the ``beams`` best partial continuations is extended by every token
    and the ``beams`` best of the results are kept. Finished hypotheses (ending in a stop
    token) are ranked by ``logprob / length ** length_penalty``. Returns (ids, that score),
    ids including the prompt.
    """
    was = model.training
    model.eval()
    dev = next(model.parameters()).device
    idx = _as_batch(prompt, dev)
    if idx.size(0) != 1:
        raise ValueError("beam_search decodes one prompt at a time")
    block, T0 = model.cfg.block_size, idx.size(1)
    seqs, scores = idx, torch.zeros(1, device=dev)             # (k, T), (k,)
    finished: list[tuple[float, list[int]]] = []
    for step in range(max_new_tokens):
        logp = model(seqs[:, -block:])[:, -1].log_softmax(-1)  # (k, V)
        total = (scores[:, None] + logp).flatten()
        best = total.topk(min(beams, total.numel())).indices
        V = logp.size(-1)
        seqs = torch.cat([seqs[best // V], (best % V)[:, None]], dim=1)
        scores = total[best]
        alive = torch.ones(len(best), dtype=torch.bool, device=dev)
        for i, tok in enumerate((best % V).tolist()):
            if tok in stop_tokens:
                n = step + 1
                finished.append((scores[i].item() / n ** length_penalty, seqs[i].tolist()))
                alive[i] = False
        seqs, scores = seqs[alive], scores[alive]
        if len(seqs) == 0:
            break
    n = seqs.size(1) - T0
    finished += [(s.item() / max(n, 1) ** length_penalty, q.tolist()) for s, q in zip(scores, seqs)]
    model.train(was)
    score, ids = max(finished, key=lambda f: f[0])
    return ids, score
