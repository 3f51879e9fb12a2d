"""Byte-pair encoding on integer symbols: learning merges, and applying them.

BPE (Sennrich et al., 2016, after Gage, 1994) starts from single symbols (bytes, for the
byte-level tokenizers of :mod:`textbook_lm.tokenize`) and repeatedly merges the most frequent
adjacent pair into a new symbol. :func:`learn_merges` learns the merges from words with
frequencies; :func:`apply_merges` encodes one word with them; :func:`merge_pair` is one step.
:func:`merge_scores` compares BPE's choice of merge with WordPiece's (for teaching, small corpora).
"""
from __future__ import annotations

import heapq
import math
from collections import Counter, defaultdict
from typing import Sequence

__all__ = ["learn_merges", "merge_pair", "apply_merges", "merge_scores"]


def learn_merges(words: Sequence[Sequence[int]], freqs: Sequence[int], n_merges: int, next_id: int,
                 min_frequency: int = 2, trace: list | None = None) -> list[tuple[int, int]]:
    """Learn up to ``n_merges`` BPE merges over symbol sequences (each with a frequency).

    At each step the most frequent adjacent pair is merged into a new symbol ``next_id``,
    ``next_id + 1``, ...; ties are broken by the smallest pair ``(a, b)`` (compared as ids).
    Occurrences are merged left to right without overlap ("a a a" -> "aa a"). Stops early
    when no pair occurs ``min_frequency`` times.

    Fast: instead of recounting every pair after every merge, only the words that contain
    the merged pair are touched, and a heap with lazy deletion finds the next best pair.
    Pass a list as ``trace`` to receive ``(pair, count)`` for every merge, in order.
    """
    words = [list(w) for w in words]
    counts: dict[tuple[int, int], int] = defaultdict(int)
    where: dict[tuple[int, int], set[int]] = defaultdict(set)   # superset: stale entries are skipped
    for i, (w, f) in enumerate(zip(words, freqs)):
        for pair in zip(w, w[1:]):
            counts[pair] += f
            where[pair].add(i)
    heap = [(-c, p) for p, c in counts.items()]
    heapq.heapify(heap)
    merges: list[tuple[int, int]] = []
    while len(merges) < n_merges and heap:
        neg, pair = heapq.heappop(heap)
        if counts.get(pair, 0) != -neg:          # stale entry: the count has changed since
            continue
        if -neg < min_frequency:
            break
        new = next_id + len(merges)
        merges.append(pair)
        if trace is not None:
            trace.append((pair, -neg))
        touched: set[tuple[int, int]] = set()
        for i in list(where.pop(pair, ())):
            w, f = words[i], freqs[i]
            if len(w) < 2:
                continue
            for p in zip(w, w[1:]):              # remove the word's old pairs ...
                counts[p] -= f
                touched.add(p)
            words[i] = w = merge_pair(w, pair, new)
            for p in zip(w, w[1:]):              # ... and add its new ones
                counts[p] += f
                where[p].add(i)
                touched.add(p)
        counts.pop(pair, None)
        for p in touched:
            c = counts.get(p, 0)
            if c > 0:
                heapq.heappush(heap, (-c, p))
            else:
                counts.pop(p, None)
    return merges


def merge_pair(word: list[int], pair: tuple[int, int], new: int) -> list[int]:
    """Replace every non-overlapping occurrence of ``pair`` (left to right) by ``new``."""
    out, i, a, b = [], 0, pair[0], pair[1]
    while i < len(word):
        if i + 1 < len(word) and word[i] == a and word[i + 1] == b:
            out.append(new)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return out


def apply_merges(symbols: list[int], ranks: dict[tuple[int, int], int], first_id: int) -> list[int]:
    """Encode one pre-token: repeatedly merge the adjacent pair that was learned first."""
    while len(symbols) > 1:
        pair = min(zip(symbols, symbols[1:]), key=lambda p: ranks.get(p, 1 << 60))
        if pair not in ranks:
            break
        symbols = merge_pair(symbols, pair, first_id + ranks[pair])
    return symbols


def merge_scores(words: Sequence[Sequence[int]], freqs: Sequence[int]) -> dict[tuple[int, int], tuple[int, float, float]]:
    """Three ways to rank the candidate merges of one training step: ``{(a, b): (count, score, gain)}``.

    * ``count``: occurrences of the adjacent pair, weighted by word frequency (BPE takes the largest);
    * ``score``: ``count(ab) / (count(a) * count(b))``, with ``count(a)`` the occurrences of the
      symbol ``a``: WordPiece's criterion as Hugging Face reconstructs it (Google never published
      its trainer);
    * ``gain``: how much merging the pair raises the log-likelihood (in nats) of the training
      data under a unigram model of the symbols with maximum-likelihood probabilities: the
      WordPiece papers' criterion taken literally.

    Example: ``merge_scores([[0, 1, 0, 1]], [1])`` has ``(0, 1): (2, 0.5, ...)`` and
    ``(1, 0): (1, 0.25, ...)``. Slow (re-counts the corpus for every pair): for toy corpora.
    """
    words = [list(w) for w in words]
    if len(words) != len(freqs):
        raise ValueError(f"need one frequency per word, got {len(words)} words and {len(freqs)} frequencies")

    def counts(ws: list[list[int]]) -> tuple[Counter, Counter]:
        pairs, symbols = Counter(), Counter()
        for w, f in zip(ws, freqs):
            for s in w:
                symbols[s] += f
            for p in zip(w, w[1:]):
                pairs[p] += f
        return pairs, symbols

    def loglik(symbols: Counter) -> float:
        n = sum(symbols.values())
        return sum(c * math.log(c / n) for c in symbols.values() if c > 0)

    pairs, symbols = counts(words)
    base, new = loglik(symbols), 1 + max((s for w in words for s in w), default=0)
    out = {}
    for (a, b), c in pairs.items():
        merged = counts([merge_pair(w, (a, b), new) for w in words])[1]
        out[(a, b)] = (c, c / (symbols[a] * symbols[b]), loglik(merged) - base)
    return out
