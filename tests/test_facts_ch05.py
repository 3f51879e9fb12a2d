"""Facts that chapter 5's fact-check boxes rely on (Appendix C lists the boxes)."""
import math

import torch

from textbook_lm import attention as A


def _softmax_stats(scores: torch.Tensor) -> tuple[float, float]:
    """Mean largest weight and mean Frobenius norm of the softmax Jacobian diag(a) - a a^T."""
    a = scores.softmax(-1)
    jac = torch.diag_embed(a) - a[..., :, None] * a[..., None, :]
    return a.max(-1).values.mean().item(), jac.flatten(-2).norm(dim=-1).mean().item()


def test_dividing_by_sqrt_dk_keeps_the_softmax_out_of_saturation():
    """Unit-variance q and k: q.k has variance d_k; q.k / sqrt(d_k) has variance 1 at every width.
    Unscaled, a wide head's softmax is nearly one-hot and its Jacobian collapses; scaled, it is not."""
    g = torch.Generator().manual_seed(0)
    jac_scaled = []
    for d in (16, 256, 1024):
        q, k = torch.randn(2000, 1, d, generator=g), torch.randn(2000, 16, d, generator=g)
        raw = A.dot_scores(q, k)                                     # (2000, 1, 16)
        scaled = A.scaled_dot_scores(q, k)
        assert torch.allclose(scaled, raw / math.sqrt(d), atol=1e-5)
        assert 0.9 < raw.var().item() / d < 1.1
        assert 0.9 < scaled.var().item() < 1.1
        top_raw, jac_raw = _softmax_stats(raw)
        top_scaled, j = _softmax_stats(scaled)
        jac_scaled.append(j)
        if d == 1024:
            assert top_raw > 0.9 and top_scaled < 0.4             # nearly one-hot vs spread out
            assert jac_raw < 0.2 * j                              # the saturated softmax barely passes gradient
    assert max(jac_scaled) < 1.1 * min(jac_scaled)                # scaled: the same gradient at every width
