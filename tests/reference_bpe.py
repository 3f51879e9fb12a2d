"""A slow, obviously-correct BPE trainer: recount every pair after every merge.

Used by tests/test_tokenize.py and benchmarks/bpe_speed.py as the reference the fast,
incremental trainer in textbook_lm.tokenize must agree with exactly.
"""
from collections import Counter


def naive_merges(words, freqs, n_merges, next_id, min_frequency=2):
    words = [list(w) for w in words]
    merges = []
    for step in range(n_merges):
        counts = Counter()
        for w, f in zip(words, freqs):
            for pair in zip(w, w[1:]):
                counts[pair] += f
        if not counts:
            break
        best = max(counts.items(), key=lambda kv: (kv[1], tuple(-x for x in kv[0])))  # most frequent, then smallest pair
        if best[1] < min_frequency:
            break
        pair, new = best[0], next_id + step
        merges.append(pair)
        for k, w in enumerate(words):
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == pair:
                    out.append(new)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            words[k] = out
    return merges
