"""Synthetic data for in-context learning (Chapter 9): tasks that only the context can solve.

* :class:`Episodes`: sequences of demonstrations ``item sep label delim``. In each sequence
  a few items get labels from a *fresh random mapping* (as in Chan et al., 2022), so a label
  can be predicted only by finding an earlier demonstration of the same item and copying
  its label. Controls: ``mapping="fixed"`` (one mapping for all sequences: learnable in the
  weights) and many items per sequence (few repeats: not *bursty*).
* :func:`repeated_random`: a random token sequence followed by itself, the probe of
  induction heads (Olsson et al., 2022).
* :class:`Chains`: arrows ``a b`` (a leads to b) forming two chains, and the question
  "where does the chain from x end?", answered directly or after writing the walk (chain of
  thought).

Everything is word-level over one fixed vocabulary (:data:`VOCAB`), shared by the models of
the chapter; ids are positions in it. Sampling takes a ``random.Random``.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

import torch

from textbook_lm.checks import check_int

__all__ = ["SEPARATORS", "DELIMITERS", "ITEMS", "LABELS", "HELD_OUT_LABELS", "VOCAB", "STOI", "Template",
           "INSTRUCTION", "TEMPLATES", "TRAIN_TEMPLATES", "Episodes", "Prompt", "repeated_random", "Chains", "Mixture", "encode",
           "decode"]

SPECIALS = ["<pad>", "<bos>", "N/A"]               # N/A: a content-free input (calibration)
SEPARATORS = [":", "->", "=", "is"]               # between an item and its label
DELIMITERS = [",", ";", "|", "."]                 # between demonstrations
LABELS = ["red", "blue", "green", "gold", "cat", "dog", "owl", "fox",
          "sun", "moon", "rain", "snow", "left", "right", "up", "down"]
ITEMS = [w for w in (c + v + e for c in "bdgkmpstvz" for v in "aiou" for e in "lnr")
         if w not in LABELS][:96]                                            # bal, ban, ... (96)
HELD_OUT_LABELS = ["yes", "no", "A", "B", "positive", "negative"]     # never a label in training
CHAINS = ["end", "start", "?"]
# Words of an instruction ("give the label of bal"): in the vocabulary, never in training
INSTRUCTION = ["give", "the", "label", "of", "answer", "what", "please", "question"]
VOCAB = SPECIALS + SEPARATORS + DELIMITERS + ITEMS + LABELS + HELD_OUT_LABELS + CHAINS + INSTRUCTION
STOI = {w: i for i, w in enumerate(VOCAB)}
PAD, BOS, NA = 0, 1, 2


def encode(words: list[str]) -> list[int]:
    unknown = [w for w in words if w not in STOI]
    if unknown:
        raise KeyError(f"not in the ICL vocabulary: {unknown[:5]}")
    return [STOI[w] for w in words]


def decode(ids) -> list[str]:
    return [VOCAB[int(i)] for i in ids]


@dataclass(frozen=True)
class Template:
    """How a demonstration is written: ``item sep label delim`` (e.g. ``bal : red ,``), or
    with ``sep=""`` just ``item label delim`` (``bal red ,``)."""

    sep: str = ""
    delim: str = ","

    def __post_init__(self):
        if (self.sep and self.sep not in SEPARATORS) or self.delim not in DELIMITERS:
            raise ValueError(f"sep must be '' or one of {SEPARATORS} and delim one of {DELIMITERS}, got "
                             f"{self.sep!r}, {self.delim!r}")

    def demo(self, item: str, label: str) -> list[str]:
        return [item] + ([self.sep] if self.sep else []) + [label, self.delim]

    def query(self, item: str) -> list[str]:
        return [item] + ([self.sep] if self.sep else [])

    def __str__(self) -> str:
        return f"x {self.sep + ' ' if self.sep else ''}y {self.delim}"


TEMPLATES = [Template(s, d) for s in [""] + SEPARATORS for d in DELIMITERS]
TRAIN_TEMPLATES = [Template("", d) for d in DELIMITERS[:3]]          # x y , / x y ; / x y |


@dataclass
class Prompt:
    """A k-shot prompt: ``words`` end with the query (and its ``sep``); the answer is one of
    ``candidates``."""

    words: list[str]
    candidates: list[str]
    answer: str
    query_at: int = -1              # index of the query item in ``words``

    @property
    def ids(self) -> list[int]:
        return encode(self.words)


class Episodes:
    """Sequences of demonstrations for training and evaluating in-context learning.

    Each sequence draws ``n_items`` items and ``n_labels`` label words, gives every item a
    label (``mapping="fresh"``: at random, anew for each sequence, each label to the same
    number of items, so that counting labels in the context says nothing about the answer;
    ``"fixed"``: one mapping of all items for every sequence, drawn once from ``seed``), then
    writes demonstrations of random items in a template from ``templates``. Only label positions are targets (others
    are -100), so the loss is the loss on labels.

    ``repeats``: the share of training sequences that are instead a random run of 3 to 20
    items repeated over and over (loss after the first run). Natural text repeats itself
    (names, phrases); this is the same pressure in its plainest form, and it lets a small
    model find the copying mechanism in hundreds rather than many thousands of steps.

    Works as training data for :func:`textbook_lm.train.train` (``batch`` and ``windows``;
    the validation windows are demonstration sequences only).
    """

    def __init__(self, n_items: int = 4, n_labels: int = 2, mapping: str = "fresh",
                 templates: list[Template] | None = None, labels: list[str] | None = None,
                 repeats: float = 0.0, seed: int = 0, n_eval: int = 256):
        check_int("n_items", n_items, 1)
        if not 0 <= repeats <= 1:
            raise ValueError(f"repeats must be a fraction in [0, 1], got {repeats!r}")
        self.repeats = repeats
        check_int("n_labels", n_labels, 1)
        if mapping not in ("fresh", "fixed"):
            raise ValueError(f"mapping must be 'fresh' or 'fixed', got {mapping!r}")
        self.labels = list(LABELS if labels is None else labels)
        if n_items > len(ITEMS) or n_labels > len(self.labels):
            raise ValueError(f"at most {len(ITEMS)} items and {len(self.labels)} labels, got {n_items}, {n_labels}")
        self.n_items, self.n_labels, self.mapping = n_items, n_labels, mapping
        self.templates = list(TRAIN_TEMPLATES if templates is None else templates)
        rng = random.Random(seed)
        self.fixed = {x: rng.choice(self.labels) for x in ITEMS}
        self.seed, self.n_eval = seed, n_eval

    def draw(self, rng: random.Random) -> dict[str, str]:
        """One sequence's mapping from its items to labels."""
        if self.mapping == "fixed":
            items = rng.sample(ITEMS, self.n_items)
            return {x: self.fixed[x] for x in items}
        items, labels = rng.sample(ITEMS, self.n_items), rng.sample(self.labels, self.n_labels)
        assigned = [labels[i % self.n_labels] for i in range(self.n_items)]     # balanced
        rng.shuffle(assigned)
        return dict(zip(items, assigned))

    def sequence(self, rng: random.Random, length: int) -> tuple[list[int], list[int]]:
        """``(x, y)`` of ``length`` ids: ``<bos>`` and demonstrations; ``y`` is -100 except
        where the next token is a label."""
        check_int("length", length, 2)
        mapping, template = self.draw(rng), rng.choice(self.templates)
        words, labels = ["<bos>"], []
        while len(words) < length + 1:
            x = rng.choice(list(mapping))
            demo = template.demo(x, mapping[x])
            labels.append(len(words) + len(demo) - 2)
            words += demo
        ids = encode(words[:length + 1])
        targets = [-100] * length
        for i in labels:
            if i <= length:
                targets[i - 1] = ids[i]                  # predicted at the position before it
        return ids[:length], targets

    def batch(self, batch_size: int, seq_len: int, mode: str = "random",
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        rng = random.Random(seed)
        rows = [self.repeated(rng, seq_len) if rng.random() < self.repeats else self.sequence(rng, seq_len)
                for _ in range(batch_size)]
        return torch.tensor([r[0] for r in rows]), torch.tensor([r[1] for r in rows])

    @staticmethod
    def repeated(rng: random.Random, length: int) -> tuple[list[int], list[int]]:
        """``<bos>`` and a run of 3 to 20 random items repeated to ``length``; targets from
        the second item of the second run (the first that an earlier occurrence predicts)."""
        run = encode(rng.sample(ITEMS, rng.randint(3, min(20, max(3, length // 2)))))
        ids = [BOS] + (run * (length // len(run) + 2))[:length]
        L = len(run)                 # ids[L + 2] is the first token an earlier occurrence predicts
        return ids[:length], ([-100] * (L + 1) + ids[L + 2:length + 1])[:length]

    def windows(self, seq_len: int, max_windows: int | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Fixed validation sequences (the same for every call), one per window."""
        rng = random.Random(10_000 + self.seed)
        n = self.n_eval if not max_windows else min(max_windows, self.n_eval)
        rows = [self.sequence(rng, seq_len) for _ in range(n)]
        return [(torch.tensor([x]), torch.tensor([y])) for x, y in rows]

    def best_logprobs(self, x: list[int], y: list[int]) -> list[float]:
        """The log-probability the true process gives each label target of one sequence
        (``x``, ``y`` from :meth:`sequence`, fresh balanced mappings): 0 for an item seen
        before; for a new item, its chance under the labels and free slots seen so far. The
        floor no model can beat."""
        if self.mapping != "fresh" or self.n_items % self.n_labels:
            raise ValueError("the exact floor is for fresh, balanced mappings")
        per = self.n_items // self.n_labels                   # items per label
        seen: dict[int, int] = {}                              # item -> label
        out = []
        for t, target in enumerate(y):
            if target == -100:
                continue
            item = x[t - 1] if VOCAB[x[t]] in SEPARATORS else x[t]       # skip a separator
            if item in seen:
                out.append(0.0 if seen[item] == target else -math.inf)
            else:
                counts: dict[int, int] = {}
                for lab in seen.values():
                    counts[lab] = counts.get(lab, 0) + 1
                free_known = {lab: per - c for lab, c in counts.items()}
                unknown_labels = self.n_labels - len(counts)
                slots = self.n_items - len(seen)                   # items not yet labelled
                if target in counts:
                    p = free_known[target] / slots
                else:
                    p = (unknown_labels * per / slots) / (len(self.labels) - len(counts))
                out.append(math.log(p) if p > 0 else -math.inf)
            seen[item] = target
        return out

    def prompt(self, rng: random.Random, shots: int, template: Template | None = None,
               labels: list[str] | None = None) -> Prompt:
        """A ``shots``-shot prompt on a fresh mapping: ``shots`` demonstrations of random items
        of the mapping, then a query item of the mapping (which the demonstrations may or
        may not show). ``labels`` replaces the label words (e.g. held-out ones)."""
        check_int("shots", shots, 0)
        mapping = self.draw(rng)
        if labels is not None:
            rename = dict(zip(sorted(set(mapping.values())), rng.sample(labels, len(set(mapping.values())))))
            mapping = {x: rename[y] for x, y in mapping.items()}
        template = template or rng.choice(self.templates)
        words = ["<bos>"]
        for _ in range(shots):
            x = rng.choice(list(mapping))
            words += template.demo(x, mapping[x])
        query = rng.choice(list(mapping))
        candidates = sorted(set(mapping.values()) | set(rng.sample(
            [lab for lab in (labels or self.labels) if lab not in mapping.values()],
            max(0, self.n_labels - len(set(mapping.values()))))))
        return Prompt(words + template.query(query), candidates, mapping[query], len(words))


def repeated_random(n: int, length: int, seed: int = 0, vocab: list[str] | None = None) -> torch.Tensor:
    """``n`` sequences ``<bos> t_1 .. t_L t_1 .. t_L`` of random items (no item twice within
    the first half): ids of shape (n, 1 + 2 * length)."""
    check_int("n", n, 1)
    check_int("length", length, 1)
    pool = ITEMS if vocab is None else vocab
    if length > len(pool):
        raise ValueError(f"length {length} is more than the {len(pool)} distinct tokens available")
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        half = encode(rng.sample(pool, length))
        rows.append([BOS] + half + half)
    return torch.tensor(rows)


class Chains:
    """Where does the chain end? ``<bos> a b , b c , c end , ... start x ?`` then the answer.

    Two chains of arrows ``u v`` (u leads to v) between random items, each ending in an
    arrow to ``end``, written in random order. The answer to ``start x ?`` is the last item of
    x's chain, ``hops`` arrows further on. ``steps=True`` writes the walk first, ``x y z end``
    (a chain of thought: every step is one lookup, "what follows this item in the list?", and
    reaching ``end`` says where to stop); otherwise only the item reached. Training draws 4 to
    14 arrows and 1 to ``max_hops`` hops (and, with ``repeats``, some repeated runs as in
    :class:`Episodes`); :meth:`example` takes ``hops`` and ``n_arrows`` to test larger
    problems. Targets are -100 except on the written answer."""

    def __init__(self, steps: bool = False, max_hops: int = 4, n_arrows: tuple[int, int] = (4, 14),
                 repeats: float = 0.0):
        check_int("max_hops", max_hops, 1)
        if not (isinstance(n_arrows, tuple) and len(n_arrows) == 2 and 2 <= n_arrows[0] <= n_arrows[1]):
            raise ValueError(f"n_arrows must be a (min, max) pair with 2 <= min <= max, got {n_arrows!r}")
        if not 0 <= repeats <= 1:
            raise ValueError(f"repeats must be a fraction in [0, 1], got {repeats!r}")
        self.steps, self.max_hops, self.n_arrows, self.repeats = steps, max_hops, n_arrows, repeats

    def words(self, rng: random.Random, hops: int, n_arrows: int) -> tuple[list[str], int, str]:
        """The example's words, where its answer starts, and the item it must reach."""
        if not 1 <= hops < n_arrows - 1:
            raise ValueError(f"hops must be in [1, n_arrows - 2], got {hops} with {n_arrows} arrows")
        a = rng.randint(hops + 1, n_arrows - 1)            # arrows of x's chain (the last one to end)
        items = rng.sample(ITEMS, n_arrows)                 # one item per arrow: its source
        first, second = items[:a], items[a:]
        arrows = [(u, v) for chain in (first, second) for u, v in zip(chain, chain[1:] + ["end"])]
        rng.shuffle(arrows)
        words = ["<bos>"]
        for u, v in arrows:
            words += [u, v, ","]
        x = first[a - 1 - hops]
        words += ["start", x, "?"]
        start = len(words)
        words += first[a - 1 - hops:] + ["end"] if self.steps else [first[-1]]
        return words, start, first[-1]

    def example(self, rng: random.Random, hops: int | None = None,
                n_arrows: int | None = None) -> tuple[list[int], list[int]]:
        n = rng.randint(*self.n_arrows) if n_arrows is None else check_int("n_arrows", n_arrows, 3)
        h = rng.randint(1, min(self.max_hops, n - 2)) if hops is None else check_int("hops", hops, 1)
        words, start, _ = self.words(rng, h, n)
        ids = encode(words)
        targets = [t if i + 1 >= start else -100 for i, t in enumerate(ids[1:])]
        return ids[:-1], targets

    def batch(self, batch_size: int, seq_len: int, mode: str = "random",
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        rng = random.Random(int(torch.randint(0, 2**62, (1,), generator=generator)))
        return _pad([Episodes.repeated(rng, rng.randint(20, seq_len)) if rng.random() < self.repeats
                     else self.example(rng) for _ in range(batch_size)])

    def windows(self, seq_len: int, max_windows: int | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
        rng = random.Random(20_000)
        n = 128 if not max_windows else min(max_windows, 128)
        return [(torch.tensor([x]), torch.tensor([y])) for x, y in (self.example(rng) for _ in range(n))]


class Mixture:
    """Training data drawn from several sources: each batch takes ``round(weight * batch)``
    rows from each (padded to one length); validation windows are the first source's."""

    def __init__(self, *parts: tuple[object, float]):
        if not parts or any(w <= 0 for _, w in parts):
            raise ValueError("give (data, weight) pairs with weights > 0")
        total = sum(w for _, w in parts)
        self.parts = [(d, w / total) for d, w in parts]

    def batch(self, batch_size: int, seq_len: int, mode: str = "random",
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        rows, left = [], batch_size
        for k, (data, w) in enumerate(self.parts):
            n = left if k == len(self.parts) - 1 else min(left, round(w * batch_size))
            left -= n
            if n:
                x, y = data.batch(n, seq_len, mode, generator)
                rows += [(xi.tolist(), yi.tolist()) for xi, yi in zip(x, y)]
        return _pad(rows)

    def windows(self, seq_len: int, max_windows: int | None = None):
        return self.parts[0][0].windows(seq_len, max_windows)


def _pad(rows: list[tuple[list[int], list[int]]]) -> tuple[torch.Tensor, torch.Tensor]:
    T = max(len(x) for x, _ in rows)
    x, y = torch.full((len(rows), T), PAD), torch.full((len(rows), T), -100)
    for r, (xi, yi) in enumerate(rows):
        x[r, :len(xi)], y[r, :len(yi)] = torch.tensor(xi), torch.tensor(yi)
    return x, y
