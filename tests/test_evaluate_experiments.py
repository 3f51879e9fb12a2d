"""Chapter 12's experiments: the whole-book table, the scaling fit, the probes."""
import math

import numpy as np
import pytest

from textbook_lm import hub, leaderboard
from textbook_lm.experiments import evaluate as ex


@pytest.fixture(scope="module")
def models(data_dir):
    return ex.book_models()


def test_every_model_trained_in_the_book_is_on_the_whole_table(models):
    shipped = {n for n, k in hub.available().items() if k not in ("result", "Tokenizer")}
    assert shipped <= {m["artefact"] for m in models if m["artefact"]}
    board = leaderboard.load()
    entries = {(e.benchmark, e.split, e.model) for e in board.entries if e.kind == "model"}
    rows = {(m["benchmark"], m["model"]) for m in models}
    assert {(f"{b} ({s})", m) for b, s, m in entries} <= rows
    assert {m["chapter"] for m in models} >= set(range(1, 12)) - {2, 5, 6}
    assert len(models) == len(entries) + sum(m["measure"] == "accuracy" for m in models)


def test_comparable_units_and_training_compute(models, data_dir):
    board = leaderboard.load()
    chars = ex.scored_characters("wikitext-2", "test")
    e = board.get("LSTM (adaptive softmax, 64/256)", "wikitext-2")
    row = next(m for m in models if m["model"] == e.model)
    assert row["measure"] == "bits/char"
    assert row["value"] * math.log(2) * chars == pytest.approx(e.nll)
    assert 4 < chars / e.n_tokens < 6                             # WikiText-2: about 5 characters a word
    teacher = next(m for m in models if m["model"] == "GPT teacher (6 x 128)")
    assert teacher["measure"] == "gap to floor, nats/token" and 0 < teacher["value"] < 0.05
    assert teacher["train_flops"] == pytest.approx(6 * teacher["params"] * teacher["train_tokens"])
    assert all(m["train_flops"] is None for m in models if "Kneser-Ney" in m["model"])
    # a published WikiText-2 perplexity converts with the same words and characters
    gpt2 = next(a for a in ex.anchors_bits_per_char() if a["model"].startswith("GPT-2"))
    assert gpt2["bits_per_char"] * math.log(2) * chars / e.n_tokens == pytest.approx(math.log(18.34))


def _synthetic_runs(alpha=0.1, noise=0.01, seed=0):
    rng = np.random.default_rng(seed)
    return [{"params": n, "final_val_loss": 5 * n ** -alpha * math.exp(noise * rng.standard_normal()),
             "seed": s} for n in (1e3, 1e4, 1e5, 1e6) for s in range(3)]


def test_scaling_fit_interval_covers_the_true_exponent_and_narrows_with_less_noise():
    wide = ex.scaling_fit(_synthetic_runs(noise=0.05), n_boot=500)
    narrow = ex.scaling_fit(_synthetic_runs(noise=0.005), n_boot=500)
    for f in (wide, narrow):
        assert f["low"] <= 0.1 <= f["high"] and f["n_runs"] == 12 and f["n_sizes"] == 4
    assert narrow["high"] - narrow["low"] < (wide["high"] - wide["low"]) / 3
    assert ex.scaling_fit(_synthetic_runs(noise=0.0), n_boot=10)["alpha"] == pytest.approx(0.1)


def test_the_shipped_sweep_has_every_size_and_seed_and_a_falling_frontier():
    runs = hub.load("eval-scaling").obj["runs"]
    assert sorted({(r["n_layer"], r["n_head"], r["n_embd"]) for r in runs}) == sorted(ex.SCALING_SIZES)
    assert {r["seed"] for r in runs} == set(ex.SCALING_SEEDS) and len(runs) == 24
    front = ex.compute_frontier(runs)["frontier"]
    assert all(b[1] < a[1] and b[0] >= a[0] for a, b in zip(front, front[1:]))
    fit = ex.scaling_fit(runs, n_boot=200)
    assert 0 < fit["low"] < fit["alpha"] < fit["high"] < 0.2


def test_template_probe_normalises_by_the_prior():
    bert, tok, _ = hub.load("wikitext2-bert")
    out = ex.template_probe(bert, tok, occupations=["nurse", "doctor", "xylophonist"])
    assert set(out["raw"]) <= {"nurse", "doctor"} and out["raw"]       # multi-piece words skipped
    for job, p in out["raw"].items():
        expected = math.log(p["he"] / p["she"]) - math.log(out["prior"]["he"] / out["prior"]["she"])
        assert out["log_bias"][job] == pytest.approx(expected)
    with pytest.raises(ValueError):
        ex.template_probe(bert, tok, words=("he", "she", "they"))


def test_hallucination_probe_in_the_training_range():
    model, _, _ = hub.load("instruct-sft")
    out = ex.hallucination(model, letters=(3,), n=30)
    assert out[3]["accuracy"] == 1.0 and len(out[3]["conf"]) == 30
    assert all(0 < c <= 1 for c in out[3]["conf"]) and out[3]["confidence"] > 0.8


def test_weat_sets_report_missing_words_and_equal_target_sizes():
    from textbook_lm.embeddings import Vectors

    words = ["he", "him", "she", "her", "career", "work", "family", "home", "one", "seven"]
    v = Vectors(words, np.random.default_rng(0).standard_normal((len(words), 4)), {})
    out = ex.weat_sets(v, n_perm=200)
    assert set(out) == set(ex.WEAT_SETS)
    career = out["male / female vs career / family"]
    assert "his" in career["missing"] and 0 < career["p_value"] <= 1
    assert out["male / female vs science / arts"]["effect_size"] is None      # no science words at all
    assert out["control: numbers vs numbers"]["effect_size"] is None          # one number word per side
