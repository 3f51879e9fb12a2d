"""Decoding: turning a language model's next-token distributions into text.

* :func:`generate`: greedy (``temperature=0``), sampling with a temperature, top-k, top-p
  (nucleus), a repetition penalty and stop tokens, seeded, with or without a KV cache.
* :func:`beam_search`: keep the ``beams`` most probable continuations at every step.
* :func:`filter_logits`: the top-k / top-p rules on their own, for plots and tests.

Works with any model ``model(idx (B, T)) -> logits (B, T, V)`` that has ``cfg.block_size``;
the KV cache needs ``model.new_cache()`` and ``model(idx, cache=...)`` (``gpt.GPT``).

**Seeds.** With ``seed``, tokens are drawn with a CPU ``torch.Generator`` (the (B, V)
probabilities are moved to the CPU for the draw), so the same seed gives the same tokens on
CPU, CUDA and MPS, up to float rounding of the probabilities themselves.

**Context rule.** A model sees at most ``block_size`` tokens. When prompt + generated text is
longer, the model is given the last ``block_size`` tokens. With a cache, the cache is then
rebuilt from those tokens (learned positions are absolute, so cached keys cannot be
shifted); generation stays correct, and is as slow as without a cache from that point on.
"""
from __future__ import annotations

import itertools
import math
from typing import Sequence

import torch
import torch.nn as nn

from textbook_lm.checks import check_int, check_number
from textbook_lm.utils import eval_mode

__all__ = ["filter_logits", "apply_repetition_penalty", "generate", "beam_search"]


# ----------------------------------------------------------------------------- checks




def _check_filters(top_k: int | None, top_p: float | None) -> None:
    if top_k is not None:
        check_int("top_k", top_k, 1)
    if top_p is not None and not 0 < check_number("top_p", top_p) <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")


def _check_penalty(penalty: float) -> None:
    if not 0 < check_number("repetition_penalty", penalty) < math.inf:
        raise ValueError(f"repetition_penalty must be a finite number > 0 (1 = no penalty), got {penalty}")


def _model_limits(model: nn.Module) -> tuple[int, int | None, torch.device]:
    """``(block_size, vocab_size or None, device)`` of a decoder-only language model."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    cfg = getattr(model, "cfg", None)
    if not isinstance(getattr(cfg, "block_size", None), int):
        raise TypeError(f"{type(model).__name__} has no cfg.block_size: decoding needs a language model "
                        "that states its context window (e.g. gpt.GPT)")
    dev = next(itertools.chain(model.parameters(), model.buffers()), torch.empty(0)).device
    return cfg.block_size, getattr(cfg, "vocab_size", None), dev


def _check_ids(name: str, ids: torch.Tensor, vocab: int | None) -> None:
    if ids.numel() and (ids.min() < 0 or (vocab is not None and ids.max() >= vocab)):
        allowed = f"[0, {vocab})" if vocab is not None else ">= 0"
        raise ValueError(f"{name} must be token ids in {allowed}, got {ids.min().item()}..{ids.max().item()}")


def _as_batch(prompt: torch.Tensor | Sequence[int], device, vocab: int | None) -> torch.Tensor:
    """``prompt`` as a ``(B, T)`` long tensor on ``device``, checked."""
    if isinstance(prompt, (str, bytes)):
        raise TypeError("prompt must be token ids, not a string: encode it with a tokenizer first")
    try:
        idx = torch.as_tensor(prompt)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"prompt must be a (T,) or (B, T) sequence of token ids (rows of equal length): {err}") from None
    if idx.numel() and (idx.is_floating_point() or idx.is_complex() or idx.dtype == torch.bool):
        raise TypeError(f"prompt must hold integer token ids, got dtype {idx.dtype}")
    idx = idx.to(device=device, dtype=torch.long)
    if idx.dim() == 1:
        idx = idx[None]
    if idx.dim() != 2 or idx.size(1) == 0:
        raise ValueError(f"prompt must be a non-empty (T,) or (B, T) sequence of token ids, got shape {tuple(idx.shape)}")
    _check_ids("prompt", idx, vocab)
    return idx


def _stop_ids(stop_tokens: Sequence[int], vocab: int | None, device) -> torch.Tensor:
    if isinstance(stop_tokens, (str, bytes)) or not hasattr(stop_tokens, "__iter__"):
        raise TypeError(f"stop_tokens must be a sequence of token ids, got {type(stop_tokens).__name__}")
    stops = [check_int("stop token", t.item() if isinstance(t, torch.Tensor) else t, 0) for t in stop_tokens]
    out = torch.tensor(stops, dtype=torch.long, device=device)
    _check_ids("stop_tokens", out, vocab)
    return out


# ----------------------------------------------------------------------------- rules
def filter_logits(logits: torch.Tensor, top_k: int | None = None, top_p: float | None = None) -> torch.Tensor:
    """Set to ``-inf`` every logit outside the top-k set and/or the top-p (nucleus) set.

    ``logits (..., V)``. Top-k keeps the ``k`` largest (ties at the boundary all kept; an int
    >= 1, larger than V keeps all). Top-p keeps the smallest set of most probable tokens whose
    probabilities sum to at least ``p`` in (0, 1] (the most probable token is always kept).
    """
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
        raise TypeError(f"logits must be a floating-point tensor (..., V), got "
                        f"{logits.dtype if isinstance(logits, torch.Tensor) else type(logits).__name__}")
    _check_filters(top_k, top_p)
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.size(-1)), dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, -math.inf)
    if top_p is not None:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(-1)
        before = probs.cumsum(-1) - probs                  # probability mass of the tokens ranked above
        drop_sorted = before >= top_p                      # keep a token while the mass above it is < p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, -math.inf)
    return logits


def apply_repetition_penalty(logits: torch.Tensor, previous: torch.Tensor, penalty: float) -> torch.Tensor:
    """Make tokens that already occur in ``previous (B, T)`` less likely (Keskar et al., 2019):
    their positive logits are divided by ``penalty``, negative ones multiplied. ``logits (B, V)``;
    ``penalty`` a finite number > 0 (1 = no change, > 1 discourages repeats)."""
    _check_penalty(penalty)
    if penalty == 1.0:
        return logits
    if logits.dim() != 2 or previous.dim() != 2 or previous.size(0) != logits.size(0):
        raise ValueError(f"need logits (B, V) and previous (B, T) with the same B, got {tuple(logits.shape)} "
                         f"and {tuple(previous.shape)}")
    _check_ids("previous", previous, logits.size(-1))
    return _penalise(logits, previous, penalty)


def _penalise(logits: torch.Tensor, previous: torch.Tensor, penalty: float) -> torch.Tensor:
    if penalty == 1.0:
        return logits
    seen = torch.gather(logits, 1, previous)
    seen = torch.where(seen > 0, seen / penalty, seen * penalty)
    return logits.scatter(1, previous, seen)


def _draw(probs: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
    """One token per row of ``probs (B, V)``; with a (CPU) generator the draw happens on the CPU."""
    if gen is None:
        return torch.multinomial(probs, 1)[:, 0]
    return torch.multinomial(probs.float().cpu(), 1, generator=gen)[:, 0].to(probs.device)


# ----------------------------------------------------------------------------- decoding
@torch.no_grad()
def generate(model: nn.Module, prompt: torch.Tensor | Sequence[int], max_new_tokens: int, *,
             temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
             repetition_penalty: float = 1.0, stop_tokens: Sequence[int] = (), seed: int | None = None,
             use_cache: bool = True, return_logits: bool = False):
    """Continue ``prompt`` ((T,) or (B, T) token ids) by up to ``max_new_tokens`` (>= 1) tokens.

    ``temperature=0`` is greedy decoding (always the most likely token); otherwise tokens are
    sampled from ``softmax(logits / temperature)`` after the repetition penalty and the
    top-k / top-p filters (see :func:`filter_logits`). A sequence stops after producing one of
    ``stop_tokens`` (later positions are filled with that stop token); generation ends when
    all have stopped. Prompt ids must lie in ``[0, cfg.vocab_size)``; a prompt longer than
    ``cfg.block_size`` is cropped to its last ``block_size`` tokens (the context rule above).
    Returns ids ``(B, T + n)`` and, with ``return_logits``, the raw next-token logits of
    every step ``(B, n, V)``. The model is left in the mode (train/eval) it had, even on errors.
    """
    block, vocab, dev = _model_limits(model)
    check_int("max_new_tokens", max_new_tokens, 1)
    if not 0 <= check_number("temperature", temperature) < math.inf:
        raise ValueError(f"temperature must be a finite number >= 0 (0 = greedy), got {temperature}")
    _check_filters(top_k, top_p)
    _check_penalty(repetition_penalty)
    if seed is not None:
        check_int("seed", seed, 0)
    idx = _as_batch(prompt, dev, vocab)
    stops = _stop_ids(stop_tokens, vocab, dev)
    gen = torch.Generator().manual_seed(seed) if seed is not None else None    # CPU: same draws on any device
    done = torch.zeros(idx.size(0), dtype=torch.bool, device=dev)
    cache, steps = None, []
    with eval_mode(model):
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
            logits = _penalise(logits, idx, repetition_penalty)         # checked above
            if temperature == 0:
                nxt = logits.argmax(-1)
            else:
                nxt = _draw(filter_logits(logits / temperature, top_k, top_p).softmax(-1), gen)
            if len(stops):
                last = idx[:, -1]
                nxt = torch.where(done, last, nxt)         # stopped sequences repeat their stop token
                done |= torch.isin(nxt, stops)
            idx = torch.cat([idx, nxt[:, None]], dim=1)
            if len(stops) and done.all():
                break
    return (idx, torch.stack(steps, 1)) if return_logits else idx


@torch.no_grad()
def beam_search(model: nn.Module, prompt: torch.Tensor | Sequence[int], max_new_tokens: int, beams: int = 4, *,
                stop_tokens: Sequence[int] = (), length_penalty: float = 1.0) -> tuple[list[int], float]:
    """The continuation of one prompt ((T,) ids) with the highest log-probability found by beam search.

    At every step each of the ``beams`` (>= 1) best partial continuations is extended by every
    token and the ``beams`` best of the results are kept, for up to ``max_new_tokens`` (>= 1)
    steps. Finished hypotheses (ending in a stop token) are ranked by
    ``logprob / length ** length_penalty`` (a finite number). Returns (ids, that score), ids
    including the prompt. The model is left in the mode it had, even on errors.
    """
    block, vocab, dev = _model_limits(model)
    check_int("max_new_tokens", max_new_tokens, 1)
    check_int("beams", beams, 1)
    if not math.isfinite(check_number("length_penalty", length_penalty)):
        raise ValueError(f"length_penalty must be finite, got {length_penalty}")
    idx = _as_batch(prompt, dev, vocab)
    if idx.size(0) != 1:
        raise ValueError(f"beam_search decodes one prompt at a time, got a batch of {idx.size(0)}")
    stop_tokens = set(_stop_ids(stop_tokens, vocab, dev).tolist())
    T0 = idx.size(1)
    seqs, scores = idx, torch.zeros(1, device=dev)             # (k, T), (k,)
    finished: list[tuple[float, list[int]]] = []
    with eval_mode(model):
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
    score, ids = max(finished, key=lambda f: f[0])
    return ids, score
