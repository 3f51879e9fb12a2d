"""Chapter 3's shipped word vectors: skip-gram and GloVe trained on all of WikiText-2.

``python -m textbook_lm.experiments.embeddings train [NAMES] [--out DIR | --into-package]``
(about 7 minutes for both on a 2-core CPU).
"""
from __future__ import annotations

import argparse
import time
from dataclasses import asdict

import numpy as np
import torch

from textbook_lm.data import corpora
from textbook_lm.embeddings import GloVeConfig, SGNSConfig, train_glove, train_sgns
from textbook_lm.experiments import add_output_args, output_dir

__all__ = ["RECIPES", "main"]

RECIPES = {"wikitext2-sgns": ("sgns", SGNSConfig()), "wikitext2-glove": ("glove", GloVeConfig())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m textbook_lm.experiments.embeddings",
                                 description="Train the book's word vectors on WikiText-2 (Chapter 3).")
    ap.add_argument("command", choices=["train"])
    ap.add_argument("names", nargs="*", help=f"some of {sorted(RECIPES)} (default: all)")
    add_output_args(ap)
    args = ap.parse_args(argv)
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    train = corpora.wikitext2("train")
    for name in args.names or list(RECIPES):
        if name not in RECIPES:
            ap.error(f"unknown vectors {name!r}; known: {sorted(RECIPES)}")
        method, cfg = RECIPES[name]
        t0 = time.perf_counter()
        vectors, losses = (train_sgns if method == "sgns" else train_glove)(train, cfg)
        seconds = time.perf_counter() - t0
        vectors.info.update(train_seconds=round(seconds, 1), final_loss=round(float(np.mean(losses[-50:])), 4),
                            config=asdict(cfg), command=f"python -m textbook_lm.experiments.embeddings train {name}")
        path = vectors.save_pretrained(output_dir(args, name))
        print(f"{name}: {len(vectors.words):,} words x {vectors.matrix.shape[1]}, {seconds:.0f} s -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
