"""The book's running leaderboard: every language model, scored the same way, in one table.

Entries are a stored result shipped with the package (the hub artefact ``leaderboard``), so a
chapter shows earlier chapters' models without re-running them. Each entry names the
command that reproduces it; the chapters' experiments produce them
(``python -m textbook_lm.experiments.leaderboard reproduce [SOURCES]``).

Scores follow :mod:`textbook_lm.metrics`: total NLL in nats over ``n_tokens`` predicted
tokens (``<eos>`` included). Published figures ("anchors") are printed beside ours; they
come from other data or other setups where noted, so read them as landmarks, not rivals.
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from textbook_lm import hub

__all__ = ["Entry", "Anchor", "ANCHORS", "Leaderboard", "load", "NAME"]

NAME = "leaderboard"            # the shipped artefact


@dataclass
class Entry:
    model: str
    benchmark: str          # "tinylang", "wikitext-2", "tinyshakespeare", ...
    split: str              # "test" unless noted
    nll: float              # total negative log-likelihood, nats
    n_tokens: int           # predicted tokens (<eos> included)
    params: int             # stored numbers (weights, or n-gram probabilities)
    train_time_s: float     # on the machine that produced the entry
    chapter: int
    command: str            # reproduces this entry
    kind: str = "model"     # "model" or "floor" (the true distribution, for synthetic data)
    note: str = ""

    def __post_init__(self):
        if isinstance(self.n_tokens, bool) or not isinstance(self.n_tokens, int) or self.n_tokens < 1:
            raise ValueError(f"n_tokens must be an int >= 1, got {self.n_tokens!r}")
        if not math.isfinite(self.nll) or self.nll < 0:
            raise ValueError(f"nll must be a finite total >= 0 nats, got {self.nll}")
        if self.kind not in ("model", "floor"):
            raise ValueError(f"kind must be 'model' or 'floor', got {self.kind!r}")

    @property
    def cross_entropy(self) -> float:
        """Nats per token."""
        return self.nll / self.n_tokens

    @property
    def perplexity(self) -> float:
        return math.exp(self.cross_entropy)

    @property
    def bits_per_token(self) -> float:
        return self.cross_entropy / math.log(2)


@dataclass(frozen=True)
class Anchor:
    benchmark: str
    model: str
    perplexity: float
    source: str
    note: str = ""


ANCHORS = [
    Anchor("ptb", "Kneser-Ney 5-gram", 141.2, "Mikolov et al. 2011 (Empirical evaluation and combination of advanced LM techniques)"),
    Anchor("ptb", "feed-forward NNLM", 140.2, "Mikolov et al. 2011"),
    Anchor("ptb", "RNN-LM", 124.7, "Mikolov et al. 2011"),
    Anchor("ptb", "LSTM (large)", 78.4, "Zaremba et al. 2014"),
    Anchor("ptb", "AWD-LSTM", 57.3, "Merity et al. 2018"),
    Anchor("ptb", "GPT-2 1.5B (zero-shot)", 35.76, "Radford et al. 2019"),
    Anchor("wikitext-2", "LSTM", 99.3, "Grave et al. 2017 (Improving neural LMs with a continuous cache)"),
    Anchor("wikitext-2", "AWD-LSTM", 65.8, "Merity et al. 2018"),
    Anchor("wikitext-2", "GPT-2 1.5B (zero-shot)", 18.34, "Radford et al. 2019"),
    Anchor("tinyshakespeare-char", "nanoGPT 4x128 CPU recipe", round(math.exp(1.88), 2), "nanoGPT README (Karpathy)",
           "loss 1.88 nats/char, a 20-batch estimate"),
    Anchor("tinyshakespeare-char", "nanoGPT 6x384 (one A100, ~3 min)", round(math.exp(1.4697), 2),
           "nanoGPT README (Karpathy)", "validation loss 1.4697 nats/char"),
]


@dataclass
class Leaderboard:
    entries: list[Entry] = field(default_factory=list)
    source: str = NAME              # where it was loaded from

    def add(self, entry: Entry) -> None:
        """Add or replace (same model, benchmark and split) an entry."""
        self.entries = [e for e in self.entries
                        if (e.model, e.benchmark, e.split) != (entry.model, entry.benchmark, entry.split)]
        self.entries.append(entry)

    def get(self, model: str, benchmark: str, split: str = "test") -> Entry:
        for e in self.entries:
            if (e.model, e.benchmark, e.split) == (model, benchmark, split):
                return e
        raise KeyError(f"no entry for {model!r} on {benchmark}/{split}; have: "
                       f"{[(e.model, e.benchmark) for e in self.entries]}")

    def select(self, benchmark: str, split: str = "test", kind: str | None = "model",
               max_chapter: int | None = None) -> list[Entry]:
        """Entries for one benchmark; ``max_chapter`` keeps only models from chapters up to it."""
        return [e for e in self.entries if e.benchmark == benchmark and e.split == split
                and (kind is None or e.kind == kind) and (max_chapter is None or e.chapter <= max_chapter)]

    def floor(self, benchmark: str, split: str = "test") -> Entry | None:
        return next(iter(self.select(benchmark, split, kind="floor")), None)

    def save(self, directory: str | os.PathLike) -> Path:
        """Write the entries (sorted) as a hub artefact into ``directory``; :func:`load` reads it."""
        rows = [asdict(e) for e in sorted(self.entries, key=lambda e: (e.benchmark, e.chapter, e.kind, e.model))]
        return hub.save(rows, directory, info={"command": "python -m textbook_lm.experiments.leaderboard reproduce"})

    def table(self, benchmark: str, split: str = "test", anchors: bool = True, max_chapter: int | None = None) -> str:
        """A plain-text table: our models (best last), the floor, then published anchors."""
        rows = sorted(self.select(benchmark, split, max_chapter=max_chapter), key=lambda e: -e.cross_entropy)
        if not rows:
            raise KeyError(f"no entries for {benchmark}/{split}; benchmarks: {sorted({e.benchmark for e in self.entries})}")
        fl = self.floor(benchmark, split)
        head = f"{'model':<34}{'ch':>3}{'nats/tok':>10}{'ppl':>10}{'gap':>8}{'params':>12}{'train s':>9}"
        lines = [f"{benchmark} ({split})", head, "-" * len(head)]
        for e in rows:
            gap = f"{e.cross_entropy - fl.cross_entropy:8.3f}" if fl else f"{'':>8}"
            ppl = f"{e.perplexity:10.2f}" if e.perplexity < 1e6 else f"{e.perplexity:10.2e}"   # keep a gap
            lines.append(f"{e.model:<34}{e.chapter:>3}{e.cross_entropy:10.4f}{ppl}{gap}"
                         f"{e.params:12,}{e.train_time_s:9.1f}")
        if fl:
            lines.append(f"{fl.model:<34}{'':>3}{fl.cross_entropy:10.4f}{fl.perplexity:10.2f}{0:8.3f}")
        pub = [a for a in ANCHORS if a.benchmark == benchmark] if anchors else []
        if pub:
            lines.append("published (other systems; perplexity only):")
            lines += [f"  {a.model:<32}{'':>13}{a.perplexity:10.2f}   {a.source}" for a in pub]
        return "\n".join(lines)

    def chart(self, benchmark: str, split: str = "test", metric: str = "perplexity", anchors: bool = True,
              max_chapter: int | None = None):
        """Bar chart of our models on one benchmark, with the floor and published anchors as lines."""
        if metric not in ("perplexity", "cross_entropy", "bits_per_token"):
            raise ValueError(f"metric must be 'perplexity', 'cross_entropy' or 'bits_per_token', got {metric!r}")
        rows = sorted(self.select(benchmark, split, max_chapter=max_chapter), key=lambda e: -getattr(e, metric))
        if not rows:
            raise KeyError(f"no entries for {benchmark}/{split}")
        ref = {}
        fl = self.floor(benchmark, split)
        if fl:
            ref[f"{fl.model}: {getattr(fl, metric):.3f}"] = getattr(fl, metric)
        if anchors and metric == "perplexity":
            for a in ANCHORS:
                if a.benchmark == benchmark:
                    ref[f"{a.model} (published): {a.perplexity}"] = a.perplexity
        label = {"perplexity": "test perplexity (lower is better)",
                 "cross_entropy": "cross-entropy, nats/token (lower is better)",
                 "bits_per_token": "bits per token (lower is better)"}[metric]
        from textbook_lm import plot        # matplotlib only when a chart is drawn

        return plot.bars([f"{e.model} (ch {e.chapter})" for e in rows], [getattr(e, metric) for e in rows],
                         xlabel=label, title=f"Leaderboard: {benchmark} ({split})", reference=ref,
                         log=metric == "perplexity", fmt="{:.1f}" if metric == "perplexity" else "{:.3f}")


def load(name_or_dir: str | os.PathLike = NAME) -> Leaderboard:
    """The stored leaderboard: the package's copy, or a folder written by :meth:`Leaderboard.save`
    (checked by sha256). A name that is neither raises ``FileNotFoundError``."""
    rows = hub.load(name_or_dir, kind="result").obj
    if not isinstance(rows, list):
        raise hub.ArtefactError(f"{name_or_dir}: a leaderboard is a list of entries, got {type(rows).__name__}")
    known = {f.name for f in fields(Entry)}
    for r in rows:
        if not isinstance(r, dict) or set(r) - known or {"model", "benchmark", "nll", "n_tokens"} - set(r):
            raise hub.ArtefactError(f"{name_or_dir}: not a leaderboard entry: {r!r:.120}")
    return Leaderboard([Entry(**r) for r in rows], str(name_or_dir))
