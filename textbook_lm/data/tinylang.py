"""TinyLang: a small synthetic English-like language whose true probabilities are known.

Sentences come from a probabilistic grammar with subject-verb number agreement across
relative clauses and prepositional phrases nested up to ``max_depth`` deep::

    S     -> NP[n] VP[n]                    n ~ {singular, plural}
    NP[n] -> Det[n] (Adj) N[n] (RC[n] | PP) a modifier only while depth < max_depth
    RC[n] -> "that" VP[n]                   subject relative: "the dog that chases cats"
           | "that" NP[m] Vt[m]             object relative:  "the dog that the cats chase"
    PP    -> Prep NP[m]                     "the dog near the cats"
    VP[n] -> Adv* Vi[n] | Adv* Vt[n] NP[m]  (each further adverb with probability adv_prob)

The grammar is unambiguous (every choice can be read off the words), so the probability
of a sentence is the product of the probabilities of the choices that made it. The
generator reports that exact log-probability, and :meth:`TinyLang.logprob` recovers it
from the words alone (``-inf`` for a string the grammar cannot make). Averaging over a
held-out set gives its exact entropy rate, the floor no model can beat in expectation.

Convention: every sentence ends with one ``<eos>`` token, which is counted as a token
when computing rates (it is certain under the grammar, so it adds 0 nats but 1 token).
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from numbers import Real

from textbook_lm.checks import check_int

__all__ = ["TinyLang", "Sentence", "MinimalPair", "Splits", "entropy_rate", "benchmark", "EOS"]

EOS = "<eos>"
SG, PL = 0, 1

_NOUNS = [("dog", "dogs"), ("cat", "cats"), ("bird", "birds"), ("horse", "horses"), ("farmer", "farmers"),
          ("teacher", "teachers"), ("child", "children"), ("king", "kings"), ("doctor", "doctors"),
          ("student", "students"), ("poet", "poets"), ("sailor", "sailors"), ("fox", "foxes"),
          ("wolf", "wolves"), ("girl", "girls"), ("boy", "boys")]
_INTRANSITIVE = [("sleeps", "sleep"), ("runs", "run"), ("laughs", "laugh"), ("sings", "sing"),
                 ("waits", "wait"), ("smiles", "smile"), ("falls", "fall"), ("swims", "swim")]
_TRANSITIVE = [("sees", "see"), ("likes", "like"), ("chases", "chase"), ("helps", "help"),
               ("follows", "follow"), ("knows", "know"), ("loves", "love"), ("watches", "watch")]
_ADJECTIVES = ["pale", "young", "small", "big", "happy", "quiet", "clever", "brave", "lazy", "red"]
_ADVERBS = ["often", "never", "always", "also"]
_PREPOSITIONS = ["near", "with", "behind", "beside"]
_DETS = (["the", "a", "this", "every"], ["the", "some", "these", "many"])  # "the" has probability 1/2




def _words(name: str, tokens) -> list[str]:
    """A sentence as a list of words; a string (instead of its words) is refused."""
    if isinstance(tokens, str) or not all(isinstance(t, str) for t in tokens):
        raise TypeError(f"{name} must be a list of words (e.g. 'the dog sleeps'.split()), got {tokens!r:.60}")
    return list(tokens)


def _zipf(k: int) -> list[float]:
    w = [1.0 / (r + 1) for r in range(k)]
    s = sum(w)
    return [x / s for x in w]


class _Reject(Exception):
    """The words cannot be produced by the grammar."""


@dataclass
class Sentence:
    tokens: list[str]                   # without <eos>
    logprob: float                      # natural log of the exact probability
    agreements: list[tuple[int, int, int, str]] = field(default_factory=list)
    # (noun position, verb position, number 0=sg/1=pl, kind: 'main' | 'subject-rc' | 'object-rc')


@dataclass
class MinimalPair:
    good: list[str]
    bad: list[str]       # same sentence with the agreeing verb's number flipped
    distance: int        # verb position minus subject-noun position (1 = adjacent)
    number: int


class _Sampler:
    """Walks the grammar by sampling each choice."""

    def __init__(self, rng: random.Random):
        self.rng, self.tokens, self.logprob, self.agreements = rng, [], 0.0, []

    def choose(self, probs, infer) -> int:
        k = self.rng.choices(range(len(probs)), weights=probs)[0]
        self.logprob += math.log(probs[k])
        return k

    def word(self, options, probs) -> str:
        k = self.choose(probs, None)
        self.tokens.append(options[k])
        return options[k]


class _Reader:
    """Walks the grammar by reading each choice off the given words."""

    def __init__(self, tokens):
        self.tokens, self.i, self.logprob, self.agreements = list(tokens), 0, 0.0, []

    def peek(self, k: int = 0):
        j = self.i + k
        return self.tokens[j] if j < len(self.tokens) else None

    def choose(self, probs, infer) -> int:
        k = infer(self)
        if k is None or probs[k] == 0.0:
            raise _Reject
        self.logprob += math.log(probs[k])
        return k

    def word(self, options, probs) -> str:
        tok = self.peek()
        if tok not in options:
            raise _Reject
        self.logprob += math.log(probs[options.index(tok)])
        self.i += 1
        return tok


class TinyLang:
    """A probabilistic grammar with long-range number agreement (see the module docstring).

    Args:
        max_depth: how deeply modifiers (relative clauses, prepositional phrases) may nest.
        rc_prob: probability that a noun phrase gets a relative clause at each depth
            (one value per depth < ``max_depth``, or one value for all; default 0.35 in the
            main clause and 0.2 deeper).
        pp_prob: probability that a noun phrase gets a prepositional phrase instead (same form).
        adj_prob: probability of an adjective before a noun.
        adv_prob: probability of (each further) adverb before a verb.
        object_rc_prob: share of relative clauses that are object relatives.
        transitive_prob: probability that a verb phrase is transitive.
    """

    def __init__(self, max_depth: int = 2, rc_prob: float | tuple[float, ...] | None = None,
                 pp_prob: float | tuple[float, ...] | None = None, adj_prob: float = 0.3,
                 adv_prob: float = 0.15, object_rc_prob: float = 0.5, transitive_prob: float = 0.5):
        check_int("max_depth", max_depth, 0)

        def per_depth(p, default, name):
            if p is None:
                p = (default[0],) + (default[1],) * (max_depth - 1) if max_depth else ()
            p = (p,) * max_depth if isinstance(p, (int, float)) else tuple(p)
            if len(p) != max_depth:
                raise ValueError(f"{name} needs one value per depth (max_depth={max_depth}), got {p}")
            return p

        rc, pp = per_depth(rc_prob, (0.35, 0.2), "rc_prob"), per_depth(pp_prob, (0.15, 0.1), "pp_prob")
        for p in (*rc, *pp, adj_prob, adv_prob, object_rc_prob, transitive_prob):
            if isinstance(p, bool) or not isinstance(p, Real):
                raise TypeError(f"probabilities must be numbers, got {p!r}")
            if not 0.0 <= p <= 1.0:                 # also refuses NaN
                raise ValueError(f"probabilities must lie in [0, 1], got {p}")
        if any(a + b > 1 for a, b in zip(rc, pp)) or adv_prob >= 1:
            raise ValueError("rc_prob + pp_prob must be <= 1 at every depth, and adv_prob < 1")
        self.max_depth, self.rc_prob, self.pp_prob = max_depth, rc, pp
        self.adj_prob, self.adv_prob = adj_prob, adv_prob
        self.object_rc_prob, self.transitive_prob = object_rc_prob, transitive_prob
        self.nouns = ([s for s, _ in _NOUNS], [p for _, p in _NOUNS])
        self.vi = ([s for s, _ in _INTRANSITIVE], [p for _, p in _INTRANSITIVE])
        self.vt = ([s for s, _ in _TRANSITIVE], [p for _, p in _TRANSITIVE])
        self.p_noun, self.p_vi, self.p_vt = _zipf(len(_NOUNS)), _zipf(len(_INTRANSITIVE)), _zipf(len(_TRANSITIVE))
        self.p_adj, self.p_adv = _zipf(len(_ADJECTIVES)), [1 / len(_ADVERBS)] * len(_ADVERBS)
        self.p_prep = [1 / len(_PREPOSITIONS)] * len(_PREPOSITIONS)
        self.p_det = [0.5] + [0.5 / 3] * 3
        # the form that flips a verb's number, used to build minimal pairs
        self.flip = {}
        for sg, pl in _INTRANSITIVE + _TRANSITIVE:
            self.flip[sg], self.flip[pl] = pl, sg

    @property
    def vocab(self) -> list[str]:
        """All words the grammar can produce, plus ``<eos>``."""
        words = set(_ADJECTIVES + _ADVERBS + _PREPOSITIONS + ["that"] + _DETS[0] + _DETS[1])
        for pair in _NOUNS + _INTRANSITIVE + _TRANSITIVE:
            words.update(pair)
        return sorted(words) + [EOS]

    def word_classes(self) -> dict[str, str]:
        """The grammatical class of every word, known from the grammar (for probing word vectors)."""
        classes = {"that": "relative pronoun", "the": "determiner (either number)"}
        for number, name in ((SG, "singular"), (PL, "plural")):
            for d in _DETS[number][1:]:
                classes[d] = f"determiner ({name})"
            for w in self.nouns[number]:
                classes[w] = f"noun ({name})"
            for w in self.vi[number]:
                classes[w] = f"intransitive verb ({name})"
            for w in self.vt[number]:
                classes[w] = f"transitive verb ({name})"
        classes.update({w: "adjective" for w in _ADJECTIVES})
        classes.update({w: "adverb" for w in _ADVERBS})
        classes.update({w: "preposition" for w in _PREPOSITIONS})
        return classes

    # ------------------------------------------------------------------ the grammar
    def _sentence(self, w) -> None:
        number = w.choose([0.5, 0.5], lambda r: self._np_number(r, 0))
        head = self._np(w, number, 0)
        self._vp(w, number, 0, head, "main")

    def _np_number(self, r: _Reader, k: int):
        """Number of the noun phrase starting k words ahead: read it off its noun."""
        if r.peek(k) not in _DETS[0] + _DETS[1]:
            return None
        k += 1
        if r.peek(k) in _ADJECTIVES:
            k += 1
        tok = r.peek(k)
        return SG if tok in self.nouns[SG] else PL if tok in self.nouns[PL] else None

    def _np(self, w, number: int, depth: int) -> int:
        """Noun phrase; returns the position of its head noun."""
        w.word(_DETS[number], self.p_det)
        if w.choose([1 - self.adj_prob, self.adj_prob], lambda r: int(r.peek() in _ADJECTIVES)):
            w.word(_ADJECTIVES, self.p_adj)
        head = len(w.tokens) if isinstance(w, _Sampler) else w.i
        w.word(self.nouns[number], self.p_noun)
        rc, pp = (self.rc_prob[depth], self.pp_prob[depth]) if depth < self.max_depth else (0.0, 0.0)
        modifier = w.choose([1 - rc - pp, rc, pp],
                            lambda r: 1 if r.peek() == "that" else 2 if r.peek() in _PREPOSITIONS else 0)
        if modifier == 2:
            w.word(_PREPOSITIONS, self.p_prep)
            m = w.choose([0.5, 0.5], lambda r: self._np_number(r, 0))
            self._np(w, m, depth + 1)
        elif modifier == 1:
            w.word(["that"], [1.0])
            obj = w.choose([1 - self.object_rc_prob, self.object_rc_prob],
                           lambda r: int(r.peek() in _DETS[0] + _DETS[1]))
            if obj:   # object relative: the clause's own subject agrees with its verb
                m = w.choose([0.5, 0.5], lambda r: self._np_number(r, 0))
                sub = self._np(w, m, depth + 1)
                self._verb(w, self.vt, self.p_vt, sub, m, "object-rc")
            else:     # subject relative: the head noun is the clause's subject
                self._vp(w, number, depth + 1, head, "subject-rc")
        return head

    def _verb(self, w, options, probs, noun_pos: int, number: int, kind: str) -> None:
        verb_pos = len(w.tokens) if isinstance(w, _Sampler) else w.i
        w.word(options[number], probs)
        w.agreements.append((noun_pos, verb_pos, number, kind))

    def _vp(self, w, number: int, depth: int, subject_pos: int, kind: str) -> None:
        while w.choose([1 - self.adv_prob, self.adv_prob], lambda r: int(r.peek() in _ADVERBS)):
            w.word(_ADVERBS, self.p_adv)
        trans = w.choose([1 - self.transitive_prob, self.transitive_prob],
                         lambda r: 0 if r.peek() in self.vi[0] + self.vi[1] else 1 if r.peek() in self.vt[0] + self.vt[1] else None)
        if not trans:
            self._verb(w, self.vi, self.p_vi, subject_pos, number, kind)
        else:
            self._verb(w, self.vt, self.p_vt, subject_pos, number, kind)
            m = w.choose([0.5, 0.5], lambda r: self._np_number(r, 0))
            self._np(w, m, depth)

    # ------------------------------------------------------------------ public API
    def sample(self, n: int, seed: int = 0) -> list[Sentence]:
        """``n`` (>= 0) sentences, deterministic given the int ``seed``, each with its exact log-probability."""
        check_int("n", n, 0)
        check_int("seed", seed, 0)
        rng = random.Random(seed)
        out = []
        for _ in range(n):
            s = _Sampler(rng)
            self._sentence(s)
            out.append(Sentence(s.tokens, s.logprob, s.agreements))
        return out

    def logprob(self, tokens: list[str]) -> float:
        """Exact natural-log probability of a sentence, a list of words (a final ``<eos>`` is
        allowed); ``-inf`` if ungrammatical. A string instead of a list of words is refused."""
        toks = _words("tokens", tokens)
        if toks and toks[-1] == EOS:
            toks = toks[:-1]
        r = _Reader(toks)
        try:
            self._sentence(r)
        except _Reject:
            return -math.inf
        return r.logprob if r.i == len(toks) else -math.inf

    def minimal_pairs(self, distance: int, n: int, seed: int = 0, max_samples: int = 400_000,
                      local_cues: bool = False) -> list[MinimalPair]:
        """``n`` grammatical sentences whose main subject and verb are ``distance`` words apart,
        each paired with the same sentence with the main verb's number flipped (ungrammatical).

        Sentences are drawn from the grammar itself (rejection sampling), so the probe uses
        the same distribution the models are trained on. By default (``local_cues=False``)
        sentences in which another word between subject and verb agrees with the subject (the
        verb of a subject relative clause, "the dog that *sleeps* runs") are skipped: then the
        only evidence for the verb's number is the subject, ``distance`` words back, and the
        numbers of the nouns in between are independent of it.
        """
        check_int("distance", distance, 1)
        check_int("n", n, 1)
        check_int("seed", seed, 0)
        check_int("max_samples", max_samples, 1)
        rng = random.Random(seed * 7919 + distance)
        pairs, tries = [], 0
        while len(pairs) < n:
            tries += 1
            if tries > max_samples:
                raise RuntimeError(f"only {len(pairs)} of {n} sentences with distance {distance} found "
                                   f"in {max_samples} samples; lower n, or allow local_cues")
            s = _Sampler(rng)
            self._sentence(s)
            noun, verb, number, _ = next(a for a in s.agreements if a[3] == "main")
            if verb - noun != distance:
                continue
            if not local_cues and any(a[0] == noun and a[3] == "subject-rc" for a in s.agreements):
                continue
            bad = list(s.tokens)
            bad[verb] = self.flip[bad[verb]]
            pairs.append(MinimalPair(list(s.tokens), bad, distance, number))
        return pairs


@dataclass
class Splits:
    train: list[list[str]]
    valid: list[list[str]]
    test: list[list[str]]
    valid_logprob: list[float]
    test_logprob: list[float]


def entropy_rate(sentences: list[list[str]], logprobs: list[float]) -> float:
    """Exact cross-entropy of the true grammar on these sentences, in nats per token.

    Tokens are the words plus one ``<eos>`` per sentence; this is the floor for any model
    scored with :func:`textbook_lm.metrics.score` on the same sentences. Needs one
    log-probability (<= 0, not NaN) per sentence, and at least one sentence.
    """
    if isinstance(sentences, str) or len(sentences) != len(logprobs) or not sentences:
        raise ValueError(f"need one log-probability per sentence and at least one sentence, got "
                         f"{len(sentences)} sentences and {len(logprobs)} log-probabilities")
    if not all(lp <= 0 for lp in logprobs):        # also refuses NaN
        raise ValueError("log-probabilities must be <= 0 (natural logs of probabilities), and not NaN")
    n_tokens = sum(len(s) + 1 for s in sentences)
    return -sum(logprobs) / n_tokens


def benchmark(n_train: int = 20_000, n_valid: int = 2_000, n_test: int = 2_000) -> Splits:
    """The book's TinyLang benchmark: fixed grammar, fixed seeds (1, 2, 3) for the three splits
    (each of at least 1 sentence)."""
    for name, n in (("n_train", n_train), ("n_valid", n_valid), ("n_test", n_test)):
        check_int(name, n, 1)
    lang = TinyLang()
    tr, va, te = lang.sample(n_train, seed=1), lang.sample(n_valid, seed=2), lang.sample(n_test, seed=3)
    return Splits([s.tokens for s in tr], [s.tokens for s in va], [s.tokens for s in te],
                  [s.logprob for s in va], [s.logprob for s in te])
