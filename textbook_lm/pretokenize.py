"""Pre-tokenization: how text is cut into words before a tokenizer sees it.

:func:`split_words` gives the word and WordPiece tokenizers their words: runs of letters or
digits, single punctuation marks, and single CJK characters (Chinese and Japanese are
written without spaces, so each character is a word); :func:`join_words` puts words back
together. :data:`GPT2_PATTERN` is GPT-2's pre-tokenizer for byte-level BPE, whose merges
never cross its boundaries; pieces longer than :data:`MAX_PIECE` characters are cut into
chunks so that BPE's work stays linear in the text, spaces or not.
"""
from __future__ import annotations

from typing import Sequence

import regex

__all__ = ["GPT2_PATTERN", "MAX_PIECE", "check_text", "split_words", "join_words"]

# GPT-2's pre-tokenization: contractions, letters, numbers, other symbols, each with at most
# one leading space, and runs of whitespace. BPE merges never cross these boundaries.
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
_WORD_RE = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]|[^\W\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]+|[^\w\s]")
_CJK_RE = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]")
MAX_PIECE = 32      # BPE pre-tokens longer than this many characters are cut into chunks


def check_text(text: str, name: str = "text") -> str:
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a str, got {type(text).__name__}")
    return text


def split_words(text: str, lowercase: bool = False) -> list[str]:
    """Words, single punctuation marks/symbols, and single CJK characters; whitespace dropped.

    Chinese and Japanese are written without spaces, so each of their characters is a word here.
    """
    check_text(text)
    return _WORD_RE.findall(text.lower() if lowercase else text)


def join_words(words: Sequence[str]) -> str:
    """Join words with single spaces, except between two CJK characters."""
    out: list[str] = []
    for w in words:
        if out and not (_CJK_RE.fullmatch(out[-1][-1:] or "x") and _CJK_RE.fullmatch(w[:1] or "x")):
            out.append(" ")
        out.append(w)
    return "".join(out)
