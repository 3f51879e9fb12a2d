"""Chapter 6's fact checks: what LayerNorm normalises over, and how attention's cost grows."""
import torch

from textbook_lm import transformer as T
from textbook_lm.gpt import GPT, GPTConfig


def test_layernorm_normalises_each_position_over_its_features_not_over_the_batch():
    torch.manual_seed(0)
    ln = T.Block(32, 4).ln_attn                          # the LayerNorm the package's blocks use
    x = 3 * torch.randn(4, 6, 32) + 1                    # (B, T, C)
    out = ln(x)
    # statistics over the features of each position: zero mean, unit variance per (b, t)
    assert torch.allclose(out.mean(-1), torch.zeros(4, 6), atol=1e-5)
    assert torch.allclose(out.var(-1, unbiased=False), torch.ones(4, 6), atol=1e-3)
    # not over the batch: each feature, across the batch, is not normalised
    assert out.mean(0).abs().max() > 0.1
    # one sequence's output does not depend on the others in the batch, or on the batch size
    other = x.clone()
    other[1:] = 50 * torch.randn(3, 6, 32)
    assert torch.allclose(ln(other)[0], out[0], atol=1e-6)
    assert torch.allclose(ln(x[:1])[0], out[0], atol=1e-6)
    # batch norm, for contrast, does depend on the rest of the batch
    bn = torch.nn.BatchNorm1d(32)
    assert not torch.allclose(bn(other.transpose(1, 2))[0], bn(x.transpose(1, 2))[0], atol=1e-3)


def test_attention_cost_per_token_is_linear_in_context_but_its_share_saturates():
    d, L, V = 64, 2, 50
    model = GPT(GPTConfig(vocab_size=V, block_size=16, n_layer=L, n_head=4, n_embd=d))
    linear = 2 * sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    assert linear == 2 * (L * 12 * d * d + V * d)         # 12 d^2 per block + the output layer
    contexts = torch.tensor([16, 64, 256, 1024, 4096, 16384, 65536], dtype=torch.float64)
    total = torch.tensor([float(T.flops_per_token(model, int(t))) for t in contexts], dtype=torch.float64)
    attention = total - linear
    # the cost per token grows linearly: 4 T d per attention layer
    assert torch.allclose(attention, L * 4 * d * contexts)
    # the share grows, but less than in proportion to T, and stays below 1 ...
    share = attention / total
    assert torch.all(share[1:] > share[:-1]) and torch.all(share < 1)
    assert torch.all((share / contexts)[1:] < (share / contexts)[:-1])
    # ... and follows T / (T + T_half), with T_half = (24 L d^2 + 2 V d) / (4 L d): 6d for the blocks alone
    half = linear / (4 * L * d)
    assert torch.allclose(share, contexts / (contexts + half))
    assert abs(half - 6 * d) / (6 * d) < 0.1
    # sixteen times the context, far from sixteen times the share once T is past the half-way point
    i = 3                                                # T = 1024 vs 16384
    assert share[i + 2] / share[i] < 2 < contexts[i + 2] / contexts[i]
