"""Facts that chapter 1's fact-check boxes rely on (Appendix C).

Each test fails if the fact were otherwise. The WikiText-2 test needs the real corpus and
skips without it (set TEXTBOOK_LM_DATA); the others run anywhere.
"""
import math

import numpy as np
import pytest

from textbook_lm import metrics, ngram
from textbook_lm.data import tinylang


def test_perplexity_is_a_geometric_mean_not_a_number_of_choices():
    """'A perplexity of 200 means the model hesitates between 200 words': only if uniform."""
    # uniform over V words: perplexity exactly V
    assert metrics.score(np.full(400, -math.log(200))).perplexity == pytest.approx(200)
    # sure of half the tokens (1/2), lost on the other half (1/1000): never a choice among ~45
    probs = np.array([0.5, 1 / 1000] * 500)
    ppl = metrics.score(np.log(probs)).perplexity
    assert ppl == pytest.approx(math.sqrt(2 * 1000), rel=1e-12)
    geometric_mean = float(np.exp(np.mean(np.log(1 / probs))))     # of 1/P
    assert ppl == pytest.approx(geometric_mean, rel=1e-12)
    assert ppl != pytest.approx(1 / 0.5) and ppl != pytest.approx(1000)
    # the arithmetic mean of 1/P ("the average number of choices") is something else entirely
    assert np.mean(1 / probs) > 10 * ppl


def test_add_one_bigram_is_worse_than_a_unigram_on_wikitext2(data_dir):
    """'Add-one smoothing is a reasonable default': on WikiText-2 its bigram loses to a
    unigram."""
    from textbook_lm.data import corpora

    counts = ngram.NGramCounts(corpora.wikitext2("train"), 2)
    test = corpora.wikitext2("test")
    unigram = ngram.MLE(counts, 1).perplexity(test)
    add_one = ngram.AddK(counts, 2, k=1.0).perplexity(test)
    kneser_ney = ngram.KneserNey(counts, 2).perplexity(test)
    assert kneser_ney < unigram < add_one
    assert add_one > 2 * unigram and unigram > 3 * kneser_ney      # ~1,940 vs ~926 vs ~270


def test_a_longer_history_is_better_only_on_training_data():
    """'A longer history is always better': on TinyLang the 5-gram memorises and loses to
    the trigram."""
    tl = tinylang.benchmark()
    floor = tinylang.entropy_rate(tl.test, tl.test_logprob)
    counts = ngram.NGramCounts(tl.train, 5)
    models = {n: ngram.KneserNey(counts, n) for n in (3, 5)}
    train = {n: m.score(tl.train).cross_entropy for n, m in models.items()}
    test = {n: m.score(tl.test).cross_entropy for n, m in models.items()}
    assert train[5] < train[3]                 # longer history: better on the training data ...
    assert train[5] < floor                    # ... even below the true entropy rate (memorising)
    assert test[5] > test[3] > floor           # ... but worse on held-out text
