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
* Unknown input never crashes any of them.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

import regex

from textbook_lm import hub
from textbook_lm.bpe import apply_merges, learn_merges, merge_pair

__all__ = ["Tokenizer", "CharTokenizer", "WordTokenizer", "BPETokenizer", "WordPieceTokenizer",
           "GPT2_PATTERN", "split_words", "learn_merges", "merge_pair", "load", "from_dict", "from_pretrained"]

# GPT-2's pre-tokenization: contractions, letters, numbers, other symbols, each with at most
# one leading space, and runs of whitespace. BPE merges never cross these boundaries.
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
_WORD_RE = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]|[^\W\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]+|[^\w\s]")
_CJK_RE = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]")


def split_words(text: str, lowercase: bool = False) -> list[str]:
    """Words, single punctuation marks/symbols, and single CJK characters; whitespace dropped.

    Chinese and Japanese are written without spaces, so each of their characters is a word here.
    """
    return _WORD_RE.findall(text.lower() if lowercase else text)


def _join_words(words: Sequence[str]) -> str:
    """Join words with single spaces, except between two CJK characters."""
    out: list[str] = []
    for w in words:
        if out and not (_CJK_RE.fullmatch(out[-1][-1:] or "x") and _CJK_RE.fullmatch(w[:1] or "x")):
            out.append(" ")
        out.append(w)
    return "".join(out)


class Tokenizer:
    """Common interface. Subclasses set ``self.itos`` (id -> token string) and ``self.specials``."""

    kind = "base"

    def __init__(self, specials: Sequence[str] = ()):
        self.specials = list(specials)
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
        ids = [int(i) for i in ids]
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
        super().__init__([self.UNK, *[s for s in specials if s != self.UNK]])
        self.itos = self.specials + sorted(set(chars) - set(self.specials))
        self.stoi = {c: i for i, c in enumerate(self.itos)}

    @classmethod
    def train(cls, text: str, specials: Sequence[str] = ()) -> "CharTokenizer":
        return cls(set(text), specials)

    def encode(self, text: str) -> list[int]:
        unk = self.stoi[self.UNK]
        return [self.stoi.get(c, unk) for c in text]

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
        super().__init__([self.UNK, *[s for s in specials if s != self.UNK]])
        self.lowercase = lowercase
        self.itos = self.specials + [w for w in dict.fromkeys(words) if w not in self.specials]
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    @classmethod
    def train(cls, text: str, max_vocab: int | None = None, min_count: int = 1, specials: Sequence[str] = (),
              lowercase: bool = False) -> "WordTokenizer":
        """Keep the ``max_vocab`` most frequent words seen at least ``min_count`` times (ties: first seen)."""
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
        return _join_words([self.itos[i] for i in self._check_ids(ids)])

    def normalize(self, text: str) -> str:
        """What ``decode(encode(text))`` returns: the words, unknown ones as ``<unk>``, re-joined."""
        words = []
        for special, chunk in self._split_specials(text):
            words += [chunk] if special else [w if w in self.stoi else self.UNK
                                              for w in split_words(chunk, self.lowercase)]
        return _join_words(words)

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
        self.pattern, self._re = pattern, regex.compile(pattern)
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
        n_merges = vocab_size - 256 - len(specials)
        if n_merges < 0:
            raise ValueError(f"vocab_size must be at least 256 + {len(specials)} specials, got {vocab_size}")
        counts = Counter(regex.findall(pattern, _strip_specials(text, specials)))
        words = [list(w.encode("utf-8", errors="surrogatepass")) for w in counts]
        return cls(learn_merges(words, list(counts.values()), n_merges, 256, min_frequency), specials, pattern)

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
        for special, chunk in self._split_specials(text) if allow_special else [(False, text)]:
            if special:
                out.append(self.special_ids[chunk])
            else:
                for piece in self._re.findall(chunk):
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


def _strip_specials(text: str, specials: Sequence[str]) -> str:
    for s in specials:
        text = text.replace(s, " ")
    return text


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
        super().__init__([self.UNK, *[s for s in specials if s != self.UNK]])
        self.lowercase, self.max_chars = lowercase, max_chars
        self.itos = self.specials + [v for v in dict.fromkeys(vocab) if v not in self.specials]
        self.stoi = {v: i for i, v in enumerate(self.itos)}

    @classmethod
    def train(cls, text: str, vocab_size: int, lowercase: bool = True, min_frequency: int = 2,
              specials: Sequence[str] = ("[PAD]", "[CLS]", "[SEP]", "[MASK]")) -> "WordPieceTokenizer":
        counts = Counter(split_words(text, lowercase))
        alphabet = sorted({c for w in counts for c in w[:1]} | {"##" + c for w in counts for c in w[1:]})
        sid = {s: i for i, s in enumerate(alphabet)}
        words = [[sid[w[0]]] + [sid["##" + c] for c in w[1:]] for w in counts]
        n_merges = max(vocab_size - len(alphabet) - len(specials) - 1, 0)
        pieces = list(alphabet)
        for a, b in learn_merges(words, list(counts.values()), n_merges, len(alphabet), min_frequency):
            pieces.append(pieces[a] + pieces[b][2:])
        return cls(pieces, specials, lowercase)

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
        return _join_words(words)

    def normalize(self, text: str) -> str:
        """What ``decode(encode(text))`` returns: words re-joined by single spaces, lowercased if
        the tokenizer lowercases, words that cannot be cut as ``[UNK]``."""
        words = []
        for special, chunk in self._split_specials(text):
            words += [chunk] if special else [w if self._cut(w) != [self.UNK] else self.UNK
                                              for w in split_words(chunk, self.lowercase)]
        return _join_words(words)

    def _state(self) -> dict:
        return {"lowercase": self.lowercase, "max_chars": self.max_chars, "vocab": self.itos[len(self.specials):]}


def from_dict(state: dict) -> Tokenizer:
    """Rebuild a tokenizer from :meth:`Tokenizer.to_dict` (the content of its JSON file)."""
    if not isinstance(state, dict):
        raise TypeError(f"a tokenizer state is a dict, got {type(state).__name__}")
    kind, specials = state.get("type"), state.get("specials", [])
    if kind == "char":
        return CharTokenizer(state["chars"], specials)
    if kind == "word":
        return WordTokenizer(state["words"], specials, state["lowercase"])
    if kind == "bpe":
        return BPETokenizer([tuple(m) for m in state["merges"]], specials, state["pattern"])
    if kind == "wordpiece":
        return WordPieceTokenizer(state["vocab"], specials, state["lowercase"], state["max_chars"])
    raise ValueError(f"unknown tokenizer type {kind!r}; expected char, word, bpe or wordpiece")


def load(path: str | Path) -> Tokenizer:
    """Read a tokenizer JSON file written by :meth:`Tokenizer.save`."""
    try:
        state = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not a tokenizer JSON file ({e})") from None
    try:
        return from_dict(state)
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: {e}") from None


def from_pretrained(name_or_dir: str | Path) -> Tokenizer:
    """A tokenizer from the hub: one of the book's shipped tokenizers by name (e.g.
    ``"wikitext2-bpe-4k"``), the tokenizer of a shipped model (``"shakespeare-char"``), or a
    folder written by :meth:`Tokenizer.save_pretrained` or ``hub.save``. Checked by sha256."""
    tok = hub.load(name_or_dir).tokenizer
    if tok is None or isinstance(tok, list):
        raise ValueError(f"artefact {str(name_or_dir)!r} holds no tokenizer of this module")
    return tok


hub.register("Tokenizer", Tokenizer, lambda t: (None, t.to_dict()), lambda tensors, data, info: from_dict(data))
