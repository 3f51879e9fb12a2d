"""Argument checks shared by every module: bad input is refused early, with a message that
says what was wrong and what is allowed. Plain Python (no torch), so the data modules use
them too."""
from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Callable

__all__ = ["check_int", "check_number", "check_config", "check_words", "check_token_lists"]


def check_config(cfg, positive: tuple[str, ...] = (), optional_positive: tuple[str, ...] = (),
                 fractions: tuple[str, ...] = (), choices: dict[str, tuple] | None = None) -> None:
    """Validate a config dataclass in its ``__post_init__``: fields in ``positive`` must be
    ints >= 1 (``optional_positive``: None or such an int), ``fractions`` floats in [0, 1)
    (dropout rates), ``choices`` maps a field to its allowed values. Raises ``ValueError``
    (``TypeError`` for a wrong type) naming the config, the field and what is allowed."""
    name = type(cfg).__name__
    for f in positive + optional_positive:
        v = getattr(cfg, f)
        if v is None and f in optional_positive:
            continue
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"{name}.{f} must be an int, got {type(v).__name__} {v!r}")
        if v < 1:
            raise ValueError(f"{name}.{f} must be >= 1, got {v}")
    for f in fractions:
        v = getattr(cfg, f)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v < 1.0:
            raise ValueError(f"{name}.{f} must be a number in [0, 1), got {v!r}")
    for f, allowed in (choices or {}).items():
        if getattr(cfg, f) not in allowed:
            raise ValueError(f"{name}.{f} must be one of {allowed}, got {getattr(cfg, f)!r}")


def check_words(name: str, seq) -> list[str]:
    """A sentence or context as a list of words (strings); a plain string is refused, since it
    would silently become a list of characters."""
    if isinstance(seq, str) or not all(isinstance(w, str) for w in seq):
        raise TypeError(f"{name} must be a list of words (strings), not {type(seq).__name__} {seq!r:.40}; "
                        f"split a string first: s.split() for words, list(s) for characters")
    return list(seq)


def check_token_lists(sentences, what: str = "sentences"):
    """``sentences`` if it is a list (or tuple) of token lists, each token a string; a string
    where a list of tokens is expected raises ``TypeError`` (``["the cat sat"]`` would
    silently become characters: split it first, ``[s.split() for s in ...]``)."""
    if isinstance(sentences, str):
        raise TypeError(f"{what} must be a list of token lists; got a string where a list of tokens is expected: "
                        f"split it (s.split() for words, list(s) for characters)")
    if not isinstance(sentences, (list, tuple)):
        raise TypeError(f"{what} must be a list of token lists, got {type(sentences).__name__}")
    for s in sentences:
        if isinstance(s, str) or not isinstance(s, (list, tuple)):
            raise TypeError(f"{what} must be a list of token lists; got a string where a list of tokens is "
                            f"expected ({str(s)[:40]!r}): split it (s.split() for words, list(s) for characters)")
        for w in s:
            if not isinstance(w, str):
                raise TypeError(f"tokens must be strings, got {type(w).__name__} {w!r} in {what}")
    return sentences


def check_int(name: str, value, low: int = 1) -> int:
    """``value`` if it is an int (never a bool) >= ``low``; else ``TypeError`` / ``ValueError``
    naming ``name``, what it got and what is allowed."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}: {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return int(value)


def check_number(name: str, value, ok: Callable[[float], bool] | None = None, allowed: str = "") -> float:
    """``value`` if it is a real number (never a bool, never NaN) for which ``ok`` holds;
    ``allowed`` says in words what ``ok`` allows (e.g. "in (0, 1]")."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}: {value!r}")
    if math.isnan(value):
        raise ValueError(f"{name} must be {allowed or 'a number'}, got NaN")
    if ok is not None and not ok(value):
        raise ValueError(f"{name} must be {allowed}, got {value}")
    return value
