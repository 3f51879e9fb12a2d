"""The book's experiments: how every shipped artefact and stored number was produced.

One module per chapter that trains or measures something: the recipes (model and training
settings), the corpus preparation for the book's runs, the builders of shipped artefacts,
sweeps, ablations, seed studies, the leaderboard entries, and the command-line interfaces,
e.g. ``python -m textbook_lm.experiments.gpt train shakespeare-char --out DIR``.

Experiments import the concept modules (``textbook_lm.gpt``, ``textbook_lm.train``, ...);
concept modules never import experiments. Commands write into ``--out`` (default
``./artefacts``); only ``--into-package`` writes into ``textbook_lm/results/``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from textbook_lm import hub

__all__ = ["add_output_args", "output_dir"]


def add_output_args(ap: argparse.ArgumentParser) -> None:
    """The two options every artefact-building command takes."""
    ap.add_argument("--out", default="artefacts", help="folder to write into (default: ./artefacts)")
    ap.add_argument("--into-package", action="store_true",
                    help=f"write into the package's shipped artefacts ({hub.SHIPPED_DIR}) instead")


def output_dir(args: argparse.Namespace, name: str) -> Path:
    """Where the artefact ``name`` goes: ``<--out>/<name>``, or the package's copy with ``--into-package``."""
    return (hub.SHIPPED_DIR if args.into_package else Path(args.out)) / name
