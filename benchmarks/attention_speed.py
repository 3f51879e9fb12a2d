"""How much does our MultiHeadAttention cost on top of the fused kernel, and how does attention
grow with sequence length?

For each length T: forward + backward time of
  * direct   - the same projections written inline around F.scaled_dot_product_attention
               (the least any multi-head attention can do),
  * ours     - textbook_lm.attention.MultiHeadAttention, fused path (causal),
  * explicit - the same module with need_weights=True (weights materialised),
  * torch    - torch.nn.MultiheadAttention with a causal mask, for reference,
and the memory the explicit path needs just for its (B, heads, T, T) weights.
Times are medians over interleaved repeats. Usage: python benchmarks/attention_speed.py [--quick]
"""
from __future__ import annotations

import statistics
import sys
import time

import torch
import torch.nn.functional as F

from textbook_lm.attention import MultiHeadAttention, causal_mask

torch.manual_seed(0)
dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
B, C, H = 8, 256, 8
LENGTHS = [64, 128, 256] if "--quick" in sys.argv else [64, 128, 256, 512, 1024]
REPEATS = 5 if "--quick" in sys.argv else 15

ours = MultiHeadAttention(C, H).to(dev)
ref = torch.nn.MultiheadAttention(C, H, batch_first=True).to(dev)


def direct(x):
    """The minimum: one qkv matmul, split heads, fused kernel, merge heads, output matmul."""
    Bx, T, _ = x.shape
    q, k, v = F.linear(x, ours.qkv.weight, ours.qkv.bias).split(C, dim=2)
    q, k, v = (t.view(Bx, T, H, C // H).transpose(1, 2) for t in (q, k, v))
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    return F.linear(y.transpose(1, 2).reshape(Bx, T, C), ours.out.weight, ours.out.bias)


def sync():
    if dev.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, x):
    x.grad = None
    sync()
    t0 = time.perf_counter()
    fn(x).sum().backward()
    sync()
    return time.perf_counter() - t0


def main():
    print(f"device {dev}, batch {B}, d_model {C}, heads {H}, forward+backward, median of {REPEATS}")
    print(f"{'T':>6} {'direct ms':>10} {'ours ms':>9} {'overhead':>9} {'explicit ms':>12} {'nn.MHA ms':>10} "
          f"{'weights MiB':>12}")
    for T in LENGTHS:
        x = torch.randn(B, T, C, device=dev, requires_grad=True)
        mask = ~causal_mask(T, device=dev)            # nn.MultiheadAttention: True = may NOT attend
        fns = {"direct": direct, "ours": lambda t: ours(t, causal=True)[0],
               "explicit": lambda t: ours(t, causal=True, need_weights=True)[0],
               "torch": lambda t: ref(t, t, t, attn_mask=mask, need_weights=False)[0]}
        times = {k: [] for k in fns}
        for name, fn in fns.items():                  # warm-up
            timed(fn, x)
        for _ in range(REPEATS):
            for name, fn in fns.items():
                times[name].append(timed(fn, x))
        med = {k: 1000 * statistics.median(v) for k, v in times.items()}
        weights_mib = B * H * T * T * 4 / 2 ** 20
        print(f"{T:>6} {med['direct']:>10.2f} {med['ours']:>9.2f} {med['ours'] / med['direct'] - 1:>+9.1%} "
              f"{med['explicit']:>12.2f} {med['torch']:>10.2f} {weights_mib:>12.1f}")


if __name__ == "__main__":
    main()
