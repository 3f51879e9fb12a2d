"""One scoring convention for every language model in the book.

The convention (used by every chapter, so every number in the leaderboard is comparable):

* A corpus is a list of sequences (sentences, lines, poems, or one long character stream).
* A model predicts every token of a sequence and then one end marker (``<eos>``), each
  from the tokens before it in the same sequence. The start marker ``<s>`` is context
  only and is never predicted. So ``n_tokens = sum(len(seq) + 1)``.
* For a character-level stream with no sequences, the model predicts every character
  (there is no ``<eos>``); :func:`score` takes ``add_eos=False`` for that.
* Cross-entropy is in **nats per token** (natural log); perplexity is ``exp`` of it; bits
  per token (or per character, for character models) is cross-entropy / ln 2.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

__all__ = ["Score", "score", "cross_entropy", "perplexity", "bits", "count_tokens", "pair_accuracy", "agreement_accuracy", "distinct_n"]

LN2 = math.log(2.0)


@dataclass(frozen=True)
class Score:
    """Total negative log-likelihood (nats) of ``n_tokens`` predicted tokens."""

    nll: float
    n_tokens: int

    @property
    def cross_entropy(self) -> float:
        """Nats per token."""
        return self.nll / self.n_tokens

    @property
    def perplexity(self) -> float:
        return math.exp(self.cross_entropy) if math.isfinite(self.cross_entropy) else math.inf

    @property
    def bits_per_token(self) -> float:
        return self.cross_entropy / LN2

    def __add__(self, other: "Score") -> "Score":
        return Score(self.nll + other.nll, self.n_tokens + other.n_tokens)

    def __str__(self) -> str:
        return (f"{self.n_tokens:,} tokens: {self.cross_entropy:.4f} nats/token, "
                f"{self.bits_per_token:.4f} bits/token, perplexity {self.perplexity:.2f}")


def count_tokens(sequences: Iterable[Sequence], add_eos: bool = True) -> int:
    """Number of predicted tokens under the book's convention."""
    return sum(len(s) + (1 if add_eos else 0) for s in sequences)


def score(token_logprobs: Iterable[float] | np.ndarray) -> Score:
    """Score from the natural-log probabilities of every predicted token (``<eos>`` included)."""
    lp = np.asarray(list(token_logprobs) if not isinstance(token_logprobs, np.ndarray) else token_logprobs,
                    dtype=np.float64)
    if lp.ndim != 1 or lp.size == 0:
        raise ValueError("need a non-empty 1-D array of per-token log-probabilities")
    if np.any(lp > 1e-9):
        raise ValueError("log-probabilities must be <= 0 (did you pass probabilities or negative logs?)")
    return Score(float(-lp.sum()), int(lp.size))


def cross_entropy(token_logprobs) -> float:
    """Nats per token, from natural-log token probabilities."""
    return score(token_logprobs).cross_entropy


def perplexity(token_logprobs) -> float:
    """``exp(cross-entropy)``: the effective number of equally likely choices per token."""
    return score(token_logprobs).perplexity


def bits(nats: float) -> float:
    """Convert nats to bits."""
    return nats / LN2


def pair_accuracy(good_logprobs, bad_logprobs) -> float:
    """Share of minimal pairs whose grammatical member has the higher log-probability, from
    the two members' log-probabilities (arrays of equal length). Ties count as half right, so
    a model that cannot tell the two apart scores 0.5."""
    g, b = np.asarray(good_logprobs, dtype=np.float64), np.asarray(bad_logprobs, dtype=np.float64)
    if g.shape != b.shape or g.size == 0:
        raise ValueError("need two non-empty arrays of the same length")
    return float(np.mean((g > b) + 0.5 * (g == b)))


def agreement_accuracy(sentence_logprob, pairs) -> float:
    """:func:`pair_accuracy` of minimal pairs, scoring each sentence with ``sentence_logprob``.

    ``sentence_logprob`` maps a list of words to a log-probability; ``pairs`` have ``.good``
    and ``.bad`` word lists (see :meth:`textbook_lm.data.tinylang.TinyLang.minimal_pairs`).
    """
    pairs = list(pairs)
    if not pairs:
        raise ValueError("no minimal pairs given")
    return pair_accuracy([sentence_logprob(p.good) for p in pairs], [sentence_logprob(p.bad) for p in pairs])


def distinct_n(texts, n: int = 2) -> float:
    """Diversity of generated text (Li et al., 2016): distinct word n-grams / all word n-grams,
    over every text in ``texts`` (words split on whitespace). 1.0 = no n-gram repeats."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    grams = [tuple(w[i:i + n]) for w in (t.split() for t in texts) for i in range(len(w) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0
