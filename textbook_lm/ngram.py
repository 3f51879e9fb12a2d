"""n-gram language models: counts, MLE, add-k, linear interpolation, modified Kneser-Ney.

Conventions (see also :mod:`textbook_lm.metrics`):

* A sentence ``w1 .. wm`` is read as ``<s> w1 .. wm <eos>``: one start marker, never
  predicted, and one end marker, predicted like a word. Contexts never reach across ``<s>``:
  near the start of a sentence the context is shorter (as in SRILM and KenLM).
* Out-of-vocabulary rule: a word that is not in the model's vocabulary (never seen in
  training, or seen fewer than ``min_count`` times) is read as ``<unk>``. ``<unk>`` is
  always in the vocabulary, so no word ever crashes the model; with smoothing its
  probability is never 0.
* Every smoothed model here has one shape, which makes scoring, sampling and ARPA
  export shared code. With ``p_0(w) = 1/|V|`` (uniform over the words that can be
  predicted) and, for orders ``k = 1..n``, ``h`` the last ``k-1`` words::

      p_k(w | h) = alpha_k(h, w) + gamma_k(h) * p_{k-1}(w | h')   if h was seen as a context
      p_k(w | h) = p_{k-1}(w | h')                                 otherwise

  where ``h'`` drops the oldest word of ``h`` and ``alpha_k(h, w) = 0`` for unseen ``h w``.
  Each model only says what ``alpha`` and ``gamma`` are.

Counting (the vocabulary and the n-gram counts the models read) lives in
:mod:`textbook_lm.ngram_counts`; ``Vocab`` and ``NGramCounts`` are re-exported here.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from textbook_lm import metrics
from textbook_lm.arpa import write_arpa
from textbook_lm.ngram_counts import BOS, EOS, UNK, NGramCounts, Vocab, contexts
from textbook_lm.checks import check_int, check_number, check_token_lists, check_words

__all__ = ["BOS", "EOS", "UNK", "Vocab", "NGramCounts", "NGramLM", "MLE", "AddK", "Interpolated",
           "KneserNey", "fit", "ORDER_NAMES"]

ORDER_NAMES = {1: "unigram", 2: "bigram", 3: "trigram", 4: "4-gram", 5: "5-gram"}


def _context_stats(counts: NGramCounts, k: int, a: np.ndarray):
    """Per context of order k: total adjusted count S and the numbers of words with a = 1, 2, >= 3."""
    n_ctx = 1 if k == 1 else counts.size(k - 1)
    pre = counts.prefix(k)
    stat = lambda w: np.bincount(pre, weights=w, minlength=n_ctx)
    return stat(a.astype(float)), stat((a == 1).astype(float)), stat((a == 2).astype(float)), stat((a >= 3).astype(float))


class NGramLM:
    """Base class: the shared recursion, scoring, sampling and ARPA export (see module docstring).

    Subclasses fill ``self.alpha[k]`` (one value per stored k-gram), ``self.gamma[k]`` and
    ``self.seen[k]`` (one value per context, i.e. per stored (k-1)-gram; order 1 has a single
    empty context) for k = 1..order.
    """

    name = "n-gram"

    def __init__(self, counts: NGramCounts, order: int):
        if not isinstance(counts, NGramCounts):
            raise TypeError(f"counts must be NGramCounts (or use ngram.fit), got {type(counts).__name__}")
        if check_int("n-gram order", order, 1) > counts.max_order:
            raise ValueError(f"order {order} needs counts up to order {order}; these go up to {counts.max_order}")
        self.counts, self.order, self.vocab = counts, order, counts.vocab
        self.alpha: dict[int, np.ndarray] = {}
        self.gamma: dict[int, np.ndarray] = {}
        self.seen: dict[int, np.ndarray] = {}

    @property
    def n_predictable(self) -> int:
        """``|V|`` for the uniform floor: every word but ``<s>``."""
        return len(self.vocab) - 1

    @property
    def n_params(self) -> int:
        """Stored numbers: one probability per stored n-gram plus one weight per context."""
        return int(sum(len(self.alpha[k]) + len(self.gamma[k]) for k in range(1, self.order + 1)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(order={self.order}, vocab={len(self.vocab):,}, params={self.n_params:,})"

    # ------------------------------------------------------------- the recursion
    def _prob_ids(self, ctx: np.ndarray, w: np.ndarray) -> np.ndarray:
        """p(w | ctx) for id arrays: ctx (M, width) with -1 for 'no word', w (M,). Returns (M,)."""
        c = self.counts
        p = np.where(w == self.vocab.bos, 0.0, 1.0 / self.n_predictable)
        for k in range(1, self.order + 1):
            ctx_id = self._context_ids(ctx, k)
            seen = np.zeros(len(w), dtype=bool)
            ok = ctx_id >= 0
            seen[ok] = self.seen[k][ctx_id[ok]]
            if k == 1:
                gid = w
            else:
                gid = c.lookup(k, np.where(seen, ctx_id, -1), w)
            alpha = np.where(gid >= 0, self.alpha[k][np.maximum(gid, 0)], 0.0)
            gamma = np.where(seen, self.gamma[k][np.maximum(ctx_id, 0)], 1.0)
            p = np.where(seen, alpha + gamma * p, p)
        return p

    def _context_ids(self, ctx: np.ndarray, k: int) -> np.ndarray:
        """Id of the (k-1)-word context of order k for each row of ctx (-1: never seen)."""
        if k == 1:
            return np.zeros(len(ctx), dtype=np.int64)   # the empty context
        ctx_id = ctx[:, -(k - 1)]
        for j in range(k - 2, 0, -1):                    # extend it one word at a time
            ctx_id = self.counts.lookup(k - j, ctx_id, ctx[:, -j])
        return ctx_id

    def _ids(self, context: Sequence[str]) -> np.ndarray:
        ctx = check_words("context", context)[-(self.order - 1):] if self.order > 1 else []
        if BOS in ctx:                                   # nothing before <s> counts
            ctx = ctx[len(ctx) - ctx[::-1].index(BOS) - 1:]
        ids = [self.vocab.id(x) for x in ctx]
        return np.asarray([-1] * (self.order - 1 - len(ids)) + ids, dtype=np.int64)

    # ------------------------------------------------------------- public API
    def prob(self, word: str, context: Sequence[str] = ()) -> float:
        """p(word | context). ``context`` lists previous words, oldest first; start it with
        ``"<s>"`` for the beginning of a sentence. Unknown words are read as ``<unk>``."""
        if not isinstance(word, str):
            raise TypeError(f"word must be a string, got {type(word).__name__}")
        return float(self._prob_ids(self._ids(context)[None, :], np.asarray([self.vocab.id(word)]))[0])

    def logprob(self, word: str, context: Sequence[str] = ()) -> float:
        """Natural log of :meth:`prob` (``-inf`` for probability 0)."""
        p = self.prob(word, context)
        return math.log(p) if p > 0 else -math.inf

    def distribution(self, context: Sequence[str] = ()) -> np.ndarray:
        """p(w | context) for every word id ``w`` of the vocabulary (``<s>`` gets 0); sums to 1."""
        V = len(self.vocab)
        return self._prob_ids(np.repeat(self._ids(context)[None, :], V, axis=0), np.arange(V))

    def token_logprobs(self, sentences: Sequence[Sequence[str]]) -> np.ndarray:
        """Natural-log probability of every predicted token (words and one ``<eos>`` per sentence)."""
        ids, pos = self.vocab.encode(check_token_lists(sentences, "sentences"))
        ctx, w = contexts(ids, pos, max(self.order - 1, 0))
        with np.errstate(divide="ignore"):
            return np.log(self._prob_ids(ctx, w))

    def sentence_logprob(self, sentence: Sequence[str]) -> float:
        """Natural log-probability of a whole sentence (a list of words), ``<eos>`` included."""
        return float(self.token_logprobs([check_words("sentence", sentence)]).sum())

    def score(self, sentences: Sequence[Sequence[str]]) -> metrics.Score:
        """Total NLL and token count under the book's convention (:mod:`textbook_lm.metrics`)."""
        return metrics.score(self.token_logprobs(sentences))

    def perplexity(self, sentences: Sequence[Sequence[str]]) -> float:
        return self.score(sentences).perplexity

    def sample(self, n: int = 1, seed: int = 0, max_len: int = 40, temperature: float = 1.0,
               prefix: Sequence[str] = ()) -> list[list[str]]:
        """``n`` sentences, sampled word by word until ``<eos>`` or ``max_len`` words.

        ``temperature`` (finite, > 0) reshapes each distribution as ``p ** (1 / T)`` (renormalised).
        """
        for name, v, low in (("n", n, 0), ("seed", seed, 0), ("max_len", max_len, 1)):
            check_int(name, v, low)
        check_number("temperature", temperature, lambda t: 0 < t < math.inf, "a finite number > 0")
        prefix = check_words("prefix", prefix)
        rng = np.random.default_rng(seed)
        out = []
        for _ in range(n):
            words = list(prefix)
            while len(words) < max_len:
                p = self.distribution([BOS] + words)
                if temperature != 1.0:
                    p = p ** (1.0 / temperature)
                w = self.vocab.itos[rng.choice(len(p), p=p / p.sum())]
                if w == EOS:
                    break
                words.append(w)
            out.append(words)
        return out

    def to_arpa(self, path: str) -> None:
        """Write the model in the ARPA back-off format, readable by KenLM and SRILM (:mod:`textbook_lm.arpa`)."""
        write_arpa(self, path)


class MLE(NGramLM):
    """Maximum likelihood: p(w | h) = c(h w) / c(h .). Unseen words in a seen context get 0.

    For a context never seen in training MLE is undefined; here it falls back to the
    longest seen suffix of the context (so a distribution always exists), which makes the
    zero-count problem visible without hiding it.
    """

    name = "MLE"

    def __init__(self, counts: NGramCounts, order: int):
        super().__init__(counts, order)
        for k in range(1, order + 1):
            a = counts.count[k]
            S = _context_stats(counts, k, a)[0]
            self.alpha[k] = a / S[counts.prefix(k)]
            self.gamma[k] = np.zeros_like(S)
            self.seen[k] = S > 0


class AddK(NGramLM):
    """Add-k (Lidstone; add-one = Laplace): p(w | h) = (c(h w) + k) / (c(h .) + k ``|V|``) at the top order."""

    name = "add-k"

    def __init__(self, counts: NGramCounts, order: int, k: float = 1.0):
        super().__init__(counts, order)
        check_number("add-k's k", k, lambda x: 0 < x < math.inf, "a finite number k > 0")
        self.k, V = k, self.n_predictable
        for j in range(1, order + 1):
            a = counts.count[j]
            S = _context_stats(counts, j, a)[0]
            if j < order:   # lower orders pass straight through to the uniform floor
                self.alpha[j], self.gamma[j], self.seen[j] = np.zeros(len(a)), np.ones_like(S), np.zeros(len(S), bool)
            else:
                self.alpha[j] = a / (S[counts.prefix(j)] + k * V)
                self.gamma[j], self.seen[j] = k * V / (S + k * V), np.ones(len(S), bool)


class Interpolated(NGramLM):
    """Linear (Jelinek-Mercer) interpolation: p_k = lam_k p_ML,k + (1 - lam_k) p_{k-1}, one weight per order.

    With ``heldout`` sentences the weights maximise their likelihood (coordinate ascent,
    golden-section search on each weight, which is concave in it); otherwise ``lambdas``.
    Written recursively like this, each ``lam_k`` must lie in [0, 1] and the weights need not
    sum to 1: the flat weights of ``p = sum_k w_k p_ML,k + w_0 / |V|`` are
    ``w_k = lam_k prod_{j>k} (1 - lam_j)``, which are >= 0 and sum to 1 by construction.
    """

    name = "interpolated"

    def __init__(self, counts: NGramCounts, order: int, lambdas: Sequence[float] | None = None,
                 heldout: Sequence[Sequence[str]] | None = None, sweeps: int = 4):
        super().__init__(counts, order)
        self._ml = MLE(counts, order)
        if lambdas is None:
            lambdas = [0.5] * order
        if isinstance(lambdas, str) or len(lambdas) != order:
            raise ValueError(f"need {order} interpolation weights in [0, 1] (one per order), got {lambdas!r}")
        for x in lambdas:
            check_number("an interpolation weight", x, lambda v: 0 <= v <= 1, "in [0, 1]")
        check_int("sweeps", sweeps, 1)
        self.lambdas = list(map(float, lambdas))
        if heldout is not None:
            self._tune(check_token_lists(heldout, "heldout"), sweeps)
        self._set(self.lambdas)

    def _set(self, lambdas):
        for k in range(1, self.order + 1):
            self.alpha[k] = lambdas[k - 1] * self._ml.alpha[k]
            self.gamma[k] = 1.0 - lambdas[k - 1] * (self._ml.seen[k]).astype(float)
            self.seen[k] = self._ml.seen[k]

    def _tune(self, heldout, sweeps: int) -> None:
        ids, pos = self.vocab.encode(heldout)
        ctx, w = contexts(ids, pos, self.order - 1)
        # per order k, for every held-out token: p_ML,k(w | h) and whether h was seen
        ml, seen = [], []
        for k in range(1, self.order + 1):
            ctx_id = self._context_ids(ctx, k)
            s = np.zeros(len(w), bool)
            s[ctx_id >= 0] = self._ml.seen[k][ctx_id[ctx_id >= 0]]
            gid = w if k == 1 else self.counts.lookup(k, np.where(s, ctx_id, -1), w)
            ml.append(np.where(gid >= 0, self._ml.alpha[k][np.maximum(gid, 0)], 0.0))
            seen.append(s)
        uniform = np.where(w == self.vocab.bos, 0.0, 1.0 / self.n_predictable)

        def loglik(lams):
            p = uniform
            for k in range(self.order):
                p = np.where(seen[k], lams[k] * ml[k] + (1 - lams[k]) * p, p)
            return np.log(np.maximum(p, 1e-300)).sum()

        lams, g = list(self.lambdas), (math.sqrt(5) - 1) / 2
        for _ in range(sweeps):
            for k in range(self.order):
                lo, hi = 0.0, 1.0 - 1e-9
                for _ in range(40):
                    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
                    fa = loglik(lams[:k] + [a] + lams[k + 1:])
                    fb = loglik(lams[:k] + [b] + lams[k + 1:])
                    lo, hi = (lo, b) if fa >= fb else (a, hi)
                lams[k] = (lo + hi) / 2
        self.lambdas = lams


class KneserNey(NGramLM):
    """Interpolated modified Kneser-Ney (Chen & Goodman, 1998).

    Top order: raw counts; lower orders: continuation counts N1+(. h w) (how many different
    words precede ``h w``), except n-grams starting with ``<s>``, which keep raw counts.
    Each order has three discounts D1, D2, D3+ from its count-of-counts n1..n4:
    ``Y = n1/(n1 + 2 n2)``, ``D1 = 1 - 2Y n2/n1``, ``D2 = 2 - 3Y n3/n2``, ``D3+ = 3 - 4Y n4/n3``.
    Where a count-of-count is 0 (tiny corpora) the formula is undefined and the discounts
    fall back to 0.5, 1.0, 1.5; each is clipped to [0.01, its count].

    Args:
        discount: ``None`` for modified KN; a number in (0, 1] for one fixed discount at every
            order and count (original interpolated KN, as NLTK implements it). A larger
            discount would take more from a count-1 n-gram than it has, and the
            probabilities would no longer sum to 1.
        unigram_floor: interpolate the unigram level with the uniform distribution (Chen &
            Goodman; every word gets probability > 0). ``False`` gives the plain continuation
            unigram without discount, as NLTK does.
    """

    name = "Kneser-Ney"

    def __init__(self, counts: NGramCounts, order: int, discount: float | None = None,
                 unigram_floor: bool = True):
        super().__init__(counts, order)
        if discount is not None:
            check_number("discount", discount, lambda d: 0 < d <= 1, "in (0, 1] (or None: modified Kneser-Ney)")
        self.discounts: dict[int, tuple[float, float, float]] = {}
        for k in range(1, order + 1):
            a = counts.count[k] if k == order else counts.cont[k]
            if k == 1:
                a = a.copy()
                a[self.vocab.bos] = 0
            D = self._discounts(a) if discount is None else (float(discount),) * 3
            if k == 1 and not unigram_floor:
                D = (0.0, 0.0, 0.0)
            self.discounts[k] = D
            S, N1, N2, N3 = _context_stats(counts, k, a)
            d = np.select([a == 0, a == 1, a == 2], [0.0, D[0], D[1]], D[2])
            with np.errstate(invalid="ignore", divide="ignore"):
                self.alpha[k] = np.maximum(a - d, 0.0) / S[counts.prefix(k)]
                self.gamma[k] = np.where(S > 0, (D[0] * N1 + D[1] * N2 + D[2] * N3) / S, 1.0)
            self.alpha[k] = np.nan_to_num(self.alpha[k])
            self.seen[k] = S > 0

    @staticmethod
    def _discounts(a: np.ndarray) -> tuple[float, float, float]:
        n1, n2, n3, n4 = (float((a == i).sum()) for i in (1, 2, 3, 4))
        if min(n1, n2, n3, n4) == 0:
            return 0.5, 1.0, 1.5
        Y = n1 / (n1 + 2 * n2)
        D = (1 - 2 * Y * n2 / n1, 2 - 3 * Y * n3 / n2, 3 - 4 * Y * n4 / n3)
        return tuple(float(min(max(x, 0.01), i + 1)) for i, x in enumerate(D))


_SMOOTHING = {"mle": MLE, "add-k": AddK, "interpolated": Interpolated, "kn": KneserNey}


def fit(sentences: Sequence[Sequence[str]], order: int, smoothing: str = "kn", min_count: int = 1,
        counts: NGramCounts | None = None, **kwargs) -> NGramLM:
    """Count and fit in one call: ``smoothing`` is one of 'mle', 'add-k', 'interpolated', 'kn'.

    ``sentences`` is a list of sentences, each a list of tokens (words, or characters:
    ``[list(s) for s in lines]``); a string where a list of tokens is expected raises
    ``TypeError``. Pass ``counts`` (of at least this order) to reuse one counting pass for
    many models. Extra keyword arguments go to the model (``k`` for add-k, ``heldout`` or
    ``lambdas`` for interpolation, ``discount`` for Kneser-Ney).
    """
    if smoothing not in _SMOOTHING:
        raise ValueError(f"unknown smoothing {smoothing!r}; choose one of {sorted(_SMOOTHING)}")
    check_int("n-gram order", order, 1)
    check_int("min_count", min_count, 1)
    if counts is None:
        check_token_lists(sentences, "sentences")
        if not sentences or not any(len(s) for s in sentences):
            raise ValueError("cannot fit an n-gram model on an empty corpus")
        counts = NGramCounts(sentences, order, min_count=min_count)
    return _SMOOTHING[smoothing](counts, order, **kwargs)
