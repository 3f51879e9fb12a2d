"""Neural language models before attention: a one-layer bigram network, Bengio et al.'s
feed-forward NNLM, and recurrent models (a vanilla RNN written out step by step, and
``nn.RNN``/``nn.LSTM``/``nn.GRU``).

Every model maps token ids ``(B, T)`` to next-token logits ``(B, T, V)``: the logits at
position ``t`` predict token ``t + 1`` from tokens ``0..t`` (for the NNLM, from the last
``context`` of them). Ids outside ``[0, vocab_size)`` raise a ``ValueError``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["BigramNet", "NNLMConfig", "BengioNNLM", "RecurrentConfig", "RecurrentLM", "check_ids", "count_params"]


def check_ids(idx: torch.Tensor, vocab_size: int) -> None:
    """Raise a clear error for token ids outside the vocabulary."""
    if idx.dtype not in (torch.long, torch.int, torch.int32, torch.int64):
        raise TypeError(f"token ids must be an integer tensor, got {idx.dtype}")
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= vocab_size):
        raise ValueError(f"token ids must lie in [0, {vocab_size}); got min {int(idx.min())}, max {int(idx.max())}")


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters (tied weights counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters() if p.requires_grad}.values())


class BigramNet(nn.Module):
    """The smallest neural LM: logits = W @ one_hot(previous token), i.e. a learned V x V table.

    Trained with cross-entropy, its softmax rows estimate p(next | previous): the bigram
    model of Chapter 1, learned by gradient descent instead of counted.
    """

    def __init__(self, vocab_size: int):
        super().__init__()
        self.vocab_size = vocab_size
        self.table = nn.Embedding(vocab_size, vocab_size)      # row i = W @ one_hot(i)
        nn.init.zeros_(self.table.weight)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        check_ids(idx, self.vocab_size)
        return self.table(idx)                                   # (B, T, V)


@dataclass
class NNLMConfig:
    vocab_size: int
    context: int = 4           # how many previous tokens the model sees (n - 1 in n-gram terms)
    emb_dim: int = 64
    hidden: int = 128
    direct: bool = False       # Bengio et al.'s optional direct connections embeddings -> output
    tie: bool = False          # output layer shares the embedding table (needs hidden == emb_dim)
    dropout: float = 0.0


class BengioNNLM(nn.Module):
    """Bengio et al. (2003): concatenate the embeddings of the last ``context`` tokens, one tanh
    hidden layer, softmax over the vocabulary. ``y = b + W x + U tanh(d + H x)``.

    Context rule: position ``t`` sees tokens ``t-context+1 .. t``; where the sequence has
    fewer tokens (its start), the missing ones are a learned padding embedding. Anything
    further back is ignored, so a longer context is truncated to its last ``context`` tokens.
    """

    def __init__(self, cfg: NNLMConfig):
        super().__init__()
        self.cfg = cfg
        self.emb = nn.Embedding(cfg.vocab_size + 1, cfg.emb_dim)          # last row: padding
        self.hidden = nn.Linear(cfg.context * cfg.emb_dim, cfg.hidden)      # H, d
        if cfg.tie and cfg.hidden != cfg.emb_dim:
            raise ValueError("weight tying needs hidden == emb_dim")
        # U, b: with tying, U is the embedding table itself (its padding row excluded)
        self.out = None if cfg.tie else nn.Linear(cfg.hidden, cfg.vocab_size)
        self.out_bias = nn.Parameter(torch.zeros(cfg.vocab_size)) if cfg.tie else None
        self.direct = nn.Linear(cfg.context * cfg.emb_dim, cfg.vocab_size, bias=False) if cfg.direct else None  # W
        self.drop = nn.Dropout(cfg.dropout)

    def windows(self, idx: torch.Tensor) -> torch.Tensor:
        """(B, T) ids -> (B, T, context) ids of the window ending at each position (padded on the left)."""
        B, T = idx.shape
        pad = torch.full((B, self.cfg.context - 1), self.cfg.vocab_size, dtype=idx.dtype, device=idx.device)
        return torch.cat([pad, idx], dim=1).unfold(1, self.cfg.context, 1)   # (B, T, context)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        check_ids(idx, self.cfg.vocab_size)
        x = self.emb(self.windows(idx)).flatten(2)                  # (B, T, context * emb_dim)
        x = self.drop(x)
        h = self.drop(torch.tanh(self.hidden(x)))                   # (B, T, hidden)
        if self.out is None:
            logits = F.linear(h, self.emb.weight[: self.cfg.vocab_size], self.out_bias)
        else:
            logits = self.out(h)                                    # (B, T, V)
        return logits + self.direct(x) if self.direct is not None else logits


@dataclass
class RecurrentConfig:
    vocab_size: int
    kind: str = "lstm"          # "rnn", "lstm" or "gru"
    emb_dim: int = 64
    hidden: int = 128
    layers: int = 1
    dropout: float = 0.0
    tie: bool = False           # output layer shares the embedding table (needs hidden == emb_dim)


class RecurrentLM(nn.Module):
    """Embedding -> recurrent layers -> linear output. ``forward(idx, state)`` returns
    ``(logits, state)`` so that a long text can be read in pieces (truncated BPTT).

    For ``kind="rnn"``, :meth:`forward_explicit` runs the same network with the cell written
    out, ``h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)``, one step at a time; a test
    checks that it matches ``nn.RNN``.
    """

    def __init__(self, cfg: RecurrentConfig):
        super().__init__()
        if cfg.kind not in ("rnn", "lstm", "gru"):
            raise ValueError(f"kind must be 'rnn', 'lstm' or 'gru', got {cfg.kind!r}")
        self.cfg = cfg
        self.emb = nn.Embedding(cfg.vocab_size, cfg.emb_dim)
        cls = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cfg.kind]
        self.rnn = cls(cfg.emb_dim, cfg.hidden, num_layers=cfg.layers, batch_first=True,
                       dropout=cfg.dropout if cfg.layers > 1 else 0.0)
        self.drop = nn.Dropout(cfg.dropout)
        self.out = nn.Linear(cfg.hidden, cfg.vocab_size)
        if cfg.tie:
            if cfg.hidden != cfg.emb_dim:
                raise ValueError("weight tying needs hidden == emb_dim")
            self.out.weight = self.emb.weight

    def forward(self, idx: torch.Tensor, state=None):
        check_ids(idx, self.cfg.vocab_size)
        x = self.drop(self.emb(idx))                # (B, T, emb_dim)
        h, state = self.rnn(x, state)               # (B, T, hidden)
        return self.out(self.drop(h)), state        # (B, T, V)

    def forward_explicit(self, idx: torch.Tensor, h0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The vanilla RNN (single layer) written out: returns (logits, all hidden states (B, T, H))."""
        if self.cfg.kind != "rnn" or self.cfg.layers != 1:
            raise ValueError("forward_explicit is the single-layer vanilla RNN")
        check_ids(idx, self.cfg.vocab_size)
        x = self.emb(idx)                                                   # (B, T, E)
        W_ih, W_hh = self.rnn.weight_ih_l0, self.rnn.weight_hh_l0            # (H, E), (H, H)
        b = self.rnn.bias_ih_l0 + self.rnn.bias_hh_l0                        # (H,)
        h = torch.zeros(idx.size(0), self.cfg.hidden, device=idx.device) if h0 is None else h0
        states = []
        for t in range(idx.size(1)):                                         # one step at a time
            h = torch.tanh(x[:, t] @ W_ih.T + h @ W_hh.T + b)                # (B, H)
            states.append(h)
        hs = torch.stack(states, dim=1)                                      # (B, T, H)
        return self.out(hs), hs
