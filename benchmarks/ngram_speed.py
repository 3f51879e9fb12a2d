"""n-gram benchmark: fit + score a 5-gram modified Kneser-Ney model on WikiText-2, and compare
speed with NLTK on a subset both can finish.

    TEXTBOOK_LM_DATA=../shared/data python benchmarks/ngram_speed.py [--nltk-sentences 300]

Prints a table; the figures quoted in notes and chapters come from this script.
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import time

from textbook_lm import metrics, ngram
from textbook_lm.data import corpora


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--order", type=int, default=5)
    ap.add_argument("--nltk-sentences", type=int, default=300, help="training sentences for the NLTK comparison")
    ap.add_argument("--nltk-test", type=int, default=20, help="test sentences for the NLTK comparison")
    args = ap.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")

    (train, test), t_load = timed(lambda: (corpora.wikitext2("train"), corpora.wikitext2("test")))
    counts, t_count = timed(lambda: ngram.NGramCounts(train, args.order))
    model, t_fit = timed(lambda: ngram.KneserNey(counts, args.order))
    score, t_score = timed(lambda: model.score(test))
    print(f"\nWikiText-2, {args.order}-gram interpolated modified Kneser-Ney "
          f"({metrics.count_tokens(train):,} training tokens, {score.n_tokens:,} test tokens)")
    print(f"{'step':<22}{'seconds':>10}")
    for step, t in [("read files", t_load), ("count n-grams", t_count), ("estimate (discounts)", t_fit),
                    ("score test set", t_score), ("fit + score", t_count + t_fit + t_score)]:
        print(f"{step:<22}{t:10.2f}")
    print(f"test perplexity {score.perplexity:.2f}  ({score.cross_entropy:.4f} nats/token)")

    try:
        from nltk.lm import KneserNeyInterpolated
        from nltk.lm.preprocessing import padded_everygram_pipeline
    except ImportError:
        print("\nnltk not installed: skipping the speed comparison")
        return
    sub, sub_test = train[: args.nltk_sentences], test[: args.nltk_test]
    n = 3

    def nltk_run():
        grams, vocab = padded_everygram_pipeline(n, sub)
        lm = KneserNeyInterpolated(n)
        lm.fit(grams, vocab)
        total, k = 0.0, 0
        for s in sub_test:
            padded = ["<s>"] * (n - 1) + s + ["</s>"]
            for i in range(n - 1, len(padded)):
                p = lm.score(padded[i], padded[i - n + 1:i])
                total += math.log(p) if p > 0 else 0.0
                k += 1
        return k

    def ours_run():
        m = ngram.KneserNey(ngram.NGramCounts(sub, n), n, discount=0.1)
        return m.score(sub_test).n_tokens

    k_nltk, t_nltk = timed(nltk_run)
    k_ours, t_ours = timed(ours_run)
    print(f"\nSpeed vs NLTK KneserNeyInterpolated: trigram, {metrics.count_tokens(sub):,} training tokens, "
          f"{k_ours:,} test tokens scored")
    print(f"{'implementation':<16}{'seconds':>10}{'test tokens/s':>16}")
    print(f"{'NLTK':<16}{t_nltk:10.2f}{k_nltk / t_nltk:16,.0f}")
    print(f"{'textbook_lm':<16}{t_ours:10.3f}{k_ours / t_ours:16,.0f}")
    print(f"speed-up (fit + score): {t_nltk / t_ours:,.0f}x")


if __name__ == "__main__":
    main()
