"""Attention: score functions, masks, and multi-head attention with two interchangeable paths.

**Mask convention (one for the whole book).** A mask is a *boolean* tensor that broadcasts to
``(B, heads, T_q, T_k)``; ``True`` means "this query may attend to this key", ``False`` means
"may not". (This is the convention of ``torch.nn.functional.scaled_dot_product_attention``
for boolean masks; note that ``nn.MultiheadAttention``'s ``key_padding_mask`` uses the
opposite one.) Helpers build the common cases: :func:`causal_mask`, :func:`padding_mask`,
and :func:`combine` (logical AND).

**Fully masked rows.** A query that may attend to nothing gets attention weights that are
all zero and an output of exactly zero (never NaN), on both paths and in the gradients.

**Two paths, one interface.** :func:`attend_explicit` writes attention out as matrix
products and returns the weights (for teaching and heatmaps); :func:`attend_fused` calls
PyTorch's fused ``scaled_dot_product_attention`` kernel (for speed). The tests check that
they agree to 1e-5 for every mask type. :class:`MultiHeadAttention` uses the fused path
unless weights are asked for, or recorded with :func:`record`.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Callable, Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F
from textbook_lm.checks import check_int

__all__ = ["causal_mask", "padding_mask", "combine", "dot_scores", "scaled_dot_scores", "AdditiveScore",
           "attend_explicit", "attend_fused", "KVCache", "MultiHeadAttention", "record"]


# ----------------------------------------------------------------------------- checks


def _tensor(name: str, t, min_dim: int = 2) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dim() < min_dim:
        raise ValueError(f"{name} must have at least {min_dim} dimensions, got shape {tuple(t.shape)}")
    return t


def _check_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor | None = None, same_d: bool = True) -> None:
    """``q (..., T_q, d)``, ``k (..., T_k, d)``, ``v (..., T_k, d_v)`` with broadcastable batch dims."""
    for name, t in (("q", q), ("k", k)) + ((("v", v),) if v is not None else ()):
        _tensor(name, t)
    if same_d and q.size(-1) != k.size(-1):
        raise ValueError(f"q and k need the same feature size d, got q {tuple(q.shape)} and k {tuple(k.shape)}")
    if v is not None and v.size(-2) != k.size(-2):
        raise ValueError(f"k and v need the same number of keys T_k, got k {tuple(k.shape)} and v {tuple(v.shape)}")
    try:
        torch.broadcast_shapes(*(t.shape[:-2] for t in (q, k, v) if t is not None))
    except RuntimeError:
        raise ValueError(f"batch dimensions of q {tuple(q.shape)}, k {tuple(k.shape)}"
                         f"{'' if v is None else f' and v {tuple(v.shape)}'} do not broadcast") from None


def _check_dropout(p: float) -> None:
    if not 0.0 <= p < 1.0:            # also False for NaN
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")


# ----------------------------------------------------------------------------- masks
def causal_mask(t_q: int, t_k: int | None = None, device: torch.device | str | None = None) -> torch.Tensor:
    """``(T_q, T_k)`` boolean mask: query ``i`` may attend to keys ``j <= i + (T_k - T_q)``.

    With ``T_k == T_q`` this is the lower triangle (each position sees itself and the past);
    with ``T_k > T_q`` the queries are the *last* ``T_q`` positions (incremental decoding).
    """
    check_int("t_q", t_q, 0)
    t_k = t_q if t_k is None else check_int("t_k", t_k, 0)
    if t_k < t_q:
        raise ValueError(f"a causal mask needs at least as many keys as queries, got T_q={t_q}, T_k={t_k}")
    return torch.ones(t_q, t_k, dtype=torch.bool, device=device).tril(diagonal=t_k - t_q)


def padding_mask(is_pad: torch.Tensor) -> torch.Tensor:
    """From ``is_pad`` of shape ``(B, T_k)`` (``True`` at padding) to a ``(B, 1, 1, T_k)`` mask
    that lets every query attend to every real (non-padding) key."""
    if not isinstance(is_pad, torch.Tensor) or is_pad.dtype != torch.bool:
        raise TypeError(f"is_pad must be a boolean tensor (True at padding), got "
                        f"{is_pad.dtype if isinstance(is_pad, torch.Tensor) else type(is_pad).__name__}")
    if is_pad.dim() != 2:
        raise ValueError(f"is_pad must have shape (B, T_k), got {tuple(is_pad.shape)}")
    return (~is_pad)[:, None, None, :]


def combine(*masks: torch.Tensor | None) -> torch.Tensor | None:
    """Logical AND of any number of boolean masks (``None`` entries are ignored; all ``None``
    gives ``None``). The masks must broadcast to one shape."""
    out = None
    for m in masks:
        if m is not None:
            _check_mask(m)
            if out is not None:
                try:
                    torch.broadcast_shapes(out.shape, m.shape)
                except RuntimeError:
                    raise ValueError(f"masks of shapes {tuple(out.shape)} and {tuple(m.shape)} do not broadcast") from None
            out = m if out is None else out & m
    return out


def _check_mask(mask: torch.Tensor | None, scores_shape: torch.Size | None = None) -> None:
    """A mask is a boolean tensor that broadcasts to the scores' shape ``(..., T_q, T_k)``."""
    if mask is None:
        return
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        raise TypeError(f"masks are boolean tensors (True = may attend), got "
                        f"{mask.dtype if isinstance(mask, torch.Tensor) else type(mask).__name__}")
    if scores_shape is None:
        return
    ok = mask.dim() <= len(scores_shape) and all(
        m in (1, s) for m, s in zip(reversed(mask.shape), reversed(scores_shape)))
    if not ok:
        raise ValueError(f"mask of shape {tuple(mask.shape)} does not broadcast to the attention scores "
                         f"{tuple(scores_shape)} (..., T_q, T_k)")


# ----------------------------------------------------------------------------- scores
def dot_scores(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Luong's dot-product scores ``q . k``: ``(..., T_q, d) x (..., T_k, d) -> (..., T_q, T_k)``."""
    _check_qkv(q, k)
    return q @ k.transpose(-2, -1)


def scaled_dot_scores(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Scaled dot-product scores ``q . k / sqrt(d)`` (Vaswani et al., 2017)."""
    _check_qkv(q, k)
    return q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))


class AdditiveScore(nn.Module):
    """Bahdanau's additive score ``v^T tanh(W_q q + W_k k)`` (Bahdanau et al., 2015).

    One small feed-forward network scores each (query, key) pair; the scores then go through
    *one* softmax over the keys, like any other score. Works for queries and keys of
    different sizes: ``(..., T_q, d_q)`` and ``(..., T_k, d_k)`` give ``(..., T_q, T_k)``.
    """

    def __init__(self, d_q: int, d_k: int, d_hidden: int):
        super().__init__()
        for name, d in (("d_q", d_q), ("d_k", d_k), ("d_hidden", d_hidden)):
            check_int(name, d)
        self.w_q = nn.Linear(d_q, d_hidden, bias=False)
        self.w_k = nn.Linear(d_k, d_hidden, bias=True)
        self.v = nn.Linear(d_hidden, 1, bias=False)

    def forward(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        _check_qkv(q, k, same_d=False)
        if q.size(-1) != self.w_q.in_features or k.size(-1) != self.w_k.in_features:
            raise ValueError(f"this score takes queries of size {self.w_q.in_features} and keys of size "
                             f"{self.w_k.in_features}, got q {tuple(q.shape)} and k {tuple(k.shape)}")
        hidden = torch.tanh(self.w_q(q).unsqueeze(-2) + self.w_k(k).unsqueeze(-3))  # (..., T_q, T_k, d_hidden)
        return self.v(hidden).squeeze(-1)                                           # (..., T_q, T_k)


# ----------------------------------------------------------------------------- the two paths
def attend_explicit(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None,
                    score: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = scaled_dot_scores,
                    dropout_p: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention written out: ``weights = softmax(score(q, k))`` over the keys, ``out = weights @ v``.

    Shapes: ``q (..., T_q, d)``, ``k (..., T_k, d)``, ``v (..., T_k, d_v)`` -> ``out (..., T_q, d_v)``
    and ``weights (..., T_q, T_k)``, each row of which sums to 1 over the allowed keys (0 where
    masked; all 0 for a fully masked row, whose output is then 0).
    """
    _check_qkv(q, k, v, same_d=False)         # the score function checks q and k against each other
    _check_dropout(dropout_p)
    scores = score(q, k)                                                   # (..., T_q, T_k)
    _check_mask(mask, scores.shape)
    if mask is not None:
        # The most negative finite number, not -inf: a fully masked row then stays finite
        # (uniform), and multiplying by `alive` zeroes it without NaN in the gradient.
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    weights = scores.softmax(dim=-1)
    if mask is not None:
        alive = mask.any(dim=-1, keepdim=True)
        weights = weights * alive
    if dropout_p > 0:
        weights = F.dropout(weights, dropout_p)
    return weights @ v, weights                                            # a weighted SUM of the values


def attend_fused(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None,
                 causal: bool = False, dropout_p: float = 0.0) -> torch.Tensor:
    """The same computation (scaled dot-product scores) through PyTorch's fused kernel.

    ``causal=True`` applies :func:`causal_mask` inside the kernel, which is faster than
    passing it as a tensor. Fully masked rows give 0, as in :func:`attend_explicit`.
    """
    _check_qkv(q, k, v)
    _check_dropout(dropout_p)
    scores_shape = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2]) + (q.size(-2), k.size(-2))
    _check_mask(mask, scores_shape)
    if causal:
        mask = combine(mask, causal_mask(q.size(-2), k.size(-2), q.device))
        if q.size(-2) == k.size(-2) and mask.dim() == 2:       # plain causal: let the kernel do it
            return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True)
    if mask is None:
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
    alive = mask.any(dim=-1, keepdim=True)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask | ~alive, dropout_p=dropout_p)
    return out * alive


# ----------------------------------------------------------------------------- multi-head attention
class KVCache:
    """The keys and values of one attention layer for every position processed so far.

    Incremental decoding feeds only the new tokens; their keys and values are appended here
    and their queries attend over everything cached. Shapes ``(B, heads, T_so_far, head_dim)``.
    """

    def __init__(self):
        self.k: torch.Tensor | None = None
        self.v: torch.Tensor | None = None

    def __len__(self) -> int:
        return 0 if self.k is None else self.k.size(2)

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Add the new positions' keys and values; return all keys and values so far."""
        _tensor("k", k, 4)
        _tensor("v", v, 4)
        if k.dim() != 4 or k.shape != v.shape:
            raise ValueError(f"keys and values must both be (B, heads, T, head_dim), got {tuple(k.shape)} "
                             f"and {tuple(v.shape)}")
        if self.k is not None and (k.shape[:2] != self.k.shape[:2] or k.size(3) != self.k.size(3)):
            raise ValueError(f"new keys {tuple(k.shape)} do not continue the cached {tuple(self.k.shape)} "
                             f"(same B, heads and head_dim needed)")
        self.k = k if self.k is None else torch.cat([self.k, k], dim=2)
        self.v = v if self.v is None else torch.cat([self.v, v], dim=2)
        return self.k, self.v


class MultiHeadAttention(nn.Module):
    """Multi-head attention (多头注意力) with scaled dot-product scores.

    ``forward(x, context=None, mask=None, causal=False, need_weights=False)``: queries come
    from ``x (B, T_q, d_model)``; keys and values from ``context (B, T_k, d_model)``, or from
    ``x`` itself (self-attention) when ``context`` is None. Returns ``(out, weights)`` where
    ``out`` is ``(B, T_q, d_model)`` and ``weights`` is ``(B, heads, T_q, T_k)`` if
    ``need_weights`` (computed on the explicit path) and otherwise ``None`` (fused path).

    ``rotary``: an optional module applied to queries and keys ``(B, heads, T, head_dim)``
    after the heads are split (rotary position embeddings, see ``transformer.Rotary``).
    ``cache``: a :class:`KVCache` for incremental self-attention; ``x`` then holds only the
    new positions, which come after the ``len(cache)`` positions already cached.
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0, bias: bool = True,
                 rotary: nn.Module | None = None):
        super().__init__()
        check_int("d_model", d_model)
        check_int("n_heads", n_heads)
        _check_dropout(dropout)
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
        self.n_heads, self.head_dim, self.dropout = n_heads, d_model // n_heads, dropout
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=bias)   # W_Q, W_K, W_V stacked: one matmul for self-attention
        self.out = nn.Linear(d_model, d_model, bias=bias)       # W_O
        self.rotary = rotary
        self.record_weights = False                              # set by `record`
        self.last_weights: torch.Tensor | None = None
        # called on the heads' outputs (B, heads, T, head_dim) before W_O mixes them; returns
        # them (changed or not). Set by `heads.ablate` and `heads.head_means`.
        self.head_hook: Callable[[torch.Tensor], torch.Tensor] | None = None

    def _heads(self, t: torch.Tensor) -> torch.Tensor:          # (B, T, d_model) -> (B, heads, T, head_dim)
        B, T, _ = t.shape
        return t.view(B, T, self.n_heads, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                causal: bool = False, need_weights: bool = False,
                cache: KVCache | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        C = self.out.in_features
        for name, t in (("x", x), ("context", context)):
            if t is None:
                continue
            _tensor(name, t, 3)
            if t.dim() != 3 or t.size(-1) != C or t.size(0) != x.size(0):
                raise ValueError(f"{name} must have shape (B={x.size(0)}, T, d_model={C}), got {tuple(t.shape)}")
        if cache is not None and context is not None:
            raise ValueError("a KV cache is for self-attention; cross-attention keys come from `context`")
        B, T, _ = x.shape
        if context is None:                                      # self-attention: q, k, v all from x
            q, k, v = self.qkv(x).split(C, dim=2)
        else:                                                    # cross-attention: q from x, k and v from context
            w, b = self.qkv.weight, self.qkv.bias
            q = F.linear(x, w[:C], None if b is None else b[:C])
            k, v = F.linear(context, w[C:], None if b is None else b[C:]).split(C, dim=2)
        q, k, v = self._heads(q), self._heads(k), self._heads(v)     # (B, heads, T, head_dim)
        past = 0 if cache is None else len(cache)
        if self.rotary is not None:
            q, k = self.rotary(q, past), self.rotary(k, past)
        if cache is not None:
            k, v = cache.append(k, v)                            # (B, heads, past + T, head_dim)
        p = self.dropout if self.training else 0.0
        weights = None
        if need_weights or self.record_weights:
            full = combine(mask, causal_mask(q.size(2), k.size(2), x.device) if causal else None)
            y, weights = attend_explicit(q, k, v, full, dropout_p=p)
            if self.record_weights:
                self.last_weights = weights.detach()
        else:
            y = attend_fused(q, k, v, mask, causal=causal, dropout_p=p)
        if self.head_hook is not None:
            y = self.head_hook(y)
        y = y.transpose(1, 2).reshape(B, T, C)                   # heads side by side again: (B, T, d_model)
        return self.out(y), (weights if need_weights else None)


@contextmanager
def record(model: nn.Module) -> Iterator[dict[str, torch.Tensor]]:
    """Record every attention map a forward pass computes, without changing the outputs.

    >>> with record(model) as maps:        # doctest: +SKIP
    ...     model(x)
    >>> maps["encoder.layers.0.attn"].shape  # (B, heads, T_q, T_k)

    Inside the block every :class:`MultiHeadAttention` uses the explicit path; on exit the
    dict is filled with the last weights of each module, keyed by module name.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"record needs a torch.nn.Module, got {type(model).__name__}")
    mods = {name: m for name, m in model.named_modules() if isinstance(m, MultiHeadAttention)}
    maps: dict[str, torch.Tensor] = {}
    for m in mods.values():
        m.record_weights, m.last_weights = True, None
    try:
        yield maps
    finally:
        for name, m in mods.items():
            if m.last_weights is not None:
                maps[name] = m.last_weights
            m.record_weights, m.last_weights = False, None
