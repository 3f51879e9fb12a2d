"""Facts that chapter 3's fact-check box relies on (Appendix C).

The test fails if the fact were otherwise; it needs no corpus.
"""
import math

import numpy as np
import pytest
import torch

from textbook_lm import embeddings as E

# a tiny symmetric co-occurrence matrix: zeros (never fitted), small counts, one above x_max
X = np.array([[0.0, 3.0, 1.0, 0.0],
              [3.0, 0.0, 12.0, 0.5],
              [1.0, 12.0, 250.0, 40.0],
              [0.0, 0.5, 40.0, 2.0]])


def _by_hand(W, Wc, b, bc, X, x_max=100.0, alpha=0.75):
    """J = sum over X_ij > 0 of f(X_ij) (w_i . w~_j + b_i + b~_j - log X_ij)^2 (Pennington et al., 2014)."""
    total = 0.0
    for i in range(len(X)):
        for j in range(len(X)):
            if X[i, j] > 0:
                f = min(1.0, (X[i, j] / x_max) ** alpha)
                total += f * (float(W[i] @ Wc[j]) + b[i] + bc[j] - math.log(X[i, j])) ** 2
    return total


def test_glove_fits_log_counts_with_two_tables_and_two_biases():
    """'GloVe normalises the co-occurrence counts and factorises them as UU^T': it does not."""
    rng = np.random.default_rng(0)
    W, Wc = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    b, bc = rng.standard_normal(4), rng.standard_normal(4)
    i, j = np.nonzero(X)
    t = lambda a: torch.tensor(a, dtype=torch.float64)                        # noqa: E731
    loss = E.glove_loss(t(W[i]), t(Wc[j]), t(b[i]), t(bc[j]), t(X[i, j])).item()
    # the package's loss is the paper's formula, with f(x) = min(1, (x/100)^(3/4))
    assert loss == pytest.approx(_by_hand(W, Wc, b, bc, X), rel=1e-12)
    assert E.GloVeConfig().x_max == 100.0 and E.GloVeConfig().alpha == 0.75
    # raw counts, not probabilities: normalising the rows changes the loss
    P = X / X.sum(1, keepdims=True)
    assert _by_hand(W, Wc, b, bc, P) != pytest.approx(loss, rel=1e-3)
    # two different tables: replacing the context table by the word table (U U^T) changes it
    assert _by_hand(W, W, b, bc, X) != pytest.approx(loss, rel=1e-3)
    # the biases are part of the model: a per-word shift of log X is absorbed exactly by b
    shift = np.array([0.0, 1.0, -2.0, 0.5])
    shifted = X * np.exp(shift)[:, None]
    moved = E.glove_loss(t(W[i]), t(Wc[j]), t(b[i] + shift[i]), t(bc[j]), t(shifted[i, j])).item()
    weights = np.minimum(1.0, (X[i, j] / 100) ** 0.75)
    weights_moved = np.minimum(1.0, (shifted[i, j] / 100) ** 0.75)
    resid = np.einsum("kd,kd->k", W[i], Wc[j]) + b[i] + bc[j] - np.log(X[i, j])
    assert moved == pytest.approx(float(np.sum(weights_moved * resid ** 2)), rel=1e-12)
    assert loss == pytest.approx(float(np.sum(weights * resid ** 2)), rel=1e-12)
    # pairs that never co-occur are not fitted at all (log 0 would be -inf)
    assert len(i) == np.count_nonzero(X) < X.size
