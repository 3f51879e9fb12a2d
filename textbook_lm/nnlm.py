"""Neural language models before attention: a one-layer bigram network, Bengio et al.'s
feed-forward NNLM, and recurrent models (a vanilla RNN written out step by step, and
``nn.RNN``/``nn.LSTM``/``nn.GRU``).

Every model maps token ids ``(B, T)`` to next-token logits ``(B, T, V)``: the logits at
position ``t`` predict token ``t + 1`` from tokens ``0..t`` (for the NNLM, from the last
``context`` of them). Ids outside ``[0, vocab_size)`` raise a ``ValueError``.
"""
from __future__ import annotations

import math
import warnings
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from textbook_lm import hub
from textbook_lm.checks import check_config, check_int, check_token_lists
from textbook_lm.utils import eval_mode

# PyTorch's CPU LSTM with proj_size falls back to its own (correct) kernel and says so on every call.
warnings.filterwarnings("ignore", message="LSTM with projections is not supported with oneDNN")

__all__ = ["BigramNet", "NNLMConfig", "BengioNNLM", "RecurrentConfig", "RecurrentLM", "TiedAdaptiveSoftmax",
           "WordLMConfig", "WordLM", "check_ids", "gradient_norms", "sample", "frequency_vocab", "encode", "stream"]


def check_ids(idx: torch.Tensor, vocab_size: int) -> None:
    """Raise a clear error for token ids outside the vocabulary."""
    if idx.dtype not in (torch.long, torch.int, torch.int32, torch.int64):
        raise TypeError(f"token ids must be an integer tensor, got {idx.dtype}")
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= vocab_size):
        raise ValueError(f"token ids must lie in [0, {vocab_size}); got min {int(idx.min())}, max {int(idx.max())}")


class BigramNet(nn.Module):
    """The smallest neural LM: logits = W @ one_hot(previous token), i.e. a learned V x V table.

    Trained with cross-entropy, its softmax rows estimate p(next | previous): the bigram
    model of Chapter 1, learned by gradient descent instead of counted.
    """

    def __init__(self, vocab_size: int):
        super().__init__()
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 1:
            raise ValueError(f"vocab_size must be an int >= 1, got {vocab_size!r}")
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

    def __post_init__(self):
        check_config(self, positive=("vocab_size", "context", "emb_dim", "hidden"), fractions=("dropout",))
        if self.tie and self.hidden != self.emb_dim:
            raise ValueError(f"weight tying needs hidden == emb_dim, got {self.hidden} and {self.emb_dim}")


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

    def __post_init__(self):
        check_config(self, positive=("vocab_size", "emb_dim", "hidden", "layers"), fractions=("dropout",),
                     choices={"kind": ("rnn", "lstm", "gru")})
        if self.tie and self.hidden != self.emb_dim:
            raise ValueError(f"weight tying needs hidden == emb_dim, got {self.hidden} and {self.emb_dim}")


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


class TiedAdaptiveSoftmax(nn.Module):
    """Exact softmax over a large vocabulary at a fraction of the cost (Grave et al., 2017),
    with the output vectors tied to the input embedding (Press and Wolf, 2017).

    Word ids must be sorted by frequency (0 = most frequent). The *head* scores the
    ``cutoffs[0]`` most frequent words plus one entry per tail cluster; tail cluster ``i``
    holds words ``cutoffs[i] .. cutoffs[i+1]-1`` and scores them with its own projection of
    the hidden state. ``log p(w) = log p_head(w)`` for a head word and
    ``log p_head(cluster) + log p_cluster(w)`` for a tail word: a proper distribution over
    the whole vocabulary, and most tokens never pay for the big tail matrices.
    """

    def __init__(self, emb: nn.Embedding, cutoffs: tuple[int, ...]):
        super().__init__()
        V, d = emb.weight.shape
        self.emb, self.bounds = emb, [0, *cutoffs, V]
        if list(self.bounds) != sorted(set(self.bounds)):
            raise ValueError(f"cutoffs must increase strictly within (0, {V}), got {cutoffs}")
        n_tail = len(self.bounds) - 2
        self.cluster = nn.Linear(d, n_tail)                           # head entries for the tail clusters
        self.head_bias = nn.Parameter(torch.zeros(cutoffs[0]))
        self.proj = nn.ModuleList(nn.Linear(d, d, bias=False) for _ in range(n_tail))
        self.tail_bias = nn.ParameterList(nn.Parameter(torch.zeros(self.bounds[i + 2] - self.bounds[i + 1]))
                                          for i in range(n_tail))

    def _head(self, h: torch.Tensor) -> torch.Tensor:
        """(N, d) -> (N, cutoffs[0] + n_tail) head log-probabilities."""
        logits = torch.cat([F.linear(h, self.emb.weight[: self.bounds[1]], self.head_bias), self.cluster(h)], -1)
        return F.log_softmax(logits, -1)

    def _tail(self, i: int, h: torch.Tensor) -> torch.Tensor:
        lo, hi = self.bounds[i + 1], self.bounds[i + 2]
        return F.log_softmax(F.linear(self.proj[i](h), self.emb.weight[lo:hi], self.tail_bias[i]), -1)

    def log_prob(self, h: torch.Tensor) -> torch.Tensor:
        """Full log-distribution over the vocabulary: (N, d) -> (N, V)."""
        head = self._head(h)
        parts = [head[:, : self.bounds[1]]]
        for i in range(len(self.proj)):
            parts.append(head[:, self.bounds[1] + i: self.bounds[1] + i + 1] + self._tail(i, h))
        return torch.cat(parts, -1)

    def target_log_prob(self, h: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """log p(target) for each row: (N, d), (N,) -> (N,). Tail scores only for tail targets."""
        head = self._head(h)
        out = head.gather(1, target.clamp(max=self.bounds[1] - 1)[:, None]).squeeze(1)
        for i in range(len(self.proj)):
            lo, hi = self.bounds[i + 1], self.bounds[i + 2]
            rows = ((target >= lo) & (target < hi)).nonzero().squeeze(1)
            if len(rows):
                tail = self._tail(i, h[rows]).gather(1, (target[rows] - lo)[:, None]).squeeze(1)
                out = out.index_put((rows,), head[rows, self.bounds[1] + i] + tail)
        return out


@dataclass
class WordLMConfig:
    vocab_size: int
    dim: int = 64                   # embedding size = body output size (tied input/output vectors)
    hidden: int = 256               # LSTM/GRU/RNN cells, or the NNLM's hidden layer
    layers: int = 1
    dropout: float = 0.2
    cutoffs: tuple[int, ...] = (2000, 10000)
    body: str = "lstm"              # "lstm", "gru", "rnn" or "nnlm"
    context: int = 4                # words of context for body="nnlm"

    def __post_init__(self):
        check_config(self, positive=("vocab_size", "dim", "hidden", "layers", "context"), fractions=("dropout",),
                     choices={"body": ("lstm", "gru", "rnn", "nnlm")})
        bounds = [0, *self.cutoffs, self.vocab_size]
        if not self.cutoffs or bounds != sorted(set(bounds)):
            raise ValueError(f"cutoffs must increase strictly within (0, vocab_size={self.vocab_size}), "
                             f"got {self.cutoffs}")


class WordLM(nn.Module):
    """A word-level language model for large vocabularies (WikiText-2): tied embeddings, a
    body (LSTM with its output projected to the embedding size; GRU or vanilla RNN followed
    by a projection; or Bengio's fixed-window NNLM), and a tied adaptive softmax.

    ``forward(idx, state)`` returns full log-probabilities ``(B, T, V)``; training uses the
    cheaper :meth:`loss`, which computes exactly the same negative log-likelihood.
    """

    def __init__(self, cfg: WordLMConfig):
        super().__init__()
        if cfg.body not in ("lstm", "gru", "rnn", "nnlm"):
            raise ValueError(f"body must be 'lstm', 'gru', 'rnn' or 'nnlm', got {cfg.body!r}")
        self.cfg = cfg
        self.emb = nn.Embedding(cfg.vocab_size, cfg.dim)
        nn.init.normal_(self.emb.weight, std=0.05)
        drop = cfg.dropout if cfg.layers > 1 else 0.0
        if cfg.body == "lstm":
            self.rnn = nn.LSTM(cfg.dim, cfg.hidden, num_layers=cfg.layers, batch_first=True, proj_size=cfg.dim,
                               dropout=drop)
        elif cfg.body in ("gru", "rnn"):
            cls = nn.GRU if cfg.body == "gru" else nn.RNN
            self.rnn = cls(cfg.dim, cfg.hidden, num_layers=cfg.layers, batch_first=True, dropout=drop)
            self.proj = nn.Linear(cfg.hidden, cfg.dim)
        else:
            self.pad = nn.Parameter(torch.zeros(cfg.dim))            # stands for words before the start
            self.window = nn.Linear(cfg.context * cfg.dim, cfg.hidden)
            self.proj = nn.Linear(cfg.hidden, cfg.dim)
        self.drop = nn.Dropout(cfg.dropout)
        self.softmax = TiedAdaptiveSoftmax(self.emb, cfg.cutoffs)

    def hidden_states(self, idx: torch.Tensor, state=None):
        check_ids(idx, self.cfg.vocab_size)
        x = self.drop(self.emb(idx))                                  # (B, T, dim)
        if self.cfg.body == "lstm":
            h, state = self.rnn(x, state)                             # (B, T, dim)
        elif self.cfg.body in ("gru", "rnn"):
            h, state = self.rnn(x, state)                             # (B, T, hidden)
            h = self.proj(h)
        else:
            B, T, d = x.shape
            c = self.cfg.context
            padded = torch.cat([self.pad.expand(B, c - 1, d), x], 1)  # (B, T + c - 1, d)
            win = padded.unfold(1, c, 1).transpose(2, 3).reshape(B, T, c * d)   # last c words at each t
            h = self.proj(torch.tanh(self.window(win)))
        return self.drop(h), state

    def forward(self, idx: torch.Tensor, state=None):
        h, state = self.hidden_states(idx, state)
        B, T, d = h.shape
        return self.softmax.log_prob(h.reshape(B * T, d)).view(B, T, -1), state

    def target_logprobs(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """log p(y_t | x_<=t) for every position: (B, T)."""
        h, _ = self.hidden_states(x)
        return self.softmax.target_log_prob(h.reshape(-1, h.size(-1)), y.reshape(-1)).view(y.shape)

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return -self.target_logprobs(x, y).mean()


def gradient_norms(model: "RecurrentLM", idx: torch.Tensor) -> torch.Tensor:
    """How strongly the last prediction depends on each earlier input: the norm of the
    gradient of the final position's log-probability (of the token that follows) with respect
    to the input embedding at every position. idx: (1, T + 1) -> (T,), index k = distance
    T - k from the end. This is what backpropagation through time delivers to each step."""
    if not isinstance(model, RecurrentLM):
        raise TypeError(f"gradient_norms needs a RecurrentLM, got {type(model).__name__}")
    if idx.dim() != 2 or idx.size(0) != 1 or idx.size(1) < 2:
        raise ValueError(f"idx must have shape (1, T + 1) with T >= 1, got {tuple(idx.shape)}")
    check_ids(idx, model.cfg.vocab_size)
    x = model.emb(idx[:, :-1]).detach().requires_grad_(True)          # (1, T, E)
    h, _ = model.rnn(x)
    logp = F.log_softmax(model.out(h[:, -1]), -1)[0, idx[0, -1]]
    (grad,) = torch.autograd.grad(logp, x)
    return grad[0].norm(dim=-1)                                        # (T,)


@torch.no_grad()
def sample(model: nn.Module, vocab: Sequence[str], n: int = 1, temperature: float = 1.0, max_len: int = 40,
           seed: int = 0, eos: str = "<eos>") -> list[list[str]]:
    """Sample ``n`` sequences word by word, each starting after ``eos``, until ``eos`` or ``max_len``.
    Probabilities are reshaped as ``p ** (1 / temperature)``."""
    if not temperature > 0 or not math.isfinite(temperature):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature}")
    check_int("n", n, 1), check_int("max_len", max_len, 1)
    if eos not in vocab:
        raise ValueError(f"the end-of-sequence token {eos!r} is not in the vocabulary")
    g = torch.Generator().manual_seed(seed)
    eos_id = list(vocab).index(eos)
    dev = next(model.parameters()).device
    seqs = torch.full((n, 1), eos_id, dtype=torch.long, device=dev)
    done = torch.zeros(n, dtype=torch.bool, device=dev)
    with eval_mode(model):
        for _ in range(max_len):
            out = model(seqs)
            logits = (out[0] if isinstance(out, tuple) else out)[:, -1].float()
            probs = F.softmax(logits / temperature, -1).cpu()
            nxt = torch.multinomial(probs, 1, generator=g).to(dev)
            nxt[done] = eos_id
            seqs = torch.cat([seqs, nxt], 1)
            done |= nxt[:, 0] == eos_id
            if done.all():
                break
    result = []
    for row in seqs[:, 1:].tolist():
        words = []
        for t in row:
            if t == eos_id:
                break
            words.append(vocab[t])
        result.append(words)
    return result


# ---------------------------------------------------------------------------- word-level data
def frequency_vocab(sentences: Sequence[Sequence[str]], eos: str = "<eos>") -> list[str]:
    """Every word of the training sentences plus ``eos``, most frequent first (ties alphabetical):
    the order :class:`TiedAdaptiveSoftmax` needs."""
    check_token_lists(sentences)
    counts = Counter(w for s in sentences for w in s)
    counts[eos] += len(sentences)
    return [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def encode(sentences: Sequence[Sequence[str]], vocab: Sequence[str], eos: str = "<eos>") -> list[list[int]]:
    """Sentences as id lists (no ``eos``); a word outside ``vocab`` raises ``KeyError``."""
    check_token_lists(sentences)
    index = {w: i for i, w in enumerate(vocab)}
    try:
        return [[index[w] for w in s] for s in sentences]
    except KeyError as err:
        raise KeyError(f"word {err.args[0]!r} is not in the model's vocabulary of {len(vocab):,} words") from None


def stream(sequences: Sequence[Sequence[int]], eos_id: int) -> torch.Tensor:
    """One long id stream: every sequence followed by ``eos_id``."""
    if isinstance(eos_id, bool) or not isinstance(eos_id, int) or eos_id < 0:
        raise ValueError(f"eos_id must be a token id (an int >= 0), got {eos_id!r}")
    return torch.tensor([t for s in sequences for t in (*s, eos_id)], dtype=torch.long)


for _cls, _cfg in ((BengioNNLM, NNLMConfig), (RecurrentLM, RecurrentConfig), (WordLM, WordLMConfig)):
    hub.register_model(_cls, _cfg)
