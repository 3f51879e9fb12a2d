"""Does the KV cache pay off? Tokens per second generating 500 tokens with and without it.

Two model sizes (random weights: speed does not depend on what the model knows), greedy
decoding from a one-token prompt, context window 512 so nothing is cropped. Without a cache,
step t re-runs the model over all t tokens so far; with it, only the newest token is run
and attends over the cached keys and values. Also printed: the speed over the first and
the last 100 tokens, because the cache's advantage grows with the context.
Usage: python benchmarks/generate_speed.py [--quick]
"""
from __future__ import annotations

import sys
import time

import torch

from textbook_lm.generate import generate
from textbook_lm.gpt import GPT, GPTConfig

torch.manual_seed(0)
dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
N = 200 if "--quick" in sys.argv else 500
SIZES = {"small (4 x 128)": dict(n_layer=4, n_head=4, n_embd=128),
         "medium (6 x 384)": dict(n_layer=6, n_head=6, n_embd=384)}


def timed_tokens(model, n, use_cache):
    """Seconds to generate tokens 1..n, and seconds for the first and last 100 of them."""
    marks = {}
    for k in (100, n - 100, n):
        torch.manual_seed(0)
        t0 = time.perf_counter()
        generate(model, [0], k, temperature=0, use_cache=use_cache)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        marks[k] = time.perf_counter() - t0
    return marks[n], marks[100], marks[n] - marks[n - 100]


def main():
    print(f"device {dev}, greedy, {N} new tokens, vocabulary 65, context window 512")
    print(f"{'model':>18} {'params':>9} {'cache':>6} {'tok/s all':>10} {'tok/s first 100':>16} "
          f"{'tok/s last 100':>15} {'speed-up':>9}")
    for name, kw in SIZES.items():
        model = GPT(GPTConfig(vocab_size=65, block_size=512, **kw)).to(dev).eval()
        generate(model, [0], 10)                     # warm-up
        rows = {c: timed_tokens(model, N, c) for c in (False, True)}
        for cache in (False, True):
            total, first, last = rows[cache]
            print(f"{name:>18} {model.num_params():>9,} {str(cache):>6} {N / total:>10.0f} {100 / first:>16.0f} "
                  f"{100 / last:>15.0f} {rows[False][0] / total if cache else 1.0:>8.1f}x")


if __name__ == "__main__":
    main()
