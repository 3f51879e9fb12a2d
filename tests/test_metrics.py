import math

import numpy as np
import pytest

from textbook_lm import metrics
from textbook_lm.data.tinylang import MinimalPair


def test_uniform_model_has_perplexity_equal_to_vocabulary_size():
    V = 37
    s = metrics.score(np.full(1000, -math.log(V)))
    assert s.perplexity == pytest.approx(V)
    assert s.bits_per_token == pytest.approx(math.log2(V))
    assert s.n_tokens == 1000


def test_scores_add_up_and_count_eos():
    a, b = metrics.score([-1.0, -2.0]), metrics.score([-3.0])
    assert (a + b).cross_entropy == pytest.approx(2.0)
    assert metrics.count_tokens([["a", "b"], []]) == 4
    assert metrics.count_tokens([["a", "b"]], add_eos=False) == 2


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="<= 0"):
        metrics.score([0.5])
    with pytest.raises(ValueError):
        metrics.score([])


def test_agreement_accuracy_counts_ties_as_half():
    pairs = [MinimalPair(["x"], ["y"], 1, 0)] * 2
    assert metrics.agreement_accuracy(lambda s: -1.0 if s == ["x"] else -2.0, pairs) == 1.0
    assert metrics.agreement_accuracy(lambda s: -1.0, pairs) == 0.5
    assert metrics.agreement_accuracy(lambda s: -2.0 if s == ["x"] else -1.0, pairs) == 0.0


def test_pair_accuracy_from_arrays():
    assert metrics.pair_accuracy([-1.0, -2.0, -3.0, -1.0], [-2.0, -1.0, -3.0, -5.0]) == pytest.approx(0.625)
    with pytest.raises(ValueError):
        metrics.pair_accuracy([-1.0], [-1.0, -2.0])


def test_distinct_n():
    from textbook_lm.metrics import distinct_n

    assert distinct_n(["a b a b"], 2) == 2 / 3            # (a b) (b a) (a b)
    assert distinct_n(["a b", "a b"], 2) == 0.5
    assert distinct_n(["a b c"], 1) == 1.0 and distinct_n([""], 2) == 0.0
    with pytest.raises(ValueError):
        distinct_n(["a"], 0)
