"""textbook_lm: the package behind *Language Models, from Counting to ChatGPT*.

Every chapter of the book imports this package; nothing is pasted into the notebooks.
The core helpers live here; each concept has its own module (``ngram``, ``metrics``, ...).
"""
from __future__ import annotations

from textbook_lm.utils import device, seed, show_source

__version__ = "0.1.0"
__all__ = ["device", "seed", "show_source", "__version__"]
