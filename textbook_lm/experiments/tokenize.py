"""Chapter 2's shipped tokenizers: their recipes, the training texts, and the command that builds them.

``python -m textbook_lm.experiments.tokenize build [NAMES] [--out DIR | --into-package]``
trains each tokenizer from its recipe (deterministic, about 45 s in all) and saves it
through the hub; ``textbook_lm.tokenize.from_pretrained(name)`` loads the shipped copies.
"""
from __future__ import annotations

import argparse
import time

from textbook_lm import hub
from textbook_lm.data import corpora
from textbook_lm.experiments import add_output_args, output_dir
from textbook_lm.tokenize import BPETokenizer, Tokenizer, WordPieceTokenizer

__all__ = ["RECIPES", "corpus_text", "train", "build"]

RECIPES = {
    "shakespeare-bpe-1k": {"kind": "bpe", "corpus": "tinyshakespeare", "vocab_size": 1257, "specials": ["<|endoftext|>"]},
    "wikitext2-bpe-4k": {"kind": "bpe", "corpus": "wikitext-2", "vocab_size": 4096, "specials": ["<|endoftext|>"]},
    "wikitext2-wordpiece-8k": {"kind": "wordpiece", "corpus": "wikitext-2", "vocab_size": 8000},
    "tang-bpe-4k": {"kind": "bpe", "corpus": "chinese-poetry", "vocab_size": 4096, "specials": ["<|endoftext|>"]},
}


def corpus_text(corpus: str) -> str:
    """A corpus as one training text: Tiny Shakespeare as is, WikiText-2's training lines
    joined by newlines, the Tang poems separated by blank lines."""
    if corpus == "tinyshakespeare":
        return corpora.tiny_shakespeare()
    if corpus == "wikitext-2":
        return "\n".join(" ".join(s) for s in corpora.wikitext2("train"))
    if corpus == "chinese-poetry":
        return "\n\n".join(p["text"] for p in corpora.tang_poems())
    raise KeyError(f"no training text defined for corpus {corpus!r}; known: tinyshakespeare, wikitext-2, "
                   f"chinese-poetry")


def train(name: str) -> Tokenizer:
    """Train the book's tokenizer ``name`` from its recipe (deterministic)."""
    if name not in RECIPES:
        raise KeyError(f"unknown tokenizer recipe {name!r}; known: {sorted(RECIPES)}")
    r = RECIPES[name]
    text = corpus_text(r["corpus"])
    if r["kind"] == "bpe":
        return BPETokenizer.train(text, r["vocab_size"], specials=r.get("specials", ()))
    return WordPieceTokenizer.train(text, r["vocab_size"])


def build(names: list[str], args: argparse.Namespace) -> None:
    for name in names or list(RECIPES):
        t0 = time.perf_counter()
        tok = train(name)
        seconds = time.perf_counter() - t0
        info = {"recipe": RECIPES[name], "train_seconds": round(seconds, 1),
                "command": f"python -m textbook_lm.experiments.tokenize build {name}"}
        path = hub.save(tok, output_dir(args, name), info=info)
        print(f"{name}: {tok!r}, trained in {seconds:.1f} s -> {path}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m textbook_lm.experiments.tokenize",
                                 description="Train the book's tokenizers (Chapter 2).")
    ap.add_argument("command", choices=["build"])
    ap.add_argument("names", nargs="*", help=f"some of {sorted(RECIPES)} (default: all)")
    add_output_args(ap)
    args = ap.parse_args(argv)
    build(args.names, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
