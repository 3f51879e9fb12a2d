"""Transformer building blocks: positions, pre/post-LN, masks in the stacks, cost formulas."""
import math

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from textbook_lm import attention, transformer as T
from textbook_lm.utils import count_params


def small(**kw):
    base = dict(src_vocab=11, tgt_vocab=13, n_embd=32, n_head=4, block_size=24)
    base.update(kw)
    return T.Transformer(T.TransformerConfig(**base)).eval()


def test_sinusoidal_values():
    pe = T.SinusoidalPositions(16, 50).pe
    p = 7
    assert torch.isclose(pe[p, 0], torch.tensor(math.sin(p)))
    assert torch.isclose(pe[p, 1], torch.tensor(math.cos(p)))
    assert torch.isclose(pe[p, 4], torch.tensor(math.sin(p / 10000 ** (4 / 16))), atol=1e-6)
    assert pe.abs().max() <= 1


def test_rotary_depends_only_on_offset_and_keeps_norms():
    rot = T.Rotary(8, 64)
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(8, generator=g), torch.randn(8, generator=g)
    def at(vec, pos):                       # vec placed at position `pos` of a length-40 sequence
        seq = torch.zeros(1, 1, 40, 8)
        seq[0, 0, pos] = vec
        return rot(seq)[0, 0, pos]
    dots = [at(q, m) @ at(k, m - 3) for m in (3, 10, 25, 39)]
    assert max(dots) - min(dots) < 1e-5
    assert not torch.isclose(at(q, 10) @ at(k, 7), at(q, 10) @ at(k, 2), atol=1e-3)
    assert torch.isclose(at(q, 17).norm(), q.norm(), atol=1e-6)


@pytest.mark.parametrize("positions", ["sinusoidal", "learned", "rotary", "none"])
def test_too_long_input_raises(positions):
    m = small(positions=positions)
    with pytest.raises(ValueError, match=r"longer than the model's context window \(block_size=24"):
        m(torch.randint(3, 11, (1, 25)), torch.randint(3, 13, (1, 5)))


def test_bad_config_raises():
    with pytest.raises(ValueError, match="positions must be"):
        T.TransformerConfig(5, 5, positions="alibi")


def test_post_ln_output_is_normalised_pre_ln_is_not():
    torch.manual_seed(0)
    x = 3 * torch.randn(2, 6, 32) + 1
    post = T.Block(32, 4, norm_first=False).eval()(x)
    pre = T.Block(32, 4, norm_first=True).eval()(x)
    assert torch.allclose(post.mean(-1), torch.zeros(2, 6), atol=1e-5)
    assert torch.allclose(post.var(-1, unbiased=False), torch.ones(2, 6), atol=1e-3)
    assert pre.mean(-1).abs().max() > 0.1      # pre-LN leaves the residual stream un-normalised


def test_encoder_without_positions_is_permutation_equivariant():
    torch.manual_seed(0)
    ids = torch.randint(3, 11, (2, 9))
    perm = torch.randperm(9)
    for positions, equivariant in [("none", True), ("sinusoidal", False), ("rotary", False)]:
        m = small(positions=positions)
        a, b = m.encoder(ids[:, perm]), m.encoder(ids)[:, perm]
        assert torch.allclose(a, b, atol=1e-5) == equivariant, positions


def test_decoder_is_causal_and_source_padding_is_ignored():
    torch.manual_seed(0)
    m = small()
    src, tgt = torch.randint(3, 11, (1, 7)), torch.randint(3, 13, (1, 8))
    changed = tgt.clone()
    changed[0, 5:] = 3
    a, b = m(src, tgt), m(src, changed)
    assert torch.allclose(a[:, :5], b[:, :5], atol=1e-5) and not torch.allclose(a[:, 5:], b[:, 5:])
    padded = torch.cat([src, torch.zeros(1, 4, dtype=torch.long)], dim=1)
    assert torch.allclose(m(padded, tgt), a, atol=1e-5)


def test_record_collects_every_map_without_changing_output():
    torch.manual_seed(0)
    m = small(n_layer=2, n_decoder_layer=3)
    src, tgt = torch.randint(3, 11, (2, 7)), torch.randint(3, 13, (2, 5))
    plain = m(src, tgt)
    with attention.record(m) as maps:
        recorded = m(src, tgt)
    assert torch.allclose(plain, recorded, atol=1e-5)
    assert maps["encoder.layers.1.attn"].shape == (2, 4, 7, 7)
    assert maps["decoder.layers.2.attn"].shape == (2, 4, 5, 5)
    assert maps["decoder.layers.0.cross"].shape == (2, 4, 5, 7)
    assert len(maps) == 2 + 3 * 2


def test_flops_formula_matches_flop_counter():
    m = small()
    src, tgt = torch.randint(3, 11, (2, 10)), torch.randint(3, 13, (2, 10))
    with attention.record(m), FlopCounterMode(display=False) as fc:   # explicit path: plain matmuls
        m(src, tgt)
    assert fc.get_total_flops() == T.flops_per_token(m, 10) * src.numel()


def test_parameter_count():
    m = small(n_layer=1, d_ff=64)
    C, F = 32, 64
    attn = 4 * C * C + 4 * C
    ffn = 2 * C * F + F + C
    ln = 2 * C
    expected = (11 * C + attn + ffn + 2 * ln + ln) + (13 * C + 2 * attn + ffn + 3 * ln + ln) + (C * 13 + 13)
    assert count_params(m) == expected
    assert count_params(m, embeddings=False) == expected - 11 * C - 13 * C
    assert not hasattr(T, "count_parameters")           # one parameter counter: utils.count_params
