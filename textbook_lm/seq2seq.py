"""Sequence-to-sequence learning: batches of (source, target) pairs, the RNN encoder-decoder
with and without attention, greedy decoding and exact-match accuracy.

Any model with ``encode(src) -> state`` (a tuple) and ``decode(tgt_in, *state) -> logits``
works with :func:`greedy` and :func:`exact_match`: the RNN model here and the
``transformer.Transformer``. Models take ``x = (src, tgt_in)`` and targets ``y`` with -100
at padding, so they train with the book's one loop, ``train.train``.
"""
from __future__ import annotations

import random
from collections import defaultdict

import torch
import torch.nn as nn

from textbook_lm.attention import AdditiveScore, attend_explicit, scaled_dot_scores
from textbook_lm.data.tasks import BOS, EOS, PAD, Task
from textbook_lm.checks import check_int
from textbook_lm.utils import cross_entropy, eval_mode

__all__ = ["PairData", "RNNSeq2Seq", "greedy", "exact_match", "accuracy_by_length"]




def _check_ids(name: str, ids: torch.Tensor, vocab: int) -> None:
    """``ids``: an integer ``(B, T)`` tensor with every id in ``[0, vocab)``."""
    if not isinstance(ids, torch.Tensor) or ids.is_floating_point() or ids.dtype == torch.bool:
        raise TypeError(f"{name} must be an integer tensor of token ids, got "
                        f"{ids.dtype if isinstance(ids, torch.Tensor) else type(ids).__name__}")
    if ids.dim() != 2 or ids.size(1) == 0:
        raise ValueError(f"{name} must have shape (B, T) with T >= 1, got {tuple(ids.shape)}")
    if ids.min() < 0 or ids.max() >= vocab:
        raise ValueError(f"{name} must be token ids in [0, {vocab}), got {ids.min().item()}..{ids.max().item()}")


def _pad(rows: list[list[int]], value: int) -> torch.Tensor:
    width = max(len(r) for r in rows)
    return torch.tensor([r + [value] * (width - len(r)) for r in rows], dtype=torch.long)


class PairData:
    """(source, target) pairs of a :class:`~textbook_lm.data.tasks.Task` as padded batches.

    With ``examples`` (a fixed list, e.g. the test set), ``batch`` draws from it and
    ``windows`` walks through it in order. Without, ``batch`` samples fresh pairs from the
    task (infinite training data), never one whose source is in ``exclude``.
    A batch is ``((src, tgt_in), tgt_out)``: ``src (B, S)`` padded with 0; ``tgt_in (B, T)`` =
    ``<s>`` + target; ``tgt_out (B, T)`` = target + ``</s>``, padded with -100 (ignored by the loss).
    """

    def __init__(self, task: Task, examples: list[tuple[list[str], list[str]]] | None = None,
                 exclude: set | None = None, eval_batch: int = 250):
        if not isinstance(task, Task):
            raise TypeError(f"task must be a data.tasks.Task (e.g. tasks.Reverse()), got {type(task).__name__}")
        if examples is not None and (not isinstance(examples, (list, tuple)) or not examples
                                     or not all(isinstance(e, (list, tuple)) and len(e) == 2 for e in examples)):
            raise ValueError("examples must be a non-empty list of (source, target) pairs, e.g. task.examples(n, seed)")
        self.task, self.examples, self.eval_batch = task, examples, check_int("eval_batch", eval_batch)
        self.exclude = set(exclude or ())

    def collate(self, pairs: list[tuple[list[str], list[str]]]):
        src = _pad([self.task.encode_src(s) for s, _ in pairs], PAD)
        tgt = [self.task.encode_tgt(t) for _, t in pairs]
        return (src, _pad([[BOS] + t for t in tgt], PAD)), _pad([t + [EOS] for t in tgt], -100)

    def batch(self, batch_size: int, seq_len: int | None = None, mode: str = "random",
              generator: torch.Generator | None = None):
        """A random batch (``seq_len`` and ``mode`` are ignored: lengths come from the task)."""
        check_int("batch_size", batch_size)
        seed = int(torch.randint(0, 2 ** 62, (1,), generator=generator))
        rng = random.Random(seed)
        if self.examples is not None:
            return self.collate([rng.choice(self.examples) for _ in range(batch_size)])
        pairs = []
        while len(pairs) < batch_size:
            src, tgt = self.task.sample(rng)
            if tuple(src) not in self.exclude:
                pairs.append((src, tgt))
        return self.collate(pairs)

    def windows(self, seq_len: int | None = None, max_windows: int | None = None):
        """The fixed examples in order, ``eval_batch`` at a time (for deterministic evaluation)."""
        if self.examples is None:
            raise ValueError("windows() needs a fixed list of examples: PairData(task, examples)")
        if max_windows is not None:
            check_int("max_windows", max_windows, 0)
        out = []
        for i in range(0, len(self.examples), self.eval_batch):
            out.append(self.collate(self.examples[i: i + self.eval_batch]))
            if max_windows and len(out) >= max_windows:
                break
        return out


class RNNSeq2Seq(nn.Module):
    """GRU encoder-decoder (Cho et al., 2014; Sutskever et al., 2014), with optional attention.

    Encoder: a bidirectional GRU over the source; its states ``h_1..h_S`` (both directions,
    projected to ``d_hidden``) are the *memory*, and its two final states, projected, are the
    *summary* vector that starts the decoder.

    ``attention=None``: the decoder sees the source only through the summary (fed at every
    step): the whole sentence squeezed into one fixed-size vector, the bottleneck.
    ``attention="additive"`` (Bahdanau et al., 2015) or ``"dot"`` (scaled dot product): at each
    step the previous decoder state scores every memory vector, and the context is their
    softmax-weighted sum. The last weights are kept in ``last_weights (B, T, S)`` for plots.
    """

    def __init__(self, src_vocab: int, tgt_vocab: int, d_emb: int = 64, d_hidden: int = 128,
                 attention: str | None = "additive"):
        super().__init__()
        if attention not in (None, "additive", "dot"):
            raise ValueError(f"attention must be None, 'additive' or 'dot', got {attention!r}")
        for name, v, low in (("src_vocab", src_vocab, EOS + 2), ("tgt_vocab", tgt_vocab, EOS + 2),
                             ("d_emb", d_emb, 1), ("d_hidden", d_hidden, 1)):
            check_int(name, v, low)            # a vocabulary holds <pad>, <s>, </s> and at least one symbol
        H = d_hidden
        self.attention = attention
        self.src_embed = nn.Embedding(src_vocab, d_emb, padding_idx=PAD)
        self.tgt_embed = nn.Embedding(tgt_vocab, d_emb, padding_idx=PAD)
        self.encoder = nn.GRU(d_emb, H, batch_first=True, bidirectional=True)
        self.memory_proj = nn.Linear(2 * H, H)
        self.summary_proj = nn.Linear(2 * H, H)
        self.score = AdditiveScore(H, H, H) if attention == "additive" else None
        self.cell = nn.GRUCell(d_emb + H, H)
        self.head = nn.Linear(2 * H, tgt_vocab)
        self.last_weights: torch.Tensor | None = None

    def encode(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``src (B, S)`` -> memory ``(B, S, H)``, mask ``(B, 1, S)`` (True at real tokens), summary ``(B, H)``.
        Every source needs at least one token that is not padding."""
        _check_ids("src", src, self.src_embed.num_embeddings)
        mask = src != PAD
        if not mask.any(1).all():
            raise ValueError("every source needs at least one non-padding token; got an all-padding row")
        lengths = mask.sum(1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(self.src_embed(src), lengths, batch_first=True,
                                                   enforce_sorted=False)
        out, h_n = self.encoder(packed)                                            # h_n: (2, B, H)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=src.size(1))
        summary = torch.tanh(self.summary_proj(torch.cat([h_n[0], h_n[1]], dim=-1)))
        return self.memory_proj(out), mask[:, None, :], summary

    def decode(self, tgt_in: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor,
               summary: torch.Tensor) -> torch.Tensor:
        """Teacher-forced decoding: ``tgt_in (B, T)`` -> logits ``(B, T, tgt_vocab)``."""
        _check_ids("tgt_in", tgt_in, self.tgt_embed.num_embeddings)
        if tgt_in.size(0) != memory.size(0):
            raise ValueError(f"tgt_in {tuple(tgt_in.shape)} and the encoded source {tuple(memory.shape)} "
                             f"need the same batch size")
        emb = self.tgt_embed(tgt_in)                                               # (B, T, E)
        s, logits, weights = summary, [], []
        for t in range(tgt_in.size(1)):
            if self.attention is None:
                context = summary                                                  # the same vector every step
            else:
                score = self.score if self.score is not None else scaled_dot_scores
                context, w = attend_explicit(s[:, None, :], memory, memory, mask, score=score)
                context = context[:, 0]                                            # (B, H)
                weights.append(w[:, 0])                                            # (B, S)
            s = self.cell(torch.cat([emb[:, t], context], dim=-1), s)              # next decoder state
            logits.append(self.head(torch.cat([s, context], dim=-1)))
        self.last_weights = torch.stack(weights, 1).detach() if weights else None
        return torch.stack(logits, 1)

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        return self.decode(tgt_in, *self.encode(src))

    def loss(self, x: tuple[torch.Tensor, torch.Tensor], y: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy (nats per scored target token; -100 in ``y`` is ignored)."""
        if not isinstance(x, (tuple, list)) or len(x) != 2:
            raise TypeError("x must be the pair (src, tgt_in), as PairData batches give it")
        return cross_entropy(self(*x), y)


@torch.no_grad()
def greedy(model: nn.Module, src: torch.Tensor, max_len: int) -> torch.Tensor:
    """Greedy decoding: ``src (B, S)`` -> ids ``(B, <= max_len + 1)`` starting with ``<s>``.

    Each step re-runs the decoder on the prefix so far and appends the most likely token;
    stops when every sequence has produced ``</s>``. ``max_len`` >= 1.
    """
    if not all(callable(getattr(model, f, None)) for f in ("encode", "decode")) or not isinstance(model, nn.Module):
        raise TypeError(f"greedy needs a seq2seq model with encode() and decode(), got {type(model).__name__}")
    if not isinstance(src, torch.Tensor) or src.dim() != 2:
        raise ValueError(f"src must be a (B, S) tensor of token ids, got {getattr(src, 'shape', type(src).__name__)}")
    check_int("max_len", max_len)
    dev = next(model.parameters()).device
    src = src.to(dev)
    with eval_mode(model):
        state = model.encode(src)
        ys = torch.full((src.size(0), 1), BOS, dtype=torch.long, device=dev)
        done = torch.zeros(src.size(0), dtype=torch.bool, device=dev)
        for _ in range(max_len):
            nxt = model.decode(ys, *state)[:, -1].argmax(-1)
            nxt = nxt.masked_fill(done, PAD)
            ys = torch.cat([ys, nxt[:, None]], dim=1)
            done |= nxt == EOS
            if done.all():
                break
    return ys


def exact_match(model: nn.Module, data: PairData, batch_size: int = 250) -> list[bool]:
    """For each fixed example of ``data`` (a :class:`PairData` with examples): did greedy
    decoding produce exactly the target?"""
    if not isinstance(data, PairData) or data.examples is None:
        raise TypeError("data must be a PairData with a fixed list of examples: PairData(task, examples)")
    check_int("batch_size", batch_size)
    task, hits = data.task, []
    for i in range(0, len(data.examples), batch_size):
        chunk = data.examples[i: i + batch_size]
        (src, _), _ = data.collate(chunk)
        out = greedy(model, src, max(len(t) for _, t in chunk) + 1).tolist()
        hits += [task.decode_tgt(o[1:]) == t and EOS in o for o, (_, t) in zip(out, chunk)]
    return hits


def accuracy_by_length(model: nn.Module, data: PairData) -> dict[int, float]:
    """Exact-match accuracy grouped by source length: ``{length: accuracy}``."""
    groups = defaultdict(list)
    for hit, (src, _) in zip(exact_match(model, data), data.examples):
        groups[len(src)].append(hit)
    return {n: sum(v) / len(v) for n, v in sorted(groups.items())}
