"""Counting n-grams: the vocabulary and the raw and continuation counts every n-gram model reads.

A sentence ``w1 .. wm`` is read as ``<s> w1 .. wm <eos>`` (see :mod:`textbook_lm.ngram`).
Counting is vectorised with NumPy: an n-gram gets an integer id from the id of its first
``n-1`` words and its last word (``id = rank of prefix_id * |V| + word``), so counting is
sorting integers, and looking an n-gram up is a binary search.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from textbook_lm.checks import check_int, check_token_lists

__all__ = ["BOS", "EOS", "UNK", "Vocab", "NGramCounts", "contexts"]

BOS, EOS, UNK = "<s>", "<eos>", "<unk>"


class Vocab:
    """Word <-> id map. Ids 0, 1, 2 are ``<s>``, ``<eos>``, ``<unk>``; other words follow."""

    def __init__(self, words: Iterable[str]):
        self.itos = [BOS, EOS, UNK] + sorted(set(words) - {BOS, EOS, UNK})
        self.stoi = {w: i for i, w in enumerate(self.itos)}
        self.bos, self.eos, self.unk = 0, 1, 2

    @classmethod
    def from_sentences(cls, sentences: Iterable[Sequence[str]], min_count: int = 1) -> "Vocab":
        check_token_lists(sentences)
        check_int("min_count", min_count, 1)
        counts: dict[str, int] = {}
        for s in sentences:
            for w in s:
                counts[w] = counts.get(w, 0) + 1
        return cls(w for w, c in counts.items() if c >= min_count)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, word: str) -> bool:
        return word in self.stoi

    def id(self, word: str) -> int:
        """The word's id; ``<unk>``'s id for a word outside the vocabulary."""
        return self.stoi.get(word, self.unk)

    def encode(self, sentences: Sequence[Sequence[str]]) -> tuple[np.ndarray, np.ndarray]:
        """Flatten ``<s> w1 .. wm <eos>`` for every sentence. Returns (ids, position in sentence)."""
        ids, pos, get, unk = [], [], self.stoi.get, self.unk
        for s in sentences:
            if BOS in s or EOS in s:
                raise ValueError(f"sentences must not contain the markers {BOS!r} or {EOS!r}; they are added here")
            ids.append(0)
            ids.extend(get(w, unk) for w in s)
            ids.append(1)
            pos.append(len(s) + 2)
        lengths = np.asarray(pos, dtype=np.int64)
        ids = np.asarray(ids, dtype=np.int64)
        starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
        return ids, np.arange(len(ids), dtype=np.int64) - starts


def contexts(ids: np.ndarray, pos: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """For every predicted token (all but ``<s>``): its ``width`` previous ids (``-1`` before ``<s>``)."""
    target = np.nonzero(pos > 0)[0]
    ctx = np.full((len(target), width), -1, dtype=np.int64)
    for d in range(1, width + 1):
        ok = pos[target] - d >= 0
        ctx[ok, width - d] = ids[target[ok] - d]
    return ctx, ids[target]


class NGramCounts:
    """Raw counts of every 1..``max_order``-gram of the sentences, and Kneser-Ney continuation counts.

    Attributes, for each order ``k >= 2`` (index ``k``): ``keys[k]`` sorted n-gram keys
    (``prefix_id * |V| + word``), ``count[k]`` raw counts, ``cont[k]`` the number of distinct
    words seen just before the n-gram (``N1+(. g)``; for n-grams starting with ``<s>``, which
    nothing can precede, the raw count), ``suffix[k]`` the id of the n-gram without its first
    word. Order 1 is dense over the vocabulary (id = word id).
    """

    def __init__(self, sentences: Sequence[Sequence[str]], max_order: int, vocab: Vocab | None = None,
                 min_count: int = 1):
        check_int("n-gram order", max_order, 1)
        check_token_lists(sentences)
        if vocab is None:
            vocab = Vocab.from_sentences(sentences, min_count=min_count)
        if len(sentences) == 0:
            raise ValueError("cannot count n-grams of an empty corpus")
        ids, pos = vocab.encode(sentences)
        self.vocab, self.max_order, V = vocab, max_order, len(vocab)
        self.n_tokens = int((pos > 0).sum())
        self.keys, self.count, self.cont, self.suffix, bos_start = {}, {}, {}, {}, {}
        self.count[1] = np.bincount(ids[pos > 0], minlength=V)
        prev_id = ids.copy()          # id of the (k-1)-gram ending at each position (-1: none)
        for k in range(2, max_order + 1):
            valid = np.nonzero(pos >= k - 1)[0]
            key = prev_id[valid - 1] * V + ids[valid]
            keys, first, inverse, count = np.unique(key, return_index=True, return_inverse=True, return_counts=True)
            new_id = np.full(len(ids), -1, dtype=np.int64)
            new_id[valid] = inverse
            rep = valid[first]       # one position where each n-gram occurs
            self.suffix[k] = prev_id[rep] if k > 2 else ids[rep]
            self.keys[k], self.count[k] = keys, count
            bos_start[k] = pos[rep] == k - 1      # the n-gram begins with <s>
            prev_id = new_id
        # continuation counts: distinct left neighbours = number of (k+1)-grams with suffix g
        for k in range(1, max_order):
            n_k = V if k == 1 else len(self.keys[k])
            cont = np.bincount(self.suffix[k + 1], minlength=n_k)
            if k > 1:
                cont = np.where(bos_start[k], self.count[k], cont)
            self.cont[k] = cont
        self.cont[max_order] = self.count[max_order]

    def size(self, k: int) -> int:
        """Number of distinct k-grams stored (order 1: the vocabulary size)."""
        return len(self.vocab) if k == 1 else len(self.keys[k])

    def prefix(self, k: int) -> np.ndarray:
        """Id of each k-gram's context (its first k-1 words); order 1: all zeros (the empty context)."""
        return np.zeros(len(self.vocab), dtype=np.int64) if k == 1 else self.keys[k] // len(self.vocab)

    def last_word(self, k: int) -> np.ndarray:
        return np.arange(len(self.vocab)) if k == 1 else self.keys[k] % len(self.vocab)

    def lookup(self, k: int, prefix_ids: np.ndarray, words: np.ndarray) -> np.ndarray:
        """Id of each k-gram (context id, word), or -1 where it was never seen (k >= 2)."""
        key = prefix_ids * len(self.vocab) + words
        idx = np.searchsorted(self.keys[k], key)
        idx = np.minimum(idx, len(self.keys[k]) - 1)
        found = (prefix_ids >= 0) & (words >= 0) & (self.keys[k][idx] == key) if len(self.keys[k]) else np.zeros(len(key), bool)
        return np.where(found, idx, -1)

    def _gram_id(self, gram: Sequence[str]) -> int:
        ids = [self.vocab.id(w) for w in gram]
        if not 1 <= len(ids) <= self.max_order:
            raise ValueError(f"n-gram length must be 1..{self.max_order}, got {len(ids)}")
        gid = ids[0]
        for k in range(2, len(ids) + 1):
            gid = int(self.lookup(k, np.asarray([gid]), np.asarray([ids[k - 1]]))[0])
            if gid < 0:
                return -1
        return gid

    def get(self, gram: Sequence[str]) -> int:
        """Raw count of an n-gram given as words (``<s>`` may start it)."""
        gid = self._gram_id(gram)
        return 0 if gid < 0 else int(self.count[len(gram)][gid])

    def continuation(self, gram: Sequence[str]) -> int:
        """N1+(. gram): how many different words precede the n-gram (raw count if it starts with ``<s>``)."""
        if len(gram) >= self.max_order:
            raise ValueError(f"continuation counts need counts of order len(gram) + 1 <= {self.max_order}")
        gid = self._gram_id(gram)
        return 0 if gid < 0 else int(self.cont[len(gram)][gid])

    def count_matrix(self, rows: Sequence[str], cols: Sequence[str]) -> np.ndarray:
        """Bigram counts c(r c) for every row word r and column word c, shape (len(rows), len(cols))."""
        r = np.repeat([self.vocab.id(w) for w in rows], len(cols))
        c = np.tile([self.vocab.id(w) for w in cols], len(rows))
        gid = self.lookup(2, r, c)
        return np.where(gid >= 0, self.count[2][np.maximum(gid, 0)], 0).reshape(len(rows), len(cols))

    def words(self, k: int) -> np.ndarray:
        """The word ids of every stored k-gram, shape (size(k), k)."""
        if k == 1:
            return np.arange(len(self.vocab))[:, None]
        return np.concatenate([self.words(k - 1)[self.prefix(k)], self.last_word(k)[:, None]], axis=1)
