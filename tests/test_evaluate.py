"""Chapter 12's metrics against hand counts and against sacreBLEU (a test extra)."""
import math
import random

import numpy as np
import pytest

from textbook_lm import evaluate as ev
from textbook_lm.data import tinylang


def _corpus(n=60, seed=0):
    """Hypotheses made from TinyLang references by dropping, swapping and replacing words,
    plus sentences with punctuation, numbers and entities for the tokenizer."""
    rng = random.Random(seed)
    refs = [" ".join(s.tokens) for s in tinylang.TinyLang().sample(n, seed=seed)]
    words = sorted({w for r in refs for w in r.split()})
    hyps = []
    for r in refs:
        w = r.split()
        if rng.random() < 0.3 and len(w) > 2:
            del w[rng.randrange(len(w))]
        if rng.random() < 0.3:
            w[rng.randrange(len(w))] = rng.choice(words)
        if rng.random() < 0.2 and len(w) > 3:
            i = rng.randrange(len(w) - 1)
            w[i], w[i + 1] = w[i + 1], w[i]
        hyps.append(" ".join(w))
    refs += ["The cat, which costs $3.50, sat on the mat.", "It's 1,000-2,000 km (approx.) &amp; more!",
             "Don't stop: e-mail me at 10:30 -- \"now\"."]
    hyps += ["The cat which costs $3.50 sat on a mat .", "It is 1,000-2,000 km & more!",
             "Do not stop: email me at 10:30 \"now\"."]
    return hyps, refs


def test_bleu_equals_sacrebleu():
    sacrebleu = pytest.importorskip("sacrebleu")
    hyps, refs = _corpus()
    ours = ev.bleu(hyps, refs)
    theirs = sacrebleu.corpus_bleu(hyps, [refs])
    assert ours["score"] == pytest.approx(theirs.score, abs=1e-6)
    assert ours["brevity_penalty"] == pytest.approx(theirs.bp, abs=1e-9)
    assert (ours["hyp_len"], ours["ref_len"]) == (theirs.sys_len, theirs.ref_len)
    assert ours["precisions"] == pytest.approx(theirs.precisions, abs=1e-9)
    for line in refs[-3:] + hyps[-3:]:
        assert " ".join(ev.tokenize_13a(line)) == sacrebleu.tokenizers.tokenizer_13a.Tokenizer13a()(line)


def test_bleu_with_two_references_short_output_and_a_missing_order_equals_sacrebleu():
    sacrebleu = pytest.importorskip("sacrebleu")
    hyps = ["the dog sees the cat", "a bird", "many farmers sing loudly today"]
    r1 = ["the dog sees a cat today", "a small bird sings", "many farmers sing"]
    r2 = ["the dogs see the cat", "the bird", "many farmers sing loudly"]
    ours = ev.bleu(hyps, [[a, b] for a, b in zip(r1, r2)])
    theirs = sacrebleu.corpus_bleu(hyps, [r1, r2])
    assert ours["score"] == pytest.approx(theirs.score, abs=1e-6)
    short = ev.bleu(["a bird"], ["a small bird sings"])            # no 3- or 4-gram match: smoothed
    assert short["score"] == pytest.approx(sacrebleu.corpus_bleu(["a bird"], [["a small bird sings"]]).score,
                                           abs=1e-6)


def test_bleu_by_hand():
    # 6 hypothesis words, reference of 7: BP = exp(1 - 7/6); every n-gram matches.
    out = ev.bleu(["the cat sat on the mat"], ["the cat sat on the mat today"], tokenize=str.split)
    assert out["brevity_penalty"] == pytest.approx(math.exp(1 - 7 / 6))
    assert out["precisions"] == [100.0] * 4
    assert out["score"] == pytest.approx(100 * math.exp(1 - 7 / 6))
    # clipping: "the the the" against "the cat": one "the" counts
    assert ev.bleu(["the the the"], ["the cat"], tokenize=str.split)["precisions"][0] == pytest.approx(100 / 3)


def test_chrf_equals_sacrebleu():
    sacrebleu = pytest.importorskip("sacrebleu")
    hyps, refs = _corpus(seed=1)
    assert ev.chrf(hyps, refs) == pytest.approx(sacrebleu.corpus_chrf(hyps, [refs]).score, abs=1e-6)
    assert ev.chrf(["abc"], ["abc"]) == pytest.approx(100.0)


def test_f1_equals_a_hand_count():
    y_true = [0, 0, 0, 1, 1, 2]
    y_pred = [0, 1, 0, 1, 2, 2]
    out = ev.precision_recall_f1(y_true, y_pred)
    # class 0: tp 2, predicted 2, actual 3 -> p 1, r 2/3, f1 0.8; class 1: tp 1, predicted 2, actual 2 -> 0.5
    # class 2: tp 1, predicted 2, actual 1 -> p 0.5, r 1, f1 2/3
    assert out["f1"] == pytest.approx([0.8, 0.5, 2 / 3])
    assert out["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert out["accuracy"] == pytest.approx(4 / 6)
    assert ev.confusion_matrix(y_true, y_pred).tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]


def test_exact_match_and_token_f1():
    assert ev.exact_match("The Eiffel Tower!", "eiffel tower") == 1.0
    assert ev.exact_match("a tower", ["Eiffel Tower", "tower"]) == 1.0
    assert ev.token_f1("the red big dog", "big red dog barks") == pytest.approx(2 * (3 / 3) * (3 / 4) / (1 + 3 / 4))
    assert ev.token_f1("cat", "dog") == 0.0


def test_ece_equals_the_hand_value():
    conf = [0.95, 0.95, 0.95, 0.95, 0.55, 0.55]
    ok = [1, 1, 1, 0, 1, 0]
    # bin 0.9-1.0: 4 items, accuracy 0.75, confidence 0.95 -> 0.2; bin 0.5-0.6: 2 items, 0.5 vs 0.55 -> 0.05
    assert ev.expected_calibration_error(conf, ok) == pytest.approx((4 * 0.2 + 2 * 0.05) / 6)
    assert ev.expected_calibration_error([1.0, 1.0], [1, 1]) == 0.0


def test_bits_per_character_of_a_uniform_model_is_log2_of_the_alphabet():
    text = "hello world"
    V = 27
    assert ev.bits_per_char(len(text) * math.log(V), text) == pytest.approx(math.log2(V))
    assert ev.bits_per_byte(10 * math.log(2) * 8, "水" * 10) == pytest.approx(8 / 3)   # 3 bytes a character


def test_gpt3_training_compute_from_6nd():
    c = ev.training_flops(175e9, 300e9)
    assert abs(c / 3.14e23 - 1) < 0.01
    alloc = ev.chinchilla_allocation(c)
    assert alloc["tokens"] == pytest.approx(20 * alloc["params"])
    assert ev.training_flops(alloc["params"], alloc["tokens"]) == pytest.approx(c)
    assert ev.flops_per_token(100, n_layer=2, n_ctx=8, d_model=4, training=False) == 2 * 100 + 2 * 2 * 8 * 4


def test_bootstrap_and_paired_test():
    rng = np.random.default_rng(0)
    a = rng.normal(0.6, 0.1, 200)
    m, lo, hi = ev.bootstrap_ci(a, n_boot=2000)
    assert lo < m < hi and hi - lo == pytest.approx(2 * 1.96 * 0.1 / math.sqrt(200), rel=0.25)
    better = ev.paired_bootstrap(a + 0.05, a + rng.normal(0, 0.01, 200), n_boot=2000)
    assert better["p_value"] < 0.01 and better["low"] > 0
    same = ev.paired_bootstrap(a, a + rng.normal(0, 0.05, 200), n_boot=2000)
    assert same["p_value"] > 0.05


def test_power_law_fit_recovers_the_exponent_with_and_without_a_floor():
    n = np.array([1e3, 1e4, 1e5, 1e6])
    out = ev.fit_power_law(n, 3.0 * n ** -0.25)
    assert out["a"] == pytest.approx(3.0) and out["alpha"] == pytest.approx(0.25)
    out = ev.fit_power_law(n, 1.5 + 40.0 * n ** -0.4, floor=1.5)
    assert out["a"] == pytest.approx(40.0) and out["alpha"] == pytest.approx(0.4)
    with pytest.raises(ValueError):
        ev.fit_power_law(n, 1.0 + n ** -0.4, floor=2.0)       # below the floor: no logarithm
    with pytest.raises(ValueError):
        ev.fit_power_law([5.0, 5.0], [1.0, 2.0])             # one distinct x: no slope


def test_ngram_overlap_flags_shared_ngrams_and_checks_short_items_whole():
    train = [list("abcdefgh"), list("xy")]
    test = [list("zzcdefzz"), list("cdez"), list("xy"), list("qrstuv")]
    out = ev.ngram_overlap(test, train, n=4)
    assert out["flagged"] == [0, 2] and out["share"] == pytest.approx(0.5)
    assert ev.ngram_overlap(test, train, n=3)["flagged"] == [0, 1, 2]


def test_weat_by_hand_and_its_permutation_p_value():
    # two dimensions: targets X point towards attribute A, targets Y towards B
    A, B = np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])
    X = np.array([[1.0, 0.1], [1.0, 0.2], [1.0, 0.0]])
    Y = np.array([[0.1, 1.0], [0.2, 1.0], [0.0, 1.0]])
    unit = lambda v: v / np.linalg.norm(v, axis=1, keepdims=True)
    s = lambda W: unit(W) @ unit(A).T - unit(W) @ unit(B).T
    sx, sy = s(X).ravel(), s(Y).ravel()
    out = ev.weat(X, Y, A, B, n_perm=5000)
    assert out["statistic"] == pytest.approx(sx.sum() - sy.sum())
    assert out["effect_size"] == pytest.approx((sx.mean() - sy.mean()) / np.concatenate([sx, sy]).std(ddof=1))
    # of the 20 ways to split 6 targets into halves, only the observed one is as extreme: p ~ 1/20
    assert out["p_value"] == pytest.approx(1 / 20, abs=0.015)
    assert ev.weat(Y, X, A, B, n_perm=2000)["p_value"] > 0.9
    with pytest.raises(ValueError):
        ev.weat(X, Y[:2], A, B)


def test_bleu_and_chrf_equal_sacrebleu_on_the_chat_models_answers():
    """The issue's bar: on a corpus of our own outputs (Chapter 10's SFT model answering held-out
    prompts, sampled), against the bare right answers."""
    sacrebleu = pytest.importorskip("sacrebleu")
    from textbook_lm import hub
    from textbook_lm.experiments import align as runs

    prompts = runs.held_out()[:120]
    model = hub.load("instruct-sft")[0]
    hyps = [" ".join(w for w in r if w != "<eos>") for r in runs.respond(model, prompts, seed=3)]
    refs = [" ".join([*e.answer, "."]) for e in prompts]
    assert len(set(hyps)) > 50 and sum(h != r for h, r in zip(hyps, refs)) > 20      # varied, not all exact
    assert ev.bleu(hyps, refs)["score"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score, abs=1e-6)
    assert ev.chrf(hyps, refs) == pytest.approx(sacrebleu.corpus_chrf(hyps, [refs]).score, abs=1e-6)
