"""Facts Chapter 12 relies on (its fact-check boxes), measured on the book's models and data."""
import numpy as np
import pytest

from textbook_lm import evaluate as ev
from textbook_lm import hub, ngram
from textbook_lm import tokenize as T
from textbook_lm.data import corpora, tinylang
from textbook_lm.experiments import evaluate as ex


def test_per_token_perplexity_and_bits_per_character_rank_tokenizers_differently(data_dir):
    text = corpora.tiny_shakespeare()
    cut = int(0.9 * len(text))
    train, val = text[:cut], text[cut:]
    scores = {}
    for name, tok, order in (("chars", T.CharTokenizer.train(text), 4),
                             ("bpe", T.BPETokenizer.train(train, 256 + 250), 3)):
        s = ngram.fit([tok.tokens(train)], order, "kn").score([tok.tokens(val)])
        scores[name] = (s.perplexity, ev.bits_per_char(s.nll, val))
    assert scores["chars"][0] < scores["bpe"][0] / 3             # far lower perplexity per token ...
    assert scores["bpe"][1] < scores["chars"][1]                 # ... yet more bits per character


def test_a_higher_test_accuracy_is_not_significantly_better():
    poets = hub.load("eval-finetune").obj["poets/tang-bert"]
    per_item = {k: np.mean([r["correct"] for r in poets[k]], axis=0) for k in ("pretrained", "scratch")}
    assert per_item["scratch"].mean() > per_item["pretrained"].mean()
    p = ev.paired_bootstrap(per_item["scratch"], per_item["pretrained"])
    assert p["low"] < 0 < p["high"] and p["p_value"] > 0.05
    accs = sorted(np.mean(r["correct"]) for r in poets["pretrained"])
    assert accs[-1] - accs[0] > per_item["scratch"].mean() - per_item["pretrained"].mean()


def test_ngram_overlap_flags_items_of_clean_splits(data_dir):
    wt = {s: corpora.wikitext2(s) for s in ("train", "test")}
    assert ev.ngram_overlap(wt["test"], wt["train"], 13)["share"] > 0.05
    tl = tinylang.benchmark()
    assert ev.ngram_overlap(tl.test, tl.train, 8)["share"] > 0.1


def test_a_leaked_test_set_lowers_the_score_below_the_entropy_floor():
    out = ex.contamination_gpt(steps=150)
    assert out["before"]["test"] > out["floor"]["test"] > out["after"]["test"]
    assert out["after"]["valid"] > out["before"]["valid"]


def test_out_of_range_the_chat_model_is_confident_and_wrong():
    model, _, _ = hub.load("instruct-sft")
    out = ex.hallucination(model, letters=(5, 6), n=90)
    assert out[5]["accuracy"] > 0.95
    six = out[6]
    wrong = [c for c, ok in zip(six["conf"], six["right"]) if not ok]
    assert six["accuracy"] < 0.5 and six["confidence"] > 0.7
    assert sum(c > 0.9 for c in wrong) > len(wrong) / 2


def test_two_vector_sets_of_the_same_text_disagree_on_bias():
    from textbook_lm import embeddings

    w = {n: ex.weat_sets(embeddings.from_pretrained(f"wikitext2-{n}"), n_perm=2000) for n in ("sgns", "glove")}
    career, science = "male / female vs career / family", "male / female vs science / arts"
    assert w["sgns"][career]["effect_size"] - w["glove"][career]["effect_size"] > 0.3
    assert w["sgns"][science]["effect_size"] * w["glove"][science]["effect_size"] < 0
    assert all(w[n]["control: numbers vs numbers"]["p_value"] > 0.05 for n in w)
