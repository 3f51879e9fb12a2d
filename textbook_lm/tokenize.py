"""Tokenizers: characters, words, byte-level BPE (GPT-2 style) and WordPiece (BERT style).

All four share one small interface (:class:`Tokenizer`): ``encode(text) -> list[int]``,
``decode(ids) -> str``, ``tokens(text) -> list[str]`` (the pieces, for display),
``vocab_size``, special tokens, ``save``/``load`` to a human-readable JSON file, and
``save_pretrained``/:func:`from_pretrained` through the hub (the book's shipped tokenizers).

Round-trip guarantees (each is a property test over arbitrary Unicode text):

* :class:`BPETokenizer` works on UTF-8 bytes, so ``decode(encode(s)) == s`` for every string.
* :class:`CharTokenizer`: ``decode(encode(s))`` is ``s`` with every character outside the
  vocabulary replaced by U+FFFD (the Unicode replacement character).
* :class:`WordTokenizer` and :class:`WordPieceTokenizer` split text into words first
  (:func:`split_words`) and do not keep the original spacing: ``decode(encode(s)) ==
  tok.normalize(s)``, where ``normalize`` joins the words with single spaces (none between
  two CJK characters) and replaces unknown words by the unknown token.
* Unknown input never crashes any of them; input of the wrong type (``encode(None)``, ids
  that are not ints) raises ``TypeError``, ids outside the vocabulary ``ValueError``.
"""
from __future__ import annotations

import json
import operator
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

import regex

from textbook_lm import hub
from textbook_lm.checks import check_int
from textbook_lm.bpe import apply_merges, learn_merges, merge_pair
from textbook_lm.pretokenize import GPT2_PATTERN, MAX_PIECE, check_text, join_words, split_words

__all__ = ["Tokenizer", "CharTokenizer", "WordTokenizer", "BPETokenizer", "WordPieceTokenizer",
           "GPT2_PATTERN", "MAX_PIECE", "split_words", "learn_merges", "merge_pair", "load", "from_dict",
           "from_pretrained"]

class Tokenizer:
    """Common interface. Subclasses set ``self.itos`` (id -> token string) and ``self.specials``."""

    kind = "base"

    def __init__(self, specials: Sequence[str] = (), unk: str | None = None):
        if isinstance(specials, str) or not all(isinstance(t, str) and t for t in specials):
            raise TypeError(f"specials must be a list of non-empty strings, e.g. ['<pad>'], got {specials!r}")
        self.specials = ([unk] if unk else []) + [s for s in specials if s != unk]   # the unknown token first
        self.itos: list[str] = []

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def special_id(self, token: str) -> int:
        """Id of a special token such as ``<unk>`` or ``[MASK]``."""
        if token not in self.specials:
            raise KeyError(f"{token!r} is not a special token of this tokenizer; specials: {self.specials}")
        return self.itos.index(token)

    def encode(self, text: str) -> list[int]:
        raise NotImplementedError

    def _split_specials(self, text: str) -> list[tuple[bool, str]]:
        """Cut ``text`` into (is_special, chunk) pieces: special-token strings are matched first."""
        check_text(text)
        if not self.specials:
            return [(False, text)]
        if getattr(self, "_special_re", None) is None:
            self._special_re = regex.compile("(" + "|".join(regex.escape(s) for s in sorted(self.specials, key=len, reverse=True)) + ")")
        return [(k % 2 == 1, chunk) for k, chunk in enumerate(self._special_re.split(text)) if chunk]

    def decode(self, ids: Iterable[int]) -> str:
        raise NotImplementedError

    def tokens(self, text: str) -> list[str]:
        """The pieces ``text`` is cut into, as strings (for display)."""
        return [self.itos[i] for i in self.encode(text)]

    def _check_ids(self, ids: Iterable[int]) -> list[int]:
        """``ids`` as a list of ints in ``[0, vocab_size)`` (numpy and 0-d torch ints allowed)."""
        if isinstance(ids, (str, bytes)):
            raise TypeError("ids must be a sequence of integer token ids, not a string")
        try:
            ids = [operator.index(i) for i in ids]
        except TypeError as err:
            raise TypeError(f"ids must be a sequence of integer token ids: {err}") from None
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:
            raise ValueError(f"token ids must lie in [0, {self.vocab_size}); got {bad[:5]}")
        return ids

    def _state(self) -> dict:
        raise NotImplementedError

    def to_dict(self) -> dict:
        """Everything needed to rebuild the tokenizer, as plain JSON types (:func:`from_dict`)."""
        return {"type": self.kind, "version": 1, "specials": self.specials, **self._state()}

    def save(self, path: str | Path) -> None:
        """Write a human-readable JSON file; :func:`load` reads it back."""
        Path(path).write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")

    def save_pretrained(self, directory: str | Path, info: dict | None = None) -> Path:
        """Save into a hub folder (JSON + manifest with sha256); :func:`from_pretrained` reads it."""
        return hub.save(self, directory, info=info)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size:,})"


# ---------------------------------------------------------------------------- characters
class CharTokenizer(Tokenizer):
    """One token per Unicode character seen in training, plus ``<unk>`` (decoded as U+FFFD)."""

    kind = "char"
    UNK = "<unk>"

    def __init__(self, chars: Iterable[str], specials: Sequence[str] = ()):
        super().__init__(specials, self.UNK)
        chars = set(chars)
        if not all(isinstance(c, str) and len(c) == 1 for c in chars):
            raise ValueError(f"chars must be single characters, got {sorted(map(repr, chars))[:5]}")
        self.itos = self.specials + sorted(chars - set(self.specials))
        self.stoi = {c: i for i, c in enumerate(self.itos)}

    @classmethod
    def train(cls, text: str, specials: Sequence[str] = ()) -> "CharTokenizer":
        return cls(set(check_text(text)), specials)

    def encode(self, text: str) -> list[int]:
        unk = self.stoi[self.UNK]
        return [self.stoi.get(c, unk) for c in check_text(text)]

    def decode(self, ids: Iterable[int]) -> str:
        return "".join("\ufffd" if i == 0 else self.itos[i] for i in self._check_ids(ids))

    def _state(self) -> dict:
        return {"chars": self.itos[len(self.specials):]}


# ---------------------------------------------------------------------------- words
class WordTokenizer(Tokenizer):
    """Whole words (see :func:`split_words`); words outside the vocabulary become ``<unk>``."""

    kind = "word"
    UNK = "<unk>"

    def __init__(self, words: Iterable[str], specials: Sequence[str] = (), lowercase: bool = False):
        super().__init__(specials, self.UNK)
        self.lowercase = lowercase
        self.itos = self.specials + [w for w in dict.fromkeys(words) if w not in self.specials]
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    @classmethod
    def train(cls, text: str, max_vocab: int | None = None, min_count: int = 1, specials: Sequence[str] = (),
              lowercase: bool = False) -> "WordTokenizer":
        """Keep the ``max_vocab`` most frequent words seen at least ``min_count`` times (ties: first seen)."""
        check_int("min_count", min_count, 1)
        if max_vocab is not None:
            check_int("max_vocab", max_vocab, 1)
        counts = Counter(split_words(text, lowercase))
        words = [w for w, c in counts.most_common(max_vocab) if c >= min_count]
        return cls(words, specials, lowercase)

    def encode(self, text: str) -> list[int]:
        unk, out = self.stoi[self.UNK], []
        for special, chunk in self._split_specials(text):
            out.extend([self.stoi[chunk]] if special else
                       [self.stoi.get(w, unk) for w in split_words(chunk, self.lowercase)])
        return out

    def decode(self, ids: Iterable[int]) -> str:
        return join_words([self.itos[i] for i in self._check_ids(ids)])

    def normalize(self, text: str) -> str:
        """What ``decode(encode(text))`` returns: the words, unknown ones as ``<unk>``, re-joined."""
        words = []
        for special, chunk in self._split_specials(text):
            words += [chunk] if special else [w if w in self.stoi else self.UNK
                                              for w in split_words(chunk, self.lowercase)]
        return join_words(words)

    def _state(self) -> dict:
        return {"lowercase": self.lowercase, "words": self.itos[len(self.specials):]}


# ---------------------------------------------------------------------------- byte-level BPE
class BPETokenizer(Tokenizer):
    """Byte-level BPE as in GPT-2: ids 0-255 are bytes, then one id per merge, then specials.

    Text is first cut with :data:`GPT2_PATTERN`, so merges never cross a word/punctuation
    boundary; each piece is encoded to UTF-8 bytes and merged. Any string round-trips.
    Special tokens (e.g. ``<|endoftext|>``) are matched in the text before anything else.
    """

    kind = "bpe"

    def __init__(self, merges: Sequence[tuple[int, int]], specials: Sequence[str] = (), pattern: str = GPT2_PATTERN):
        super().__init__(specials)
        self.merges = [tuple(m) for m in merges]
        for r, m in enumerate(self.merges):   # merge r makes token 256 + r from two earlier tokens
            if len(m) != 2 or not all(isinstance(i, int) and 0 <= i < 256 + r for i in m):
                raise ValueError(f"merge {r} must be a pair of earlier token ids in [0, {256 + r}), got {m}")
        try:
            self.pattern, self._re = pattern, regex.compile(pattern)
        except (regex.error, TypeError) as err:
            raise ValueError(f"pattern is not a valid regular expression: {err}") from None
        self.ranks = {m: r for r, m in enumerate(self.merges)}
        self.bytes_of = [bytes([b]) for b in range(256)]
        for a, b in self.merges:
            self.bytes_of.append(self.bytes_of[a] + self.bytes_of[b])
        first_special = len(self.bytes_of)
        self.special_ids = {s: first_special + k for k, s in enumerate(self.specials)}
        self.itos = [b.decode("utf-8", errors="replace") for b in self.bytes_of] + list(self.specials)
        self._cache: dict[str, list[int]] = {}

    @classmethod
    def train(cls, text: str, vocab_size: int, specials: Sequence[str] = (), min_frequency: int = 2,
              pattern: str = GPT2_PATTERN) -> "BPETokenizer":
        """Learn ``vocab_size - 256 - len(specials)`` merges from ``text`` (fewer if pairs run out)."""
        n_merges = check_int("vocab_size", vocab_size, 0) - 256 - len(specials)
        if n_merges < 0:
            raise ValueError(f"vocab_size must be at least the 256 bytes + {len(specials)} specials, got {vocab_size}")
        check_int("min_frequency", min_frequency, 1)
        tok = cls([], specials, pattern)                 # checks specials and pattern
        text = "".join(" " if special else chunk for special, chunk in tok._split_specials(text))   # no merges
        counts = Counter(tok._pieces(text))                                                         # into specials
        words = [list(w.encode("utf-8", errors="surrogatepass")) for w in counts]
        return cls(learn_merges(words, list(counts.values()), n_merges, 256, min_frequency), specials, pattern)

    def _pieces(self, text: str) -> Iterable[str]:
        """Pre-tokens of ``text``, each cut into chunks of at most :data:`MAX_PIECE` characters."""
        for piece in self._re.findall(text):
            yield from (piece[i:i + MAX_PIECE] for i in range(0, len(piece), MAX_PIECE))

    def _encode_piece(self, piece: str) -> list[int]:
        ids = self._cache.get(piece)
        if ids is None:
            ids = apply_merges(list(piece.encode("utf-8", errors="surrogatepass")), self.ranks, 256)
            if len(self._cache) < 100_000:
                self._cache[piece] = ids
        return ids

    def encode(self, text: str, allow_special: bool = True) -> list[int]:
        """Token ids of ``text``. With ``allow_special=False`` special-token strings are plain text."""
        out: list[int] = []
        for special, chunk in self._split_specials(text) if allow_special else [(False, check_text(text))]:
            if special:
                out.append(self.special_ids[chunk])
            else:
                for piece in self._pieces(chunk):
                    out.extend(self._encode_piece(piece))
        return out

    def decode(self, ids: Iterable[int]) -> str:
        parts = [self.bytes_of[i] if i < len(self.bytes_of) else self.itos[i].encode("utf-8")
                 for i in self._check_ids(ids)]
        return _decode_bytes(b"".join(parts))

    def tokens(self, text: str) -> list[str]:
        """Each token's bytes as text; a token holding part of a UTF-8 character shows as U+FFFD."""
        return [self.itos[i] for i in self.encode(text)]

    def _state(self) -> dict:
        readable = {str(256 + r): self.itos[256 + r] for r in range(len(self.merges))}
        return {"pattern": self.pattern, "merges": [list(m) for m in self.merges], "merged_tokens": readable}


def _decode_bytes(data: bytes) -> str:
    """UTF-8 decode that also restores lone surrogates (which Python strings may hold)."""
    try:
        return data.decode("utf-8", errors="surrogatepass")
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="replace")


# ---------------------------------------------------------------------------- WordPiece
class WordPieceTokenizer(Tokenizer):
    """WordPiece as in BERT: words (see :func:`split_words`) cut greedily into the longest
    pieces in the vocabulary, left to right; pieces inside a word carry the prefix ``##``.
    A word that cannot be cut (a character never seen in training) becomes ``[UNK]``.

    The vocabulary is learned with BPE merges over characters (as Hugging Face's WordPiece
    trainer also does); what makes it WordPiece is the ``##`` marking and the greedy
    longest-match-first encoding, which can cut a word differently from the merges.
    """

    kind = "wordpiece"
    UNK = "[UNK]"

    def __init__(self, vocab: Iterable[str], specials: Sequence[str] = ("[PAD]", "[CLS]", "[SEP]", "[MASK]"),
                 lowercase: bool = True, max_chars: int = 100):
        super().__init__(specials, self.UNK)
        self.lowercase, self.max_chars = lowercase, check_int("max_chars", max_chars, 1)
        self.itos = self.specials + [v for v in dict.fromkeys(vocab) if v not in self.specials]
        self.stoi = {v: i for i, v in enumerate(self.itos)}

    @classmethod
    def train(cls, text: str, vocab_size: int, lowercase: bool = True, min_frequency: int = 2,
              specials: Sequence[str] = ("[PAD]", "[CLS]", "[SEP]", "[MASK]"),
              max_chars: int = 100) -> "WordPieceTokenizer":
        """``vocab_size`` pieces: the text's characters (first and ``##``), specials, ``[UNK]``,
        then BPE merges. Words longer than ``max_chars`` are left out (they encode as ``[UNK]``)."""
        check_int("min_frequency", min_frequency, 1)
        check_int("max_chars", max_chars, 1)
        counts = Counter(w for w in split_words(text, lowercase) if len(w) <= max_chars)
        alphabet = sorted({c for w in counts for c in w[:1]} | {"##" + c for w in counts for c in w[1:]})
        sid = {s: i for i, s in enumerate(alphabet)}
        words = [[sid[w[0]]] + [sid["##" + c] for c in w[1:]] for w in counts]
        n_merges = check_int("vocab_size", vocab_size, 1) - len(alphabet) - len(set(specials) | {cls.UNK})
        if n_merges < 0:
            raise ValueError(f"vocab_size={vocab_size} is smaller than the base alphabet of this text: "
                             f"{len(alphabet)} pieces + {len(set(specials) | {cls.UNK})} specials")
        pieces = list(alphabet)
        for a, b in learn_merges(words, list(counts.values()), n_merges, len(alphabet), min_frequency):
            pieces.append(pieces[a] + pieces[b][2:])
        return cls(pieces, specials, lowercase, max_chars)

    def _cut(self, word: str) -> list[str]:
        if len(word) > self.max_chars:
            return [self.UNK]
        out, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.stoi:
                    break
                end -= 1
            if end == start:
                return [self.UNK]
            out.append(piece)
            start = end
        return out

    def encode(self, text: str) -> list[int]:
        out: list[int] = []
        for special, chunk in self._split_specials(text):
            out.extend([self.stoi[chunk]] if special else
                       [self.stoi[p] for w in split_words(chunk, self.lowercase) for p in self._cut(w)])
        return out

    def decode(self, ids: Iterable[int]) -> str:
        words: list[str] = []
        for i in self._check_ids(ids):
            piece = self.itos[i]
            if piece.startswith("##") and words:
                words[-1] += piece[2:]
            else:
                words.append(piece)
        return join_words(words)

    def normalize(self, text: str) -> str:
        """What ``decode(encode(text))`` returns: words re-joined by single spaces, lowercased if
        the tokenizer lowercases, words that cannot be cut as ``[UNK]``."""
        words = []
        for special, chunk in self._split_specials(text):
            words += [chunk] if special else [w if self._cut(w) != [self.UNK] else self.UNK
                                              for w in split_words(chunk, self.lowercase)]
        return join_words(words)

    def _state(self) -> dict:
        return {"lowercase": self.lowercase, "max_chars": self.max_chars, "vocab": self.itos[len(self.specials):]}


def from_dict(state: dict) -> Tokenizer:
    """Rebuild a tokenizer from :meth:`Tokenizer.to_dict` (the content of its JSON file)."""
    if not isinstance(state, dict):
        raise TypeError(f"a tokenizer state is a dict, got {type(state).__name__}")
    kind, sp = state.get("type"), state.get("specials", [])
    build = {"char": lambda: CharTokenizer(state["chars"], sp),
             "word": lambda: WordTokenizer(state["words"], sp, state["lowercase"]),
             "bpe": lambda: BPETokenizer([tuple(m) for m in state["merges"]], sp, state["pattern"]),
             "wordpiece": lambda: WordPieceTokenizer(state["vocab"], sp, state["lowercase"], state["max_chars"])}
    if kind in build:
        return build[kind]()
    raise ValueError(f"unknown tokenizer type {kind!r}; expected char, word, bpe or wordpiece")


def load(path: str | Path) -> Tokenizer:
    """Read a tokenizer JSON file written by :meth:`Tokenizer.save` (``FileNotFoundError`` if
    there is none, ``ValueError`` if it is not a tokenizer file)."""
    try:
        return from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
    except (json.JSONDecodeError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a tokenizer JSON file ({e})") from None


def from_pretrained(name_or_dir: str | Path) -> Tokenizer:
    """A tokenizer from the hub: one of the book's shipped tokenizers by name (e.g.
    ``"wikitext2-bpe-4k"``), the tokenizer of a shipped model (``"shakespeare-char"``), or a
    folder written by :meth:`Tokenizer.save_pretrained` or ``hub.save``. Checked by sha256."""
    tok = hub.load(name_or_dir).tokenizer
    if tok is None or isinstance(tok, list):
        raise ValueError(f"artefact {str(name_or_dir)!r} holds no tokenizer of this module")
    return tok


hub.register("Tokenizer", Tokenizer, lambda t: (None, t.to_dict()), lambda tensors, data, info: from_dict(data))
