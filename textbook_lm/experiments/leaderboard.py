"""Recompute the leaderboard's entries from the chapters' experiments.

``python -m textbook_lm.experiments.leaderboard reproduce [ngram nnlm gpt bert icl align distill]`` reruns the
named sources (all by default) and writes the board into ``--out DIR`` (default
``./artefacts/leaderboard``), or into the package's copy with ``--into-package``
(``make leaderboard``). ``... show [BENCHMARK]`` prints the stored tables.
"""
from __future__ import annotations

import argparse
import importlib

from textbook_lm import leaderboard
from textbook_lm.experiments import add_output_args, output_dir

__all__ = ["SOURCES", "reproduce", "main"]

# name -> the experiments module whose leaderboard_entries() produces it; one per chapter that trains models
SOURCES = {"ngram": "textbook_lm.experiments.ngram", "nnlm": "textbook_lm.experiments.nnlm",
           "gpt": "textbook_lm.experiments.gpt", "bert": "textbook_lm.experiments.bert",
           "icl": "textbook_lm.experiments.icl", "align": "textbook_lm.experiments.align",
           "distill": "textbook_lm.experiments.distill"}


def reproduce(sources: list[str] | None = None,
              board: leaderboard.Leaderboard | None = None) -> leaderboard.Leaderboard:
    """Rerun the named sources (all by default) and add their entries to ``board`` (the stored
    leaderboard by default); returns the board, unsaved."""
    unknown = sorted(set(sources or ()) - set(SOURCES))
    if unknown:
        raise KeyError(f"unknown leaderboard sources {unknown}; known: {sorted(SOURCES)}")
    board = board or leaderboard.load()
    for name in sources or list(SOURCES):
        for e in importlib.import_module(SOURCES[name]).leaderboard_entries():
            board.add(e)
            print(f"{e.benchmark:>12} {e.model:<30} {e.cross_entropy:.4f} nats/token  ppl {e.perplexity:.2f}")
    return board


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m textbook_lm.experiments.leaderboard")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("reproduce", help="recompute stored entries")
    r.add_argument("sources", nargs="*", help=f"some of {sorted(SOURCES)} (default: all)")
    add_output_args(r)
    s = sub.add_parser("show", help="print the tables")
    s.add_argument("benchmark", nargs="?")
    args = ap.parse_args(argv)
    if args.cmd == "reproduce":
        path = reproduce(args.sources).save(output_dir(args, leaderboard.NAME))
        print(f"wrote {path}")
    else:
        board = leaderboard.load()
        for b in [args.benchmark] if args.benchmark else sorted({e.benchmark for e in board.entries}):
            for split in sorted({e.split for e in board.entries if e.benchmark == b}) or ["test"]:
                print(board.table(b, split), end="\n\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
