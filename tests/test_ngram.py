import collections
import math
import random

import numpy as np
import pytest

from textbook_lm import ngram
from textbook_lm.data import tinylang

hypothesis = pytest.importorskip("hypothesis", reason="property tests need hypothesis (pip install -e .[test])")
from hypothesis import given, settings, strategies as st  # noqa: E402

BOS, EOS = ngram.BOS, ngram.EOS


# --------------------------------------------------------------------------- a slow reference
class RefKN:
    """Interpolated modified Kneser-Ney written the obvious way: dictionaries and recursion."""

    def __init__(self, sentences, n):
        self.n = n
        self.vocab = sorted({w for s in sentences for w in s} | {EOS, "<unk>"})
        raw = collections.defaultdict(collections.Counter)
        for s in sentences:
            padded = [BOS] + list(s) + [EOS]
            for i in range(1, len(padded)):
                for k in range(1, n + 1):
                    if i - k + 1 >= 0:
                        raw[k][tuple(padded[i - k + 1:i + 1])] += 1
        self.a = {}
        for k in range(1, n + 1):
            if k == n:
                self.a[k] = dict(raw[k])
            else:
                left = collections.Counter(g[1:] for g in raw[k + 1])
                self.a[k] = {g: (c if g[0] == BOS else left[g]) for g, c in raw[k].items()}
        self.D = {}
        for k in range(1, n + 1):
            cc = collections.Counter(self.a[k].values())
            n1, n2, n3, n4 = (cc[i] for i in (1, 2, 3, 4))
            if min(n1, n2, n3, n4) == 0:
                D = (0.5, 1.0, 1.5)
            else:
                Y = n1 / (n1 + 2 * n2)
                D = (1 - 2 * Y * n2 / n1, 2 - 3 * Y * n3 / n2, 3 - 4 * Y * n4 / n3)
                D = tuple(min(max(x, 0.01), i + 1) for i, x in enumerate(D))
            self.D[k] = D

    def p(self, w, h):
        h = tuple(h)
        if w == BOS:
            return 0.0
        lower = 1.0 / len(self.vocab) if not h and self._k(h) == 1 else None
        k = len(h) + 1
        lower = self.p(w, h[1:]) if h else 1.0 / len(self.vocab)
        follow = {g[-1]: c for g, c in self.a[k].items() if g[:-1] == h}
        S = sum(follow.values())
        if S == 0:
            return lower
        D = self.D[k]
        d = lambda c: 0 if c == 0 else D[min(c, 3) - 1]
        c = follow.get(w, 0)
        gamma = sum(d(x) for x in follow.values()) / S
        return max(c - d(c), 0) / S + gamma * lower

    def _k(self, h):
        return len(h) + 1


def _corpus(seed, n_sent=30, vocab="abcde", max_len=8):
    rng = random.Random(seed)
    return [[rng.choice(vocab) for _ in range(rng.randint(0, max_len))] for _ in range(n_sent)]


def _truncate(context, n):
    ctx = list(context)[-(n - 1):] if n > 1 else []
    if BOS in ctx:
        ctx = ctx[len(ctx) - ctx[::-1].index(BOS) - 1:]
    return ctx


@pytest.mark.parametrize("n", [1, 2, 3, 4])
@pytest.mark.parametrize("seed", [0, 1])
def test_kneser_ney_matches_the_slow_reference(n, seed):
    sents = _corpus(seed) + [list("abcabcabc"), list("aaaa")]
    ours, ref = ngram.fit(sents, n, "kn"), RefKN(sents, n)
    for k in range(1, n + 1):
        assert ours.discounts[k] == pytest.approx(ref.D[k])
    contexts = [[BOS], [BOS, "a"], ["a", "b"], ["c", "a", "b"], ["e", "e", "e"], ["zz", "a"], []]
    for ctx in contexts:
        d = ours.distribution(ctx)
        for w, i in ours.vocab.stoi.items():
            expected = ref.p(w if w != ngram.UNK else "<unk>", _truncate(ctx, n))
            assert d[i] == pytest.approx(expected, abs=1e-12), (ctx, w)


def test_mle_and_add_k_match_their_definitions():
    sents = [list("abab"), list("abc")]
    c = ngram.NGramCounts(sents, 2)
    mle, add1 = ngram.MLE(c, 2), ngram.AddK(c, 2, k=1.0)
    # c(a b) = 3, c(a .) = 3; c(b a)=1, c(b <eos>)=1, c(b c)=1
    assert mle.prob("b", ["a"]) == 1.0 and mle.prob("a", ["b"]) == pytest.approx(1 / 3)
    assert mle.prob("c", ["a"]) == 0.0
    V = len(c.vocab) - 1                      # a, b, c, <eos>, <unk>
    assert add1.prob("b", ["a"]) == pytest.approx((3 + 1) / (3 + V))
    assert add1.prob("c", ["a"]) == pytest.approx(1 / (3 + V))
    assert add1.prob("a", ["zzz"]) == pytest.approx(1 / V)          # unseen context: uniform


def test_interpolation_weights_are_tuned_on_heldout():
    sp = tinylang.benchmark(2000, 300, 10)
    c = ngram.NGramCounts(sp.train, 3)
    tuned = ngram.Interpolated(c, 3, heldout=sp.valid)
    assert all(0 <= x <= 1 for x in tuned.lambdas)
    ll = lambda m: m.score(sp.valid).nll
    for lams in ([0.5, 0.5, 0.5], [0.9, 0.2, 0.8], [0.99, 0.99, 0.99]):
        assert ll(tuned) <= ll(ngram.Interpolated(c, 3, lambdas=lams)) + 1e-6


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 4),
       smoothing=st.sampled_from(["mle", "add-k", "interpolated", "kn"]),
       context=st.lists(st.sampled_from(["a", "b", "c", "d", "unseen", BOS]), max_size=5),
       discount=st.sampled_from([None, 0.05, 0.75, 1.0]))
def test_every_distribution_sums_to_one(seed, n, smoothing, context, discount):
    sents = _corpus(seed, n_sent=12, vocab="abcd", max_len=6)
    if not any(sents):
        sents.append(["a"])
    kw = {"heldout": _corpus(seed + 1, 5, "abcd")} if smoothing == "interpolated" else {}
    if smoothing == "kn":
        kw["discount"] = discount                 # every allowed fixed discount, and modified KN
    model = ngram.fit(sents, n, smoothing, **kw)
    d = model.distribution(context)
    assert d.shape == (len(model.vocab),)
    assert d[model.vocab.bos] == 0.0 and np.all(d >= 0)
    assert d.sum() == pytest.approx(1.0, abs=1e-9)


def test_unknown_words_map_to_unk_and_never_get_zero():
    model = ngram.fit([list("abc")] * 3, 3, "kn")
    assert model.prob("zebra", ["a", "b"]) == model.prob(ngram.UNK, ["a", "b"]) > 0
    assert math.isfinite(model.sentence_logprob(["never", "seen", "words"]))
    rare = ngram.fit([["a", "b"], ["a", "c"]], 2, "kn", min_count=2)   # b and c seen once -> <unk>
    assert "b" not in rare.vocab and "a" in rare.vocab


def test_bad_input_raises_clear_errors():
    with pytest.raises(ValueError, match="order must be >= 1"):
        ngram.fit([["a"]], 0)
    with pytest.raises(ValueError, match="unknown smoothing"):
        ngram.fit([["a"]], 2, "witten-bell")
    with pytest.raises(ValueError, match="empty corpus"):
        ngram.fit([], 2)
    with pytest.raises(ValueError, match="empty corpus"):
        ngram.fit([[], []], 2)
    with pytest.raises(ValueError, match="markers"):
        ngram.fit([["a", BOS, "b"]], 2)
    with pytest.raises(ValueError, match="k > 0"):
        ngram.fit([["a"]], 2, "add-k", k=0)
    with pytest.raises(ValueError, match="needs counts up to order 3"):
        ngram.KneserNey(ngram.NGramCounts([["a"]], 2), 3)


def test_sampling_is_seeded_and_uses_the_vocabulary():
    sp = tinylang.benchmark(1000, 10, 10)
    m = ngram.fit(sp.train, 3, "kn")
    a, b = m.sample(5, seed=1), m.sample(5, seed=1)
    assert a == b and a != m.sample(5, seed=2)
    assert all(w in m.vocab for s in a for w in s) and all(len(s) <= 40 for s in a)
    # temperature -> 0 approaches greedy decoding: every word is the most likely one
    cold = m.sample(10, seed=0, temperature=0.01, max_len=6)
    for s in cold:
        for i, w in enumerate(s):
            assert m.vocab.id(w) == int(np.argmax(m.distribution([BOS] + s[:i])))


def test_long_range_agreement_is_beyond_a_trigram():
    lang = tinylang.TinyLang()
    m = ngram.fit([s.tokens for s in lang.sample(20_000, seed=1)], 3, "kn")
    from textbook_lm.metrics import agreement_accuracy
    near = agreement_accuracy(m.sentence_logprob, lang.minimal_pairs(1, 150, seed=5))
    far = agreement_accuracy(m.sentence_logprob, lang.minimal_pairs(6, 150, seed=5))
    assert near > 0.95 and abs(far - 0.5) < 0.15


# --------------------------------------------------------------------------- reference libraries
def _nltk_kn(order: int, sents):
    """NLTK's KneserNeyInterpolated with discount 0.1, fitted on NLTK's padded n-grams."""
    nltk_lm = pytest.importorskip("nltk.lm", reason="needs nltk (pip install -e .[test])")
    from nltk.lm.preprocessing import padded_everygram_pipeline

    train, vocab = padded_everygram_pipeline(order, sents)
    model = nltk_lm.KneserNeyInterpolated(order, discount=0.1)
    model.fit(train, vocab)
    return model


def test_agrees_with_nltk_where_nltk_is_right():
    sents = [s.tokens for s in tinylang.TinyLang().sample(300, seed=4)]
    theirs = _nltk_kn(2, sents)
    # NLTK's KN: one fixed discount, and a continuation unigram with no uniform floor
    ours = ngram.KneserNey(ngram.NGramCounts(sents, 2), 2, discount=0.1, unigram_floor=False)
    words = sorted({w for s in sents for w in s})
    for ctx in (["<s>"], ["the"], ["dogs"], ["that"], ["sleeps"]):
        for w in words + ["</s>"]:
            assert ours.prob(EOS if w == "</s>" else w, ctx) == pytest.approx(theirs.score(w, ctx), abs=1e-12)


def test_documents_where_nltk_is_wrong():
    """NLTK pads a trigram model with two <s>; the distribution after that padding does not sum to 1."""
    sents = [s.tokens for s in tinylang.TinyLang().sample(300, seed=4)]
    theirs = _nltk_kn(3, sents)
    total = sum(theirs.score(w, ["<s>", "<s>"]) for w in theirs.vocab)
    assert abs(total - 1.0) > 1e-6          # NLTK: mass leaks to the padding symbols
    assert theirs.score("<s>", ["the", "dog"]) > 0     # ... and <s> itself gets predicted
    ours = ngram.KneserNey(ngram.NGramCounts(sents, 3), 3, discount=0.1, unigram_floor=False)
    assert ours.distribution([BOS]).sum() == pytest.approx(1.0, abs=1e-12)
    assert ours.prob(BOS, ["the", "dog"]) == 0.0


@pytest.mark.parametrize("n", [2, 3, 5])
def test_arpa_export_queried_with_kenlm_gives_our_probabilities(tmp_path, n):
    kenlm = pytest.importorskip("kenlm", reason="needs the kenlm Python module (pip install -e .[test])")
    sp = tinylang.benchmark(3000, 10, 200)
    model = ngram.fit(sp.train, n, "kn")
    path = tmp_path / "model.arpa"
    model.to_arpa(str(path))
    k = kenlm.Model(str(path))
    assert k.order == n
    for s in sp.test + [["the", "zebra", "sleeps"], ["dogs"], []]:
        ours = model.sentence_logprob(s) / math.log(10)
        assert k.score(" ".join(s), bos=True, eos=True) == pytest.approx(ours, abs=1e-4)


def test_mle_cannot_be_written_as_arpa(tmp_path):
    with pytest.raises(ValueError, match="smoothed"):
        ngram.fit([list("abc"), list("cab")], 2, "mle").to_arpa(str(tmp_path / "x.arpa"))


def test_wikitext2_kn5_perplexity(data_dir):
    from textbook_lm.data import corpora

    model = ngram.fit(corpora.wikitext2("train"), 5, "kn")
    s = model.score(corpora.wikitext2("test"))
    assert s.n_tokens == 244_102
    assert round(s.perplexity, 2) == 224.81


def test_count_queries_match_brute_force():
    sents = [list("abcab"), list("bca"), list("ab")]
    c = ngram.NGramCounts(sents, 3)
    assert c.get(["a", "b"]) == 3 and c.get(["b", "c", "a"]) == 2 and c.get(["c", "c"]) == 0
    assert c.get([BOS, "a"]) == 2 and c.get(["b", EOS]) == 2
    # distinct left neighbours of "b": a, <s> (in "bca") -> 2; of "a": c, <s> -> 2; of "c": b -> 1
    assert c.continuation(["b"]) == 2 and c.continuation(["a"]) == 2 and c.continuation(["c"]) == 1
    assert c.continuation([BOS, "a"]) == 2          # nothing precedes <s>: raw count
    m = c.count_matrix(["a", "b"], ["b", "c", EOS])
    assert m.tolist() == [[3, 0, 1], [0, 2, 2]]
