"""Chapter 10's instruction world: small tasks, documents to pretrain on, and a gold judge.

Nobody knows the true reward of a real chat response, so real RLHF can only be measured
against proxies. Here the true reward is a program, :func:`judge`, so every stage of
alignment (base model, SFT, reward model, PPO, DPO) can be scored exactly.

* Four task types over one word-level vocabulary (:data:`VOCAB`)::

      <user> reverse c a d <bot>    ->  d a c .
      <user> sort c a d <bot>       ->  a c d .
      <user> count c a d <bot>      ->  three .
      <user> colour of bal ? <bot>  ->  red .          (a fact: see FACTS)

* A response is ``[filler ,] answer . [hope this helps .] <eos>``. The judge gives 1 for a
  right answer (partial credit for letter lists), adds 0.3 for one polite closing and
  subtracts 0.1 per filler word, per word after the closing, and 0.5 for a repeated
  closing or a response that never ends. So the best response is right, polite and short.
* :func:`documents`: the pretraining text. The same facts and tasks appear as plain
  sentences (``the colour of bal is red .``, ``c a d reversed is d a c .``), never as a
  dialogue: a base model knows the answers but has never seen ``<user>`` / ``<bot>``.
* :func:`demonstration`: what a human demonstrator writes for supervised fine-tuning:
  always right, but polite only 30% of the time and with a filler 30% of the time, so a
  model trained to imitate it leaves room for preference learning to improve.
* :func:`annotate`: a simulated annotator who prefers the response with the higher gold
  score with Bradley-Terry noise, ``P(a preferred) = sigmoid((gold(a) - gold(b)) / noise)``.

Sampling takes a ``random.Random``; ids are positions in :data:`VOCAB`.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

from textbook_lm.checks import check_int, check_number

__all__ = ["VOCAB", "STOI", "PAD", "EOS", "USER", "BOT", "LETTERS", "NUMBERS", "NAMES", "COLOURS", "FACTS",
           "TASKS", "CLOSING", "FILLERS", "Example", "task", "from_prompt", "prompts", "documents", "demonstration", "Score",
           "judge", "annotate", "agreement_ceiling", "answer_of", "demonstration_logprob", "encode", "decode"]

SPECIALS = ["<pad>", "<eos>", "<user>", "<bot>"]
PAD, EOS, USER, BOT = 0, 1, 2, 3
LETTERS = list("abcdefghij")
NUMBERS = ["zero", "one", "two", "three", "four", "five", "six", "seven"]
NAMES = ["bal", "kin", "mor", "tes", "dup", "vir", "gan", "lom", "pes", "rud", "sim", "tov",
         "bek", "dar", "fol", "hin", "jat", "kes", "lun", "mip", "nor", "pav", "rin", "zet"]
COLOURS = ["red", "blue", "green", "gold", "grey", "pink"]
TASKS = ["reverse", "sort", "count", "colour"]
CLOSING = ["hope", "this", "helps", "."]
FILLERS = [["well", ","], ["sure", ","], ["let", "me", "see", ","]]
WORDS = ["of", "?", ".", ",", "is", "has", "the", "reversed", "sorted", "in", "there", "are", "letters", "hope", "this",
         "helps", "well", "sure", "let", "me", "see"]
VOCAB = SPECIALS + LETTERS + NUMBERS + NAMES + COLOURS + TASKS + WORDS
STOI = {w: i for i, w in enumerate(VOCAB)}
# The world's facts: every name has a colour (fixed once, the same for every run)
FACTS = {name: COLOURS[random.Random(10 + i).randrange(len(COLOURS))] for i, name in enumerate(NAMES)}
MAX_LETTERS = 5


def encode(words: list[str]) -> list[int]:
    unknown = [w for w in words if w not in STOI]
    if unknown:
        raise KeyError(f"not in the instruction world's vocabulary: {unknown[:5]}")
    return [STOI[w] for w in words]


def decode(ids) -> list[str]:
    return [VOCAB[int(i)] for i in ids]


@dataclass(frozen=True)
class Example:
    """One task: ``kind``, its arguments (letters, or one name) and the right answer."""

    kind: str
    args: tuple[str, ...]
    answer: tuple[str, ...]

    @property
    def prompt(self) -> list[str]:
        """``<user> reverse c a d <bot>``: what the model is given."""
        body = ["colour", "of", self.args[0], "?"] if self.kind == "colour" else [self.kind, *self.args]
        return ["<user>", *body, "<bot>"]


def task(rng: random.Random, kind: str | None = None, names: list[str] | None = None) -> Example:
    """A random task of ``kind`` (default: any of :data:`TASKS`); colour questions ask about
    one of ``names`` (default: all)."""
    kind = kind or rng.choice(TASKS)
    if kind not in TASKS:
        raise ValueError(f"unknown task {kind!r}; choose from {TASKS}")
    if kind == "colour":
        name = rng.choice(names or NAMES)
        return Example(kind, (name,), (FACTS[name],))
    letters = tuple(rng.sample(LETTERS, rng.randint(2, MAX_LETTERS)))
    answer = {"reverse": letters[::-1], "sort": tuple(sorted(letters)),
              "count": (NUMBERS[len(letters)],)}[kind]
    return Example(kind, letters, answer)


def from_prompt(words: list[str]) -> Example:
    """The task a prompt asks (``<user> sort c a <bot>`` -> ``Example("sort", ("c", "a"), ("a", "c"))``)."""
    if len(words) < 4 or words[0] != "<user>" or words[-1] != "<bot>" or words[1] not in TASKS:
        raise ValueError(f"not a prompt of the instruction world: {' '.join(words)!r}")
    body = words[1:-1]
    if body[0] == "colour":
        return Example("colour", (body[2],), (FACTS[body[2]],))
    letters = tuple(body[1:])
    return Example(body[0], letters, {"reverse": letters[::-1], "sort": tuple(sorted(letters)),
                                      "count": (NUMBERS[len(letters)],)}[body[0]])


def prompts(n: int, seed: int, names: list[str] | None = None) -> list[Example]:
    """``n`` tasks from a seeded generator (the same list for the same seed)."""
    check_int("n", n, 1)
    rng = random.Random(seed)
    return [task(rng, names=names) for _ in range(n)]


def documents(rng: random.Random, n: int, paraphrase: bool = True) -> list[str]:
    """``n`` pretraining sentences: facts and tasks written as plain text, never as a dialogue.
    With ``paraphrase``, each fact is written in one of four ways (Allen-Zhu and Li, 2023,
    found such variety in pretraining is what lets fine-tuning *extract* a fact)."""
    out = []
    for _ in range(n):
        ex = task(rng)
        a, ans = " ".join(ex.args), " ".join(ex.answer)
        colour = rng.choice([f"the colour of {a} is {ans} .", f"{a} is {ans} .", f"{ans} is the colour of {a} .",
                             f"{a} has the colour {ans} ."]) if paraphrase else f"the colour of {a} is {ans} ."
        out.append({"colour": colour,
                    "reverse": f"{a} reversed is {ans} .",
                    "sort": f"{a} sorted is {ans} .",
                    "count": f"in {a} there are {ans} letters ."}[ex.kind])
    return out


def demonstration(rng: random.Random, ex: Example, polite: float = 0.3, filler: float = 0.3) -> list[str]:
    """A demonstrator's response to ``ex`` (ending in ``<eos>``): always right; a filler
    first with probability ``filler``, the closing with probability ``polite``."""
    out = list(rng.choice(FILLERS)) if rng.random() < filler else []
    out += [*ex.answer, "."]
    if rng.random() < polite:
        out += CLOSING
    return out + ["<eos>"]


def demonstration_logprob(ex: Example, response: list[str], polite: float = 0.3, filler: float = 0.3) -> float:
    """``log P(response)`` under :func:`demonstration` (natural log): the true process behind
    the SFT data, so its entropy is the floor of any model's loss on demonstrations;
    ``-inf`` for a response the demonstrator never writes."""
    lead = next((f for f in FILLERS if response[:len(f)] == f), [])
    rest = response[len(lead):]
    body = [*ex.answer, "."]
    if rest[:len(body)] != body or rest[len(body):] not in (["<eos>"], [*CLOSING, "<eos>"]):
        return -math.inf
    p = (filler / len(FILLERS) if lead else 1 - filler) * (polite if len(rest) > len(body) + 1 else 1 - polite)
    return math.log(p)


def answer_of(response: list[str]) -> list[str]:
    """The answer part of a response: the words before the first ``.``, without a leading
    filler (``well ,``)."""
    words = response[:response.index(".")] if "." in response else list(response)
    words = [w for w in words if w != "<eos>"]
    for f in FILLERS:
        if words[:len(f)] == f:
            return words[len(f):]
    return words


@dataclass(frozen=True)
class Score:
    """The gold judge's verdict on one response, term by term (``total`` is their sum)."""

    correct: float     # 1 if the answer is right; letter lists: 0.5 x the share of right positions
    polite: float      # +0.3 for exactly one closing right after the answer
    verbose: float     # -0.1 per filler word and per word after the closing
    repeat: float      # -0.5 if the closing is repeated or the response never ends
    total: float


def judge(ex: Example, response: list[str]) -> Score:
    """Score ``response`` (words, normally ending in ``<eos>``) to task ``ex``. Nothing
    after the first ``<eos>`` counts."""
    ended = "<eos>" in response
    resp = response[:response.index("<eos>")] if ended else list(response)
    got, want = answer_of(resp), list(ex.answer)
    if got == want:
        correct = 1.0
    elif ex.kind in ("reverse", "sort") and got:
        correct = 0.5 * sum(g == w for g, w in zip(got, want)) / max(len(got), len(want))
    else:
        correct = 0.0
    lead = next((len(f) for f in FILLERS if resp[:len(f)] == f), 0)
    rest = resp[resp.index(".") + 1:] if "." in resp else []
    closings = sum(rest[i:i + len(CLOSING)] == CLOSING for i in range(len(rest)))
    polite = 0.3 if rest == CLOSING else 0.0
    extra = len(rest) - (len(CLOSING) if rest[:len(CLOSING)] == CLOSING else 0)
    verbose = -0.1 * (lead + max(extra, 0))
    repeat = -0.5 if closings > 1 or not ended else 0.0
    return Score(correct, polite, round(verbose, 10), repeat, round(correct + polite + verbose + repeat, 10))


def annotate(rng: random.Random, ex: Example, a: list[str], b: list[str], noise: float = 0.2) -> bool:
    """True if the simulated annotator prefers ``a`` to ``b``: with probability
    ``sigmoid((gold(a) - gold(b)) / noise)`` (Bradley-Terry with a temperature)."""
    check_number("noise", noise, lambda v: v > 0, "> 0")
    d = (judge(ex, a).total - judge(ex, b).total) / noise
    return rng.random() < 1 / (1 + math.exp(-d))


def agreement_ceiling(ex: Example, a: list[str], b: list[str], noise: float = 0.2) -> float:
    """The best accuracy any reward model can reach on the annotator's label for this pair:
    the annotator agrees with the gold ordering with probability ``max(p, 1 - p)``."""
    d = (judge(ex, a).total - judge(ex, b).total) / noise
    p = 1 / (1 + math.exp(-d))
    return max(p, 1 - p)
