"""textbook_lm: the package behind *Language Models, from Counting to ChatGPT*.

Every chapter of the book imports this package; nothing is pasted into the notebooks.
Concept modules (``ngram``, ``tokenize``, ``gpt``, ...) hold what a chapter teaches;
``textbook_lm.experiments`` holds how the book produced its numbers and shipped files;
``textbook_lm.hub`` saves and loads every artefact. The core helpers live here.
"""
from __future__ import annotations

from textbook_lm.utils import count_params, device, seed, show_source

__version__ = "0.1.0"
__all__ = ["device", "seed", "show_source", "count_params", "__version__"]
