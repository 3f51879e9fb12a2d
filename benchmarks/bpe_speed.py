"""BPE benchmark: training time of our incremental trainer vs the naive reference (same
merges), and compression against Hugging Face `tokenizers` trained on the same text.

    TEXTBOOK_LM_DATA=../shared/data python benchmarks/bpe_speed.py [--merges 1000]
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import regex

from textbook_lm import tokenize as T
from textbook_lm.data import corpora

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from reference_bpe import naive_merges  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--merges", type=int, default=1000)
    ap.add_argument("--min-frequency", type=int, default=2)
    args = ap.parse_args()
    text = corpora.tiny_shakespeare()
    n_bytes = len(text.encode("utf-8"))

    t0 = time.perf_counter()
    counts = Counter(regex.findall(T.GPT2_PATTERN, text))
    words, freqs = [list(w.encode()) for w in counts], list(counts.values())
    t_pre = time.perf_counter() - t0

    t0 = time.perf_counter()
    fast = T.learn_merges(words, freqs, args.merges, 256, args.min_frequency)
    t_fast = time.perf_counter() - t0
    t0 = time.perf_counter()
    slow = naive_merges(words, freqs, args.merges, 256, args.min_frequency)
    t_slow = time.perf_counter() - t0
    assert fast == slow, "the fast trainer must learn exactly the reference's merges"

    print(f"Tiny Shakespeare: {n_bytes:,} bytes, {len(counts):,} distinct pre-tokens; {len(fast)} merges")
    print(f"{'trainer':<28}{'seconds':>10}")
    print(f"{'pre-tokenize (shared)':<28}{t_pre:10.2f}")
    print(f"{'naive (recount every step)':<28}{t_slow:10.2f}")
    print(f"{'textbook_lm (incremental)':<28}{t_fast:10.2f}")
    print(f"speed-up: {t_slow / t_fast:.0f}x, identical merges: {fast == slow}")

    ours = T.BPETokenizer(fast)
    ours_tokens = len(ours.encode(text))
    print(f"\ncompression on the training text (bytes per token), vocabulary {ours.vocab_size}:")
    print(f"{'textbook_lm':<28}{n_bytes / ours_tokens:10.3f}")
    try:
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    except ImportError:
        print("Hugging Face tokenizers not installed: pip install tokenizers")
        return
    hf = Tokenizer(models.BPE())
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    hf.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=ours.vocab_size, min_frequency=args.min_frequency,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    t0 = time.perf_counter()
    hf.train_from_iterator([text], trainer)
    t_hf = time.perf_counter() - t0
    hf_tokens = len(hf.encode(text).ids)
    print(f"{'Hugging Face tokenizers':<28}{n_bytes / hf_tokens:10.3f}   (vocabulary {hf.get_vocab_size()}, trained in {t_hf:.2f} s)")
    print(f"difference: {100 * (hf_tokens - ours_tokens) / hf_tokens:+.2f}% tokens (ours vs HF; negative = ours longer)")


if __name__ == "__main__":
    main()
