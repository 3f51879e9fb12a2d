"""Chapter 10's pipeline end to end on a few steps (the shipped models use the same code)."""
import math

import pytest
import torch

from textbook_lm import align
from textbook_lm.data import instruct as w
from textbook_lm.experiments import align as xa


@pytest.fixture(scope="module")
def stages():
    base, hist = xa.pretrain(steps=30)
    tuned, sft_hist = xa.sft(base, steps=20)
    return base, hist, tuned, sft_hist


def test_sft_data_masks_the_prompt_so_the_loop_loss_is_align_sft_loss(stages):
    _, _, tuned, _ = stages
    x, y = xa.SFTData(seed=3).batch(8, 40, generator=torch.Generator().manual_seed(0))
    ids = torch.cat([x, torch.full((len(x), 1), w.PAD)], 1)
    ids[:, 1:] = torch.where(y != -100, y, ids[:, 1:])
    resp = torch.zeros_like(ids, dtype=torch.bool)
    resp[:, 1:] = y != -100
    for row in range(len(x)):
        prompt_end = int(resp[row].nonzero()[0])
        assert w.decode(ids[row, prompt_end - 1:prompt_end].tolist()) == ["<bot>"]
    loop = torch.nn.functional.cross_entropy(tuned(x).flatten(0, 1), y.flatten(), ignore_index=-100)
    assert loop.item() == pytest.approx(align.sft_loss(tuned, ids, resp).item(), rel=1e-5)
    _, y_all = xa.SFTData(mask_prompt=False, seed=3).batch(8, 40, generator=torch.Generator().manual_seed(0))
    assert (y_all != -100).sum() > (y != -100).sum()


def test_every_stage_runs_and_is_scored_by_the_gold_judge(stages):
    base, hist, tuned, sft_hist = stages
    assert hist.step[-1] == 30 and sft_hist.step[-1] == 20
    exs = w.prompts(12, seed=1)
    ev = xa.evaluate(tuned, exs)
    assert len(ev["responses"]) == 12 and ev["interval"][0] <= ev["gold"] <= ev["interval"][1]
    assert 0 <= xa.knowledge(base, w.NAMES[:4]) <= 1
    pairs = xa.preference_pairs(tuned, 16, seed=2)
    assert all(p[0].kind in w.TASKS and set(p[1]) | set(p[2]) <= set(w.VOCAB) for p in pairs)
    rm, losses = xa.train_reward_model(tuned, pairs, epochs=1, batch=8)
    assert len(losses) == 2 and losses[0] == pytest.approx(math.log(2), abs=1e-6)   # zero head: ln 2
    assert 0 <= xa.pair_accuracy(rm, pairs) <= 1
    dpo, logs = xa.run_dpo(tuned, pairs, epochs=1, batch=8)
    assert logs[0]["loss"] == pytest.approx(math.log(2), abs=1e-5)                  # policy = reference
    ppo, plogs = xa.run_ppo(tuned, rm, rounds=2, prompts_per_round=8, track=exs[:4], track_every=1)
    assert plogs[0]["first_ratio"] == pytest.approx(1, abs=1e-4) and "gold" in plogs[-1]
    best = xa.best_of(tuned, rm, exs[:4], n=2)
    assert len(best) == 4
    assert xa.kl_to(tuned, tuned, exs, ev["responses"]) == pytest.approx(0, abs=1e-5)
    assert xa.kl_to(dpo, tuned, exs, ev["responses"]) >= 0
    rate, (lo, hi) = xa.win_rate(exs, ev["responses"], ev["responses"])
    assert rate == 0.5 and lo == hi == 0.5
