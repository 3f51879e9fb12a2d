import collections
import math

import pytest

from textbook_lm.data import tinylang
from textbook_lm.data.tinylang import TinyLang


@pytest.fixture(scope="module")
def lang():
    return TinyLang()


def test_deterministic_given_seed(lang):
    a, b, c = lang.sample(50, seed=7), lang.sample(50, seed=7), lang.sample(50, seed=8)
    assert [s.tokens for s in a] == [s.tokens for s in b]
    assert [s.tokens for s in a] != [s.tokens for s in c]


def test_reported_logprob_is_recovered_from_the_words_alone(lang):
    for s in lang.sample(3000, seed=1):
        assert lang.logprob(s.tokens) == pytest.approx(s.logprob, abs=1e-9)
        assert lang.logprob(s.tokens + [tinylang.EOS]) == pytest.approx(s.logprob, abs=1e-9)


def test_sample_frequencies_match_exact_probabilities():
    # a small grammar makes some sentences common enough to count
    small = TinyLang(max_depth=0, adj_prob=0.0, adv_prob=0.0, transitive_prob=0.0)
    n = 40_000
    freq = collections.Counter(tuple(s.tokens) for s in small.sample(n, seed=3))
    for sent, k in freq.most_common(5):
        p = math.exp(small.logprob(list(sent)))
        assert abs(k / n - p) < 5 * math.sqrt(p * (1 - p) / n), (sent, k / n, p)
    # with no choices left but det/noun/verb, the probabilities of all sentences sum to 1
    dets = {0: ["the", "a", "this", "every"], 1: ["the", "some", "these", "many"]}
    total = sum(math.exp(small.logprob([d, nn, v]))
                for num in (0, 1) for d in dets[num] for nn in small.nouns[num] for v in small.vi[num])
    assert total == pytest.approx(1.0, abs=1e-12)


def test_ungrammatical_strings_get_zero_probability(lang):
    for bad in (["the", "dogs", "sleeps"], ["a", "dogs", "sleep"], ["dog", "sleeps"], ["the", "dog"],
                ["the", "dog", "sleeps", "the"], [], ["the", "dog", "that", "sleeps"], ["the", "zebra", "sleeps"]):
        assert lang.logprob(bad) == -math.inf, bad
    assert lang.logprob(["the", "dog", "sleeps"]) > -math.inf


def test_depth_limit_is_enforced():
    flat = TinyLang(max_depth=1, rc_prob=0.5)
    ok = ["the", "dog", "that", "the", "cat", "sees", "sleeps"]
    nested = ["the", "dog", "that", "the", "cat", "that", "sleeps", "sees", "sleeps"]
    assert flat.logprob(ok) > -math.inf
    assert flat.logprob(nested) == -math.inf
    assert TinyLang(max_depth=2).logprob(nested) > -math.inf
    with pytest.raises(ValueError):
        TinyLang(max_depth=2, rc_prob=(0.5,))


def test_entropy_rate_is_the_true_models_cross_entropy():
    sp = tinylang.benchmark(500, 200, 200)
    h = tinylang.entropy_rate(sp.test, sp.test_logprob)
    n_tok = sum(len(s) + 1 for s in sp.test)
    assert h == pytest.approx(-sum(sp.test_logprob) / n_tok)
    assert 1.5 < h < 3.0          # nats per token for the default grammar


def test_minimal_pairs(lang):
    for d in (1, 2, 5, 9):
        pairs = lang.minimal_pairs(d, 20, seed=0)
        assert len(pairs) == 20
        for p in pairs:
            assert lang.logprob(p.good) > -math.inf and lang.logprob(p.bad) == -math.inf
            diff = [i for i, (a, b) in enumerate(zip(p.good, p.bad)) if a != b]
            assert len(diff) == 1 and len(p.good) == len(p.bad)
            verb = diff[0]
            noun = verb - d
            assert p.good[noun] in lang.nouns[p.number]
    with pytest.raises(ValueError):
        lang.minimal_pairs(0, 1)
    with pytest.raises(RuntimeError):
        lang.minimal_pairs(40, 1, max_samples=200)


def test_every_word_that_can_follow_the_article_a_starts_with_a_consonant():
    # "a" is followed by a singular noun or an adjective; "a old horse" was once in the book.
    lang = TinyLang()
    sentences = [s.tokens for s in lang.sample(3000, seed=5)]
    after_a = {s[i + 1] for s in sentences for i, w in enumerate(s[:-1]) if w == "a"}
    assert len(after_a) > 10
    assert not [w for w in after_a if w[0] in "aeiou"], after_a
