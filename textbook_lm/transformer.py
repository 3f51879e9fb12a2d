"""The Transformer (Vaswani et al., 2017), small enough to read in one sitting.

Building blocks first: positional encodings (sinusoidal, learned, rotary), the position-wise
feed-forward network, and one :class:`Block` that is an encoder block, a decoder block
(causal self-attention + cross-attention), or a GPT block (causal, no cross-attention),
with LayerNorm before (pre-LN) or after (post-LN) each residual branch. Then stacks:
:class:`Encoder`, :class:`Decoder`, and the encoder-decoder :class:`Transformer` for
sequence-to-sequence tasks. BERT and GPT are built from the same blocks.

Shapes: B batch, T sequence length, C = n_embd. Token id 0 is padding (``pad_id``).
Config names follow GPT-2 / nanoGPT, as in ``bert`` and ``gpt``: ``n_layer``, ``n_head``,
``n_embd``, ``block_size``. (The layers themselves keep PyTorch-style arguments:
``Block(d_model, n_heads, ...)``, ``MultiHeadAttention(d_model, n_heads, ...)``.)
Every attention map can be recorded with ``attention.record(model)`` without changing any
output.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from textbook_lm.attention import MultiHeadAttention, padding_mask
from textbook_lm.checks import check_int
from textbook_lm.utils import cross_entropy

__all__ = ["SinusoidalPositions", "LearnedPositions", "Rotary", "FeedForward", "Block", "Encoder", "Decoder",
           "TransformerConfig", "Transformer", "flops_per_token"]

POSITIONS = ("sinusoidal", "learned", "rotary", "none")




def _check_ids(ids: torch.Tensor, vocab: int) -> None:
    """Token ids: an integer tensor ``(B, T)`` with every id in ``[0, vocab)``."""
    if not isinstance(ids, torch.Tensor) or ids.is_floating_point() or ids.dtype == torch.bool:
        raise TypeError(f"token ids must be an integer tensor, got "
                        f"{ids.dtype if isinstance(ids, torch.Tensor) else type(ids).__name__}")
    if ids.dim() != 2:
        raise ValueError(f"token ids must have shape (B, T), got {tuple(ids.shape)}")
    if ids.numel() and (ids.min() < 0 or ids.max() >= vocab):
        raise ValueError(f"token ids must be in [0, {vocab}), got {ids.min().item()}..{ids.max().item()}")


# ----------------------------------------------------------------------------- positions
def _check_length(offset: int, t: int, max_len: int) -> None:
    if offset < 0:
        raise ValueError(f"position offset must be >= 0, got {offset}")
    if offset + t > max_len:
        raise ValueError(f"sequence of length {offset + t} is longer than the model's context window "
                         f"(block_size={max_len} positions)")


class SinusoidalPositions(nn.Module):
    """Fixed sinusoids added to the embeddings: PE[p, 2i] = sin(p / 10000^(2i/C)), PE[p, 2i+1] = cos(...)."""

    def __init__(self, d_model: int, max_len: int = 512):
        super().__init__()
        check_int("d_model", d_model)
        check_int("max_len", max_len)
        pos = torch.arange(max_len, dtype=torch.float32)[:, None]                       # (T, 1)
        freq = torch.exp(-math.log(10000.0) * torch.arange(0, d_model, 2, dtype=torch.float32) / d_model)
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(pos * freq)
        pe[:, 1::2] = torch.cos(pos * freq)[:, : d_model // 2]
        self.register_buffer("pe", pe, persistent=False)                                # (max_len, C)
        self.max_len = max_len

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:               # (B, T, C) -> (B, T, C)
        _check_length(offset, x.size(1), self.max_len)
        return x + self.pe[offset: offset + x.size(1)]


class LearnedPositions(nn.Module):
    """One trained vector per position, added to the embeddings (BERT, GPT-2)."""

    def __init__(self, d_model: int, max_len: int = 512):
        super().__init__()
        check_int("d_model", d_model)
        check_int("max_len", max_len)
        self.table = nn.Embedding(max_len, d_model)
        nn.init.normal_(self.table.weight, std=0.02)
        self.max_len = max_len

    @property
    def pe(self) -> torch.Tensor:
        return self.table.weight

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        _check_length(offset, x.size(1), self.max_len)
        return x + self.table(torch.arange(offset, offset + x.size(1), device=x.device))


class Rotary(nn.Module):
    """Rotary position embedding, RoPE (Su et al., 2021), applied to queries and keys.

    Feature pairs (i, i + D/2) of a head of size D are rotated by the angle ``p * theta_i``,
    ``theta_i = base^(-2i/D)``, where p is the position. A rotated query and key have a dot
    product that depends on their positions only through the offset between them.
    """

    def __init__(self, head_dim: int, max_len: int = 512, base: float = 10000.0):
        super().__init__()
        check_int("head_dim", head_dim)
        check_int("max_len", max_len)
        if head_dim % 2:
            raise ValueError(f"rotary embeddings need an even head size, got {head_dim}")
        theta = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)  # (D/2,)
        angle = torch.arange(max_len, dtype=torch.float32)[:, None] * theta             # (max_len, D/2)
        self.register_buffer("cos", angle.cos(), persistent=False)
        self.register_buffer("sin", angle.sin(), persistent=False)
        self.max_len = max_len

    def forward(self, t: torch.Tensor, offset: int = 0) -> torch.Tensor:               # (B, H, T, D) -> same
        T = t.size(-2)
        _check_length(offset, T, self.max_len)
        cos, sin = self.cos[offset: offset + T].to(t.dtype), self.sin[offset: offset + T].to(t.dtype)
        a, b = t.chunk(2, dim=-1)
        return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)


# ----------------------------------------------------------------------------- blocks
class FeedForward(nn.Module):
    """Position-wise feed-forward network: Linear(C, d_ff) -> GELU -> Linear(d_ff, C), same for every position.

    ``activation``: ``"gelu"`` (exact, with erf; BERT) or ``"gelu_tanh"`` (the tanh
    approximation that GPT-2 used; needed to reproduce its outputs exactly).
    """

    def __init__(self, d_model: int, d_ff: int, dropout: float = 0.0, activation: str = "gelu", bias: bool = True):
        super().__init__()
        check_int("d_model", d_model)
        check_int("d_ff", d_ff)
        if activation not in ("gelu", "gelu_tanh"):
            raise ValueError(f"activation must be 'gelu' or 'gelu_tanh', got {activation!r}")
        self.up, self.down = nn.Linear(d_model, d_ff, bias=bias), nn.Linear(d_ff, d_model, bias=bias)
        self.drop = nn.Dropout(dropout)
        self.approximate = "tanh" if activation == "gelu_tanh" else "none"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.down(F.gelu(self.up(x), approximate=self.approximate)))


class Block(nn.Module):
    """One Transformer layer: self-attention, optional cross-attention, feed-forward; each
    a residual branch with LayerNorm before it (``norm_first=True``, pre-LN, GPT-2 style)
    or after the addition (``norm_first=False``, post-LN, as in the 2017 paper and BERT).
    ``bias=False`` drops the biases of every linear layer and LayerNorm (as nanoGPT can).
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int | None = None, dropout: float = 0.0,
                 norm_first: bool = True, cross: bool = False, rotary: nn.Module | None = None,
                 eps: float = 1e-5, activation: str = "gelu", bias: bool = True):
        super().__init__()
        d_ff = 4 * d_model if d_ff is None else d_ff
        self.norm_first = norm_first
        self.attn = MultiHeadAttention(d_model, n_heads, dropout, bias=bias, rotary=rotary)
        self.ln_attn = nn.LayerNorm(d_model, eps=eps, bias=bias)
        self.cross = MultiHeadAttention(d_model, n_heads, dropout, bias=bias) if cross else None
        self.ln_cross = nn.LayerNorm(d_model, eps=eps, bias=bias) if cross else None
        self.ffn = FeedForward(d_model, d_ff, dropout, activation, bias)
        self.ln_ffn = nn.LayerNorm(d_model, eps=eps, bias=bias)
        self.drop = nn.Dropout(dropout)

    def _residual(self, x, ln, fn):
        if self.norm_first:
            return x + self.drop(fn(ln(x)))       # pre-LN: x + f(LN(x)), the residual path stays clean
        return ln(x + self.drop(fn(x)))           # post-LN: LN(x + f(x))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, causal: bool = False,
                memory: torch.Tensor | None = None, memory_mask: torch.Tensor | None = None,
                cache=None) -> torch.Tensor:
        """``x (B, T, C) -> (B, T, C)``; ``cache`` (an ``attention.KVCache``) for incremental decoding."""
        x = self._residual(x, self.ln_attn, lambda h: self.attn(h, mask=mask, causal=causal, cache=cache)[0])
        if self.cross is not None:
            if memory is None:
                raise ValueError("this block has cross-attention: pass the encoder output as `memory`")
            x = self._residual(x, self.ln_cross, lambda h: self.cross(h, memory, mask=memory_mask)[0])
        elif memory is not None:
            raise ValueError("this block has no cross-attention (cross=False) but `memory` was given")
        return self._residual(x, self.ln_ffn, self.ffn)


# ----------------------------------------------------------------------------- stacks
@dataclass
class TransformerConfig:
    """Sizes of the encoder-decoder :class:`Transformer`, named as in ``gpt`` and ``bert``."""

    src_vocab: int
    tgt_vocab: int
    n_embd: int = 64                    # C, the model width
    n_head: int = 4                     # attention heads per layer (n_embd must be divisible by it)
    n_layer: int = 2                    # encoder layers
    n_decoder_layer: int | None = None  # decoder layers (None: the same as n_layer)
    d_ff: int | None = None             # feed-forward width (None: 4 * n_embd)
    dropout: float = 0.0                # in [0, 1)
    block_size: int = 128               # the longest source or target sequence (positions)
    positions: str = "sinusoidal"       # "sinusoidal", "learned", "rotary" or "none"
    norm_first: bool = True             # pre-LN (True) or post-LN (False)
    pad_id: int = 0                     # padding token id, in both vocabularies

    def __post_init__(self):
        for name in ("src_vocab", "tgt_vocab", "n_embd", "n_head", "n_layer", "block_size"):
            check_int(name, getattr(self, name))
        for name in ("n_decoder_layer", "d_ff"):
            if getattr(self, name) is not None:
                check_int(name, getattr(self, name))
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd={self.n_embd} is not divisible by n_head={self.n_head}")
        if self.positions not in POSITIONS:
            raise ValueError(f"positions must be one of {POSITIONS}, got {self.positions!r}")
        if self.positions == "rotary" and (self.n_embd // self.n_head) % 2:
            raise ValueError(f"rotary positions need an even head size, got n_embd / n_head = "
                             f"{self.n_embd // self.n_head}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        check_int("pad_id", self.pad_id, 0)
        if self.pad_id >= min(self.src_vocab, self.tgt_vocab):
            raise ValueError(f"pad_id={self.pad_id} must be an id of both vocabularies "
                             f"(src_vocab={self.src_vocab}, tgt_vocab={self.tgt_vocab})")

    @property
    def decoder_layers(self) -> int:
        """The number of decoder layers: ``n_decoder_layer``, or ``n_layer`` when that is None."""
        return self.n_layer if self.n_decoder_layer is None else self.n_decoder_layer


class _Stack(nn.Module):
    """Token embedding + positions + blocks (+ a final LayerNorm for pre-LN stacks)."""

    def __init__(self, cfg: TransformerConfig, vocab: int, n_layers: int, cross: bool):
        super().__init__()
        if not isinstance(cfg, TransformerConfig):
            raise TypeError(f"cfg must be a TransformerConfig, got {type(cfg).__name__}")
        check_int("vocab", vocab)
        C = cfg.n_embd
        self.embed = nn.Embedding(vocab, C, padding_idx=cfg.pad_id)
        nn.init.normal_(self.embed.weight, std=1.0)
        self.positions = {"sinusoidal": SinusoidalPositions, "learned": LearnedPositions}.get(
            cfg.positions, lambda *a: None)(C, cfg.block_size)
        rotary = Rotary(C // cfg.n_head, cfg.block_size) if cfg.positions == "rotary" else None
        self.layers = nn.ModuleList(Block(C, cfg.n_head, cfg.d_ff, cfg.dropout, cfg.norm_first, cross, rotary)
                                    for _ in range(n_layers))
        self.ln_final = nn.LayerNorm(C) if cfg.norm_first else nn.Identity()
        self.drop = nn.Dropout(cfg.dropout)
        self.block_size, self.vocab = cfg.block_size, vocab

    def embed_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        _check_ids(ids, self.vocab)
        _check_length(0, ids.size(1), self.block_size)
        x = self.embed(ids)                                            # (B, T, C)
        return self.drop(x if self.positions is None else self.positions(x))


class Encoder(_Stack):
    """Bidirectional self-attention over the source; padding keys are masked out."""

    def __init__(self, cfg: TransformerConfig, vocab: int | None = None):
        super().__init__(cfg, cfg.src_vocab if vocab is None else vocab, cfg.n_layer, cross=False)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:   # (B, T) -> (B, T, C)
        x = self.embed_tokens(ids)
        for layer in self.layers:
            x = layer(x, mask=mask)
        return self.ln_final(x)


class Decoder(_Stack):
    """Causal self-attention over the target so far, cross-attention to the encoder's output."""

    def __init__(self, cfg: TransformerConfig, vocab: int | None = None):
        super().__init__(cfg, cfg.tgt_vocab if vocab is None else vocab, cfg.decoder_layers, cross=True)

    def forward(self, ids: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = self.embed_tokens(ids)
        for layer in self.layers:
            x = layer(x, causal=True, memory=memory, memory_mask=memory_mask)
        return self.ln_final(x)


class Transformer(nn.Module):
    """Encoder-decoder Transformer for sequence-to-sequence tasks.

    ``forward(src (B, S), tgt_in (B, T)) -> logits (B, T, tgt_vocab)``, where ``tgt_in`` is the
    target shifted right (starting with a start token). ``loss(x, y)`` takes ``x = (src,
    tgt_in)`` and targets ``y (B, T)`` with -100 at padding, so it plugs into ``train.train``.
    """

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder, self.decoder = Encoder(cfg), Decoder(cfg)
        self.head = nn.Linear(cfg.n_embd, cfg.tgt_vocab)

    def source_mask(self, src: torch.Tensor) -> torch.Tensor:
        return padding_mask(src == self.cfg.pad_id)                      # (B, 1, 1, S)

    def encode(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask = self.source_mask(src)
        return self.encoder(src, mask), mask                             # (B, S, C), (B, 1, 1, S)

    def decode(self, tgt_in: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.decoder(tgt_in, memory, memory_mask))      # (B, T, tgt_vocab)

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        if isinstance(src, torch.Tensor) and isinstance(tgt_in, torch.Tensor) and src.size(0) != tgt_in.size(0):
            raise ValueError(f"src {tuple(src.shape)} and tgt_in {tuple(tgt_in.shape)} need the same batch size")
        return self.decode(tgt_in, *self.encode(src))

    def loss(self, x: tuple[torch.Tensor, torch.Tensor], y: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy (nats per scored target token; -100 in ``y`` is ignored)."""
        if not isinstance(x, (tuple, list)) or len(x) != 2:
            raise TypeError("x must be the pair (src, tgt_in), as PairData batches give it")
        return cross_entropy(self(*x), y)


# ----------------------------------------------------------------------------- size and cost
# (parameter counts: ``textbook_lm.utils.count_params(model, embeddings=...)``)
def flops_per_token(model: nn.Module, context: int) -> int:
    """Forward-pass FLOPs per token (multiply-add = 2 FLOPs), counting matrix products only.

    ``2 x (weights of every Linear)`` for the projections, FFNs and output head, plus, for each
    attention module, ``2 x 2 x context x d_model`` for the scores ``q k^T`` and the weighted
    sum of the values, with ``context`` keys per query (a causal layer attends to about
    ``context/2`` keys on average; this counts the full square, as the fused kernels do).
    Training costs about three times this (forward + backward), the "6 N" of Kaplan et al. (2020).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"flops_per_token needs a torch.nn.Module, got {type(model).__name__}")
    check_int("context", context)
    linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear))
    attn = sum(2 * 2 * context * m.qkv.in_features for m in model.modules() if isinstance(m, MultiHeadAttention))
    return 2 * linear + attn
