"""Attention: the explicit and fused paths agree, masks mean what the docs say, gradients check."""
import pytest
import torch

from textbook_lm import attention as A


def qkv(B=2, H=3, tq=5, tk=7, d=8, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(B, H, tq, d, generator=g, dtype=dtype), torch.randn(B, H, tk, d, generator=g, dtype=dtype),
            torch.randn(B, H, tk, d, generator=g, dtype=dtype))


def masks(B=2, H=3, tq=5, tk=7):
    g = torch.Generator().manual_seed(1)
    pad = torch.zeros(B, tk, dtype=torch.bool)
    pad[0, -3:] = True
    arbitrary = torch.rand(B, H, tq, tk, generator=g) > 0.5
    arbitrary[0, 0, 0] = False                       # guarantee one fully masked row
    return {"none": None, "causal": A.causal_mask(tq, tk), "padding": A.padding_mask(pad),
            "arbitrary": arbitrary, "padding+causal": A.combine(A.padding_mask(pad), A.causal_mask(tq, tk))}


@pytest.mark.parametrize("kind", ["none", "causal", "padding", "arbitrary", "padding+causal"])
def test_explicit_and_fused_paths_agree(kind):
    q, k, v = qkv()
    m = masks()[kind]
    out_e, w = A.attend_explicit(q, k, v, m)
    out_f = A.attend_fused(q, k, v, m)
    assert torch.allclose(out_e, out_f, atol=1e-5), (out_e - out_f).abs().max()
    assert w.shape == (2, 3, 5, 7)


def test_fused_causal_flag_equals_causal_mask():
    q, k, v = qkv(tq=6, tk=6)
    out_flag = A.attend_fused(q, k, v, causal=True)
    out_e, _ = A.attend_explicit(q, k, v, A.causal_mask(6))
    assert torch.allclose(out_flag, out_e, atol=1e-5)
    # incremental decoding: the last 2 queries against 6 keys
    out_tail = A.attend_fused(q[:, :, -2:], k, v, causal=True)
    assert torch.allclose(out_tail, out_e[:, :, -2:], atol=1e-5)


def test_weights_are_distributions_and_zero_where_masked():
    q, k, v = qkv()
    m = masks()["arbitrary"]
    _, w = A.attend_explicit(q, k, v, m)
    assert (w[~m.expand_as(w)] == 0).all()
    alive = m.any(-1)
    sums = w.sum(-1)
    assert torch.allclose(sums[alive], torch.ones(int(alive.sum())), atol=1e-6)
    assert (sums[~alive] == 0).all() and (~alive).any()


@pytest.mark.parametrize("path", ["explicit", "fused"])
def test_fully_masked_row_is_zero_without_nan(path):
    q, k, v = qkv(dtype=torch.float64)
    q.requires_grad_(True)
    m = torch.ones(2, 3, 5, 7, dtype=torch.bool)
    m[1, 2, 3] = False
    out = A.attend_explicit(q, k, v, m)[0] if path == "explicit" else A.attend_fused(q, k, v, m)
    assert (out[1, 2, 3] == 0).all()
    out.sum().backward()
    assert torch.isfinite(q.grad).all() and (q.grad[1, 2, 3] == 0).all()


def test_gradcheck_float64():
    q, k, v = (t.requires_grad_(True) for t in qkv(B=1, H=2, tq=3, tk=4, d=4, dtype=torch.float64))
    m = torch.rand(1, 2, 3, 4, generator=torch.Generator().manual_seed(3)) > 0.3
    m[0, 1, 2] = False
    assert torch.autograd.gradcheck(lambda a, b, c: A.attend_explicit(a, b, c, m)[0], (q, k, v))
    assert torch.autograd.gradcheck(lambda a, b, c: A.attend_fused(a, b, c, m), (q, k, v))
    add = A.AdditiveScore(4, 4, 5).double()
    assert torch.autograd.gradcheck(lambda a, b, c: A.attend_explicit(a, b, c, m, score=add)[0], (q, k, v))
    mha = A.MultiHeadAttention(8, 2).double()
    x = torch.randn(2, 5, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: mha(t, causal=True)[0], (x,))


def test_additive_score_is_v_tanh_of_sum():
    torch.manual_seed(0)
    s = A.AdditiveScore(3, 5, 4)
    q, k = torch.randn(2, 3), torch.randn(6, 5)
    got = s(q, k)
    assert got.shape == (2, 6)
    i, j = 1, 4
    want = s.v.weight[0] @ torch.tanh(s.w_q.weight @ q[i] + s.w_k.weight @ k[j] + s.w_k.bias)
    assert torch.allclose(got[i, j], want, atol=1e-6)


def test_context_is_weighted_sum_not_elementwise():
    q, k, v = qkv(B=1, H=1, tq=2, tk=3, d=4)
    out, w = A.attend_explicit(q, k, v)
    manual = sum(w[0, 0, 1, j] * v[0, 0, j] for j in range(3))
    assert torch.allclose(out[0, 0, 1], manual, atol=1e-6)


def test_multihead_weights_shape_and_paths_agree():
    torch.manual_seed(0)
    mha = A.MultiHeadAttention(16, 4).eval()
    x, ctx = torch.randn(2, 5, 16), torch.randn(2, 7, 16)
    pad = torch.zeros(2, 7, dtype=torch.bool)
    pad[1, 4:] = True
    for kwargs in [dict(causal=True), dict(context=ctx, mask=A.padding_mask(pad)), dict()]:
        fast, none = mha(x, **kwargs)
        slow, w = mha(x, need_weights=True, **kwargs)
        assert none is None and torch.allclose(fast, slow, atol=1e-5)
        assert w.shape == (2, 4, 5, ctx.size(1) if "context" in kwargs else 5)


def test_self_attention_is_permutation_equivariant():
    torch.manual_seed(0)
    mha = A.MultiHeadAttention(16, 4).eval()
    x = torch.randn(3, 9, 16)
    perm = torch.randperm(9)
    assert torch.allclose(mha(x[:, perm])[0], mha(x)[0][:, perm], atol=1e-5)
    # ... which a causal mask breaks
    assert not torch.allclose(mha(x[:, perm], causal=True)[0], mha(x, causal=True)[0][:, perm], atol=1e-3)


def test_causal_self_attention_ignores_the_future():
    torch.manual_seed(0)
    mha = A.MultiHeadAttention(16, 4).eval()
    x = torch.randn(1, 8, 16)
    y = x.clone()
    y[:, 5:] += torch.randn(1, 3, 16)
    a, b = mha(x, causal=True)[0], mha(y, causal=True)[0]
    assert torch.allclose(a[:, :5], b[:, :5], atol=1e-6) and not torch.allclose(a[:, 5:], b[:, 5:])


def test_record_keeps_outputs_and_collects_maps():
    torch.manual_seed(0)
    model = torch.nn.ModuleDict({"a": A.MultiHeadAttention(8, 2), "b": A.MultiHeadAttention(8, 4)}).eval()
    x = torch.randn(2, 6, 8)
    plain = model["b"](model["a"](x)[0], causal=True)[0]
    with A.record(model) as maps:
        recorded = model["b"](model["a"](x)[0], causal=True)[0]
    assert torch.allclose(plain, recorded, atol=1e-5)
    assert maps["a"].shape == (2, 2, 6, 6) and maps["b"].shape == (2, 4, 6, 6)
    assert (maps["b"].triu(1) == 0).all()
    assert not model["a"].record_weights and model["a"].last_weights is None


def test_bad_masks_and_sizes_raise():
    q, k, v = qkv()
    with pytest.raises(TypeError, match="boolean"):
        A.attend_explicit(q, k, v, torch.zeros(5, 7))
    with pytest.raises(ValueError, match="broadcast"):
        A.attend_explicit(q, k, v, torch.ones(4, 7, dtype=torch.bool))
    with pytest.raises(ValueError, match="at least as many keys"):
        A.causal_mask(5, 3)
    with pytest.raises(ValueError, match="divisible"):
        A.MultiHeadAttention(10, 3)
    with pytest.raises(TypeError, match="boolean"):
        A.padding_mask(torch.zeros(2, 3))
