"""Facts Chapter 9 relies on, measured on the shipped models (the chapter's bars)."""
import pytest

from textbook_lm import heads, hub, prompting
from textbook_lm.data import icl
from textbook_lm.experiments import icl as xicl


@pytest.fixture(scope="module")
def two():
    return hub.load("icl-2layer")


def test_few_shot_works_on_unseen_mappings_where_zero_shot_is_chance(two):
    model = two[0]
    acc = xicl.accuracy_by_shots(model, [0, 8], n=200)
    assert abs(acc[0] - 0.5) <= 0.05 and acc[8] >= 0.90
    one = xicl.accuracy_by_shots(hub.load("icl-1layer")[0], [8], n=200)
    assert abs(one[8] - 0.5) <= 0.10                      # one layer: no induction head, no ICL


def test_prompting_changes_no_weight_yet_changes_the_answer(two):
    model = two[0]
    before = prompting.checksum(model)
    acc = xicl.accuracy_by_shots(model, [0, 8], n=100)
    assert prompting.checksum(model) == before and acc[8] - acc[0] > 0.3


def test_icl_appears_with_the_induction_heads_in_training(two):
    probes = two[2]["probes"]
    steps = two[2]["val_step"]
    acc = dict(zip(steps, (p["accuracy_8shot"] for p in probes)))
    first = lambda key, level: next(s for s, p in zip(steps, probes) if p[key] >= level)
    # the induction heads form first (on the repeated runs) ...
    assert probes[0]["induction"] < 0.1 and probes[-1]["induction"] > 0.85
    jump = first("accuracy_8shot", 0.75)
    assert first("induction", 0.5) < jump
    # ... then few-shot accuracy jumps from near chance to over 0.85 within 200 steps
    assert acc[jump - 100] < 0.65 and acc[jump + 100] > 0.85
    one = hub.load("icl-1layer")[2]["probes"]
    assert max(p["induction"] for p in one) < 0.2 and max(p["accuracy_8shot"] for p in one) < 0.6


def test_the_induction_circuit_is_causal(two):
    model = two[0]
    maps = heads.attention_maps(model, icl.repeated_random(64, 20, seed=1))
    pm = heads.prefix_matching(maps, 20)
    assert all(pm[0] < 0.2) and all(pm[1] > 0.5)         # both layer-1 heads are induction heads
    top = xicl.top_heads(model)
    acc = lambda: xicl.accuracy_by_shots(model, [8], n=200)[8]
    full = acc()
    other0 = (0, 1 - top["previous"][1])
    for hs, near_chance in (([top["induction"]], True),                  # the top induction head
                            ([top["induction"], top["other"]], True),    # both layer-1 heads
                            ([top["previous"]], True),                   # the previous-token head
                            ([top["other"]], False),                     # a control in layer 1
                            ([other0], False)):                          # a control in layer 0
        with heads.ablate(model, hs):
            a = acc()
        assert (abs(a - 0.5) <= 0.10) if near_chance else (full - a < 0.05), (hs, a, full)
    copy = heads.copying(model)
    assert all(copy[1] > 0.5)                              # induction heads copy what they read


def test_the_seed_study_agrees_with_the_shipped_model_and_both_heads_are_needed_in_every_seed(two):
    study = hub.load("icl-seeds").obj
    row = next(r for r in study["runs"] if r["seed"] == xicl.SEED)
    model = two[0]
    assert row["nothing"] == pytest.approx(xicl.accuracy_by_shots(model, [8], n=200)[8], abs=0.03)
    assert row["heads"] == {k: list(v) for k, v in xicl.top_heads(model).items()}
    for r in study["runs"]:
        assert abs(r["both layer-1 heads"] - 0.5) <= 0.10 and abs(r["previous-token head"] - 0.5) <= 0.10


def test_a_model_trained_on_one_fixed_mapping_learns_it_in_its_weights_not_in_context():
    model, _, info = hub.load("icl-fixed")
    assert info["probes"][-1]["late_loss"] < 0.01          # it knows the fixed labels ...
    assert abs(xicl.accuracy_by_shots(model, [8], n=200)[8] - 0.5) <= 0.10   # ... not new ones


def test_chain_of_thought_beats_direct_answers_beyond_the_training_lengths():
    steps, direct = hub.load("cot-steps")[0], hub.load("cot-direct")[0]
    for hops in (4, 8):                                   # trained on 1 to 4 hops
        s, d = (xicl.chain_accuracy(m, w, hops, n=100) for m, w in ((steps, True), (direct, False)))
        assert s - d >= 0.20, (hops, s, d)


def test_an_unseen_separator_breaks_the_prompt_the_delimiter_does_not(two):
    model = two[0]
    data = icl.Episodes()
    acc = {str(t): prompting.evaluate(model, lambda r: data.prompt(r, 8, template=t), n=100, seed=2,
                                      encode=icl.encode).accuracy
           for t in (icl.Template("", ","), icl.Template("", "."), icl.Template(":", ","))}
    assert acc["x y ,"] >= 0.9 and acc["x y ."] >= 0.9 and acc["x : y ,"] < 0.6


def test_a_base_model_ignores_an_instruction_but_follows_demonstrations(two):
    acc = xicl.instruction_study(two[0], n=200)
    assert acc["8 demonstrations"] > 0.9 and abs(acc["instruction"] - 0.5) <= 0.15
    words = xicl.instruction({"bal": "red"}, "bal")
    assert words[-1] == "?" and all(w in icl.STOI for w in words)
