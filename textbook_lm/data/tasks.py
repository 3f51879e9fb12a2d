"""Synthetic sequence-to-sequence tasks: infinite training data, exact answers, no download.

* :class:`Reverse`: a random string of letters, written backwards. Every output token is a
  copy of one input token, so the right alignment is known (the anti-diagonal), and the
  difficulty grows with the length: the bottleneck task of Chapter 5.
* :class:`Numbers`: an English number name to its digits, e.g. ``two million forty
  thousand six hundred eleven -> 2 0 4 0 6 1 1``. The alignment is many-to-many and
  depends on place value (``forty thousand`` needs the zero of ``040``): the harder
  variant of Chapter 6.

Token ids: ``0 = <pad>``, ``1 = <s>`` (start of the target), ``2 = </s>`` (end), then the
task's symbols, in :attr:`Task.src_vocab` and :attr:`Task.tgt_vocab`.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from numbers import Integral

from textbook_lm.checks import check_int

__all__ = ["SPECIALS", "Task", "Reverse", "Numbers", "number_words", "TASKS"]

SPECIALS = ["<pad>", "<s>", "</s>"]
PAD, BOS, EOS = 0, 1, 2




def _symbols(name: str, tokens) -> list:
    if isinstance(tokens, str):
        raise TypeError(f"{name} must be a list of symbols, not a string ({tokens!r:.30}); e.g. list('abc')")
    return list(tokens)


@dataclass
class Task:
    """A generator of (source tokens, target tokens) pairs; subclasses define :meth:`sample`."""

    name: str = "task"
    src_symbols: list[str] = field(default_factory=list)
    tgt_symbols: list[str] = field(default_factory=list)

    @property
    def src_vocab(self) -> list[str]:
        return SPECIALS + self.src_symbols

    @property
    def tgt_vocab(self) -> list[str]:
        return SPECIALS + self.tgt_symbols

    def sample(self, rng: random.Random, size: int | None = None) -> tuple[list[str], list[str]]:
        """One random pair; ``size`` fixes the task's size parameter (a length, a number of digits)."""
        raise NotImplementedError

    def _check_size(self, size: int) -> None:
        """Raise unless ``size`` is a size parameter this task can sample with."""
        check_int("size", size, 1)

    @staticmethod
    def _encode(tokens: list[str], vocab: list[str], side: str, task: str) -> list[int]:
        index = {s: i for i, s in enumerate(vocab)}
        try:
            return [index[t] for t in _symbols("tokens", tokens)]
        except KeyError as e:
            raise ValueError(f"{e.args[0]!r} is not a {side} symbol of task {task!r}") from None

    def encode_src(self, tokens: list[str]) -> list[int]:
        """Source symbols to ids (an unknown symbol raises ``ValueError``)."""
        return self._encode(tokens, self.src_vocab, "source", self.name)

    def encode_tgt(self, tokens: list[str]) -> list[int]:
        """Target symbols to ids (an unknown symbol raises ``ValueError``)."""
        return self._encode(tokens, self.tgt_vocab, "target", self.name)

    def decode_tgt(self, ids: list[int]) -> list[str]:
        """Target ids (in ``[0, len(tgt_vocab))``) back to symbols, stopping at ``</s>``,
        skipping ``<s>`` and padding."""
        out = []
        for i in ids:
            if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < len(self.tgt_vocab):
                raise ValueError(f"target ids must be ints in [0, {len(self.tgt_vocab)}), got {i!r}")
            if i == EOS:
                break
            if i > EOS:
                out.append(self.tgt_vocab[i])
        return out

    def examples(self, n: int, seed: int, exclude: set | None = None,
                 sizes: list[int] | range | None = None) -> list[tuple[list[str], list[str]]]:
        """``n`` distinct examples drawn with ``seed``, none whose source is in ``exclude``;
        with ``sizes`` (a non-empty list of sizes the task allows), the size of each example is
        drawn uniformly from that list."""
        check_int("n", n, 1)
        check_int("seed", seed, 0)
        if sizes is not None:
            sizes = list(sizes)
            if not sizes:
                raise ValueError("sizes is empty: give the sizes to draw from, or None for the task's own")
            for size in sizes:
                self._check_size(size)
        rng, seen, out = random.Random(seed), set(exclude or ()), []
        tries = 0
        while len(out) < n:
            src, tgt = self.sample(rng, rng.choice(sizes) if sizes else None)
            tries += 1
            if tries > 100 * n + 1000:
                raise ValueError(f"task {self.name!r} cannot produce {n} distinct examples")
            if tuple(src) in seen:
                continue
            seen.add(tuple(src))
            out.append((src, tgt))
        return out


@dataclass
class Reverse(Task):
    """Write a random string of ``min_len..max_len`` letters (of ``n_symbols``) backwards."""

    name: str = "reverse"
    min_len: int = 4
    max_len: int = 32
    n_symbols: int = 20

    def __post_init__(self):
        for name in ("min_len", "max_len", "n_symbols"):
            check_int(name, getattr(self, name))
        if not self.min_len <= self.max_len:
            raise ValueError(f"need 1 <= min_len <= max_len, got {self.min_len}, {self.max_len}")
        if not 2 <= self.n_symbols <= 26:
            raise ValueError(f"n_symbols must be between 2 and 26, got {self.n_symbols}")
        self.src_symbols = [chr(ord("a") + i) for i in range(self.n_symbols)]
        self.tgt_symbols = list(self.src_symbols)

    def _check_size(self, size: int) -> None:
        check_int("size (a string length)", size, 1)

    def sample(self, rng: random.Random, size: int | None = None) -> tuple[list[str], list[str]]:
        """A random string (of length ``size`` >= 1 if given) and its reverse."""
        if size is not None:
            self._check_size(size)
        n = size if size is not None else rng.randint(self.min_len, self.max_len)
        src = [rng.choice(self.src_symbols) for _ in range(n)]
        return src, src[::-1]


_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
         "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = [(10 ** 6, "million"), (10 ** 3, "thousand")]


def _below_thousand(n: int) -> list[str]:
    words = []
    if n >= 100:
        words += [_ONES[n // 100], "hundred"]
        n %= 100
    if n >= 20:
        words.append(_TENS[n // 10])
        n %= 10
        if n:
            words.append(_ONES[n])
    elif n:
        words.append(_ONES[n])
    return words


def number_words(n: int) -> list[str]:
    """English name of the int ``0 <= n < 10**9`` as a list of words (``twenty-one`` is two words)."""
    if isinstance(n, bool) or not isinstance(n, Integral):
        raise TypeError(f"number_words needs an int, got {type(n).__name__}: {n!r}")
    if not 0 <= n < 10 ** 9:
        raise ValueError(f"number_words handles 0 <= n < 1,000,000,000, got {n}")
    if n == 0:
        return ["zero"]
    words = []
    for scale, name in _SCALES:
        if n >= scale:
            words += _below_thousand(n // scale) + [name]
            n %= scale
    return words + _below_thousand(n)


@dataclass
class Numbers(Task):
    """English number name -> its digits; the number of digits is uniform on ``1..max_digits``."""

    name: str = "numbers"
    max_digits: int = 9

    def __post_init__(self):
        check_int("max_digits", self.max_digits)
        if not 1 <= self.max_digits <= 9:
            raise ValueError(f"max_digits must be between 1 and 9, got {self.max_digits}")
        self.src_symbols = _ONES + _TENS[2:] + ["hundred", "thousand", "million"]
        self.tgt_symbols = list("0123456789")

    def _check_size(self, size: int) -> None:
        if not 1 <= check_int("size (a number of digits)", size) <= 9:
            raise ValueError(f"size (a number of digits) must be between 1 and 9, got {size}")

    def sample(self, rng: random.Random, size: int | None = None) -> tuple[list[str], list[str]]:
        """A random number (of ``size`` digits, 1 to 9, if given) as words and digits."""
        if size is not None:
            self._check_size(size)
        d = size if size is not None else rng.randint(1, self.max_digits)
        n = rng.randint(0 if d == 1 else 10 ** (d - 1), 10 ** d - 1)
        return number_words(n), list(str(n))


TASKS = {"reverse": Reverse, "numbers": Numbers}
