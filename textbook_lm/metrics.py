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
from numbers import Integral, Real
from typing import Callable, Iterable, Sequence

import numpy as np

from textbook_lm.checks import check_int, check_number

__all__ = ["Score", "score", "cross_entropy", "perplexity", "bits", "count_tokens", "pair_accuracy", "agreement_accuracy", "distinct_n"]

LN2 = math.log(2.0)


def _not_a_string(name: str, x) -> None:
    if isinstance(x, (str, bytes)):
        raise TypeError(f"{name} must be a sequence, not a string ({x[:20]!r}...)")


def _floats(name: str, values) -> np.ndarray:
    """``values`` as a 1-D float64 array: non-empty, numbers only, no NaN."""
    _not_a_string(name, values)
    try:
        a = np.asarray(values if isinstance(values, np.ndarray) else list(values), dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a 1-D sequence of numbers: {err}") from None
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence of numbers, got shape {a.shape}")
    if np.isnan(a).any():
        raise ValueError(f"{name} contains {int(np.isnan(a).sum())} NaN value(s) (at index "
                         f"{int(np.flatnonzero(np.isnan(a))[0])})")
    return a


@dataclass(frozen=True)
class Score:
    """Total negative log-likelihood (nats, >= 0, may be inf) of ``n_tokens`` (>= 1) predicted tokens."""

    nll: float
    n_tokens: int

    def __post_init__(self):
        if isinstance(self.nll, bool) or not isinstance(self.nll, Real) or math.isnan(self.nll) or self.nll < -1e-9:
            raise ValueError(f"nll must be a number >= 0 (nats), got {self.nll!r}")
        if isinstance(self.n_tokens, bool) or not isinstance(self.n_tokens, Integral) or self.n_tokens < 1:
            raise ValueError(f"n_tokens must be an int >= 1, got {self.n_tokens!r}")

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
        if not isinstance(other, Score):
            return NotImplemented
        return Score(self.nll + other.nll, self.n_tokens + other.n_tokens)

    def __str__(self) -> str:
        return (f"{self.n_tokens:,} tokens: {self.cross_entropy:.4f} nats/token, "
                f"{self.bits_per_token:.4f} bits/token, perplexity {self.perplexity:.2f}")


def count_tokens(sequences: Iterable[Sequence], add_eos: bool = True) -> int:
    """Number of predicted tokens under the book's convention: ``sequences`` is a list of
    sequences (lists of tokens, or strings for character models); a bare string is refused."""
    _not_a_string("sequences", sequences)
    return sum(len(s) + (1 if add_eos else 0) for s in sequences)


def score(token_logprobs: Iterable[float] | np.ndarray) -> Score:
    """Score from the natural-log probabilities of every predicted token (``<eos>`` included):
    a non-empty 1-D sequence of numbers <= 0 (``-inf`` allowed: a token the model ruled out; NaN not)."""
    lp = _floats("token_logprobs", token_logprobs)
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
    return check_number("nats", nats) / LN2


def pair_accuracy(good_logprobs, bad_logprobs) -> float:
    """Share of minimal pairs whose grammatical member has the higher log-probability, from
    the two members' log-probabilities (arrays of equal length). Ties count as half right, so
    a model that cannot tell the two apart scores 0.5. NaN log-probabilities are refused."""
    g, b = _floats("good_logprobs", good_logprobs), _floats("bad_logprobs", bad_logprobs)
    if g.shape != b.shape:
        raise ValueError(f"need as many good as bad log-probabilities, got {g.size} and {b.size}")
    return float(np.mean((g > b) + 0.5 * (g == b)))


def agreement_accuracy(sentence_logprob: Callable[[list[str]], float], pairs) -> float:
    """:func:`pair_accuracy` of minimal pairs, scoring each sentence with ``sentence_logprob``.

    ``sentence_logprob`` maps a list of words to a log-probability; ``pairs`` have ``.good``
    and ``.bad`` word lists (see :meth:`textbook_lm.data.tinylang.TinyLang.minimal_pairs`).
    """
    if not callable(sentence_logprob):
        raise TypeError(f"sentence_logprob must be a function of a word list, got {type(sentence_logprob).__name__}")
    pairs = list(pairs)
    if not pairs:
        raise ValueError("no minimal pairs given")
    return pair_accuracy([sentence_logprob(p.good) for p in pairs], [sentence_logprob(p.bad) for p in pairs])


def distinct_n(texts, n: int = 2) -> float:
    """Diversity of generated text (Li et al., 2016): distinct word n-grams / all word n-grams,
    over every text in ``texts`` (a non-empty list of strings; words split on whitespace).
    1.0 = no n-gram repeats; 0.0 when no text has ``n`` words."""
    check_int("n", n, 1)
    _not_a_string("texts", texts)
    texts = list(texts)
    if not texts:
        raise ValueError("texts is empty: there is nothing to measure")
    if not all(isinstance(t, str) for t in texts):
        raise TypeError("texts must be strings (generated text, not token lists)")
    grams = [tuple(w[i:i + n]) for w in (t.split() for t in texts) for i in range(len(w) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0
