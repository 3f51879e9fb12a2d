"""Data: the synthetic TinyLang benchmark (no download) and the registry of real corpora."""
from textbook_lm.data import corpora, tinylang

__all__ = ["corpora", "tinylang"]
