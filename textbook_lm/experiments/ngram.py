"""Chapter 1's leaderboard entries: Kneser-Ney n-grams of order 1..5 on TinyLang and WikiText-2.

Reproduce with ``python -m textbook_lm.experiments.leaderboard reproduce ngram`` (about 30 s).
"""
from __future__ import annotations

import time

from textbook_lm import metrics
from textbook_lm.data import corpora, tinylang
from textbook_lm.leaderboard import Entry
from textbook_lm.ngram import ORDER_NAMES, KneserNey, NGramCounts

__all__ = ["leaderboard_entries"]

COMMAND = "python -m textbook_lm.experiments.leaderboard reproduce ngram"


# At order 1 there is no lower order whose continuation counts Kneser-Ney could use: the model
# is the maximum-likelihood unigram with its counts discounted and the mass moved to a uniform
# floor. Naming it "unigram Kneser-Ney" would claim what it is not.
NOTES = ("unigram counts, absolutely discounted, interpolated with the uniform distribution",
         "interpolated modified Kneser-Ney")


def model_name(order: int) -> str:
    """The leaderboard's name for the order-``order`` model of this chapter."""
    return "unigram (MLE + floor)" if order == 1 else f"{ORDER_NAMES[order]} Kneser-Ney"


def leaderboard_entries(max_order: int = 5) -> list[Entry]:
    """The TinyLang entropy floor, then one entry per (benchmark, order)."""
    tl = tinylang.benchmark()
    entries = [Entry("TinyLang grammar (entropy floor)", "tinylang", "test", -sum(tl.test_logprob),
                     metrics.count_tokens(tl.test), 0, 0.0, 1, COMMAND, kind="floor",
                     note="exact log-probabilities from the generating grammar")]
    data = [("tinylang", tl.train, tl.test), ("wikitext-2", corpora.wikitext2("train"), corpora.wikitext2("test"))]
    for bench, train, test in data:
        for n in range(1, max_order + 1):
            t0 = time.perf_counter()
            model = KneserNey(NGramCounts(train, n), n)
            elapsed = time.perf_counter() - t0
            s = model.score(test)
            entries.append(Entry(model_name(n), bench, "test", s.nll, s.n_tokens, model.n_params,
                                 round(elapsed, 2), 1, COMMAND, note=NOTES[n > 1]))
    return entries
