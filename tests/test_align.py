"""Chapter 10's alignment algorithms, checked by hand on tiny models."""
import math

import pytest
import torch

from textbook_lm import align
from textbook_lm.gpt import GPT, GPTConfig


def tiny(seed=0, vocab=11):
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=vocab, block_size=16, n_layer=1, n_head=2, n_embd=16)).eval()


def test_make_batch_right_pads_and_marks_the_response():
    ids, resp = align.make_batch([[5, 6], [7]], [[8, 1], [9, 9, 1]])
    assert ids.tolist() == [[5, 6, 8, 1], [7, 9, 9, 1]]
    assert resp.tolist() == [[False, False, True, True], [False, True, True, True]]
    with pytest.raises(ValueError, match="as many"):
        align.make_batch([[1]], [])
    with pytest.raises(ValueError, match="empty"):
        align.make_batch([[]], [[1]])


def test_sequence_logprob_equals_a_hand_written_loop():
    model = tiny()
    ids, resp = align.make_batch([[2, 3, 4], [5]], [[6, 1], [7, 8, 1]])
    got = align.sequence_logprob(model, ids, resp)
    for b, (p, r) in enumerate((([2, 3, 4], [6, 1]), ([5], [7, 8, 1]))):
        seq, total = p + r, 0.0
        for t in range(len(p), len(seq)):
            logits = model(torch.tensor([seq[:t]]))[0, -1]
            total += torch.log_softmax(logits, -1)[seq[t]].item()
        assert got[b].item() == pytest.approx(total, abs=1e-5)


def test_masked_sft_loss_ignores_prompt_tokens_exactly():
    model = tiny()
    ids, resp = align.make_batch([[2, 3, 4]], [[6, 1]])
    loss = align.sft_loss(model, ids, resp)
    other = ids.clone()
    other[0, 1] = 9                  # change a prompt token that is a *target* (position 1) ...
    lp = align.token_logprobs(model, ids)
    assert loss.item() == pytest.approx(-(lp[0, 3] + lp[0, 4]).item() / 2, abs=1e-6)
    # ... the masked loss still depends on it only as context, never as a target
    lp2 = align.token_logprobs(model, other)
    assert align.sft_loss(model, other, resp).item() == pytest.approx(-(lp2[0, 3] + lp2[0, 4]).item() / 2, abs=1e-6)
    unmasked = align.sft_loss(model, ids, resp, mask_prompt=False)
    assert unmasked.item() == pytest.approx(-lp[0, 1:5].mean().item(), abs=1e-6)
    with pytest.raises(ValueError, match="no token"):
        align.sft_loss(model, ids, torch.zeros_like(resp))


def test_dpo_loss_is_ln2_when_the_policy_is_the_reference():
    lp = torch.tensor([-3.0, -5.0, -1.5])
    loss, st = align.dpo_loss(lp, lp - 1, lp, lp - 1, beta=0.1)
    assert loss.item() == pytest.approx(math.log(2), abs=1e-7)
    assert st["margin"] == 0 and st["accuracy"] == 0
    # raising the chosen response's log-ratio lowers the loss; the implicit reward is beta x log-ratio
    loss2, st2 = align.dpo_loss(lp + 2, lp - 1, lp, lp - 1, beta=0.1)
    assert loss2 < loss and st2["chosen_reward"] == pytest.approx(0.2) and st2["accuracy"] == 1
    with pytest.raises(ValueError, match="beta"):
        align.dpo_loss(lp, lp, lp, lp, beta=0)


def test_bradley_terry_loss_and_its_gradient():
    rc = torch.tensor([1.0, 0.2, -0.5], dtype=torch.double, requires_grad=True)
    rr = torch.tensor([0.0, 0.4, -2.0], dtype=torch.double, requires_grad=True)
    want = sum(-math.log(1 / (1 + math.exp(-(a - b)))) for a, b in zip(rc.tolist(), rr.tolist())) / 3
    assert align.bradley_terry_loss(rc, rr).item() == pytest.approx(want)
    assert torch.autograd.gradcheck(align.bradley_terry_loss, (rc, rr))
    # d loss / d r_chosen = -(1 - sigmoid(rc - rr)) / B
    align.bradley_terry_loss(rc, rr).backward()
    assert rc.grad.tolist() == pytest.approx((-(1 - torch.sigmoid(rc - rr)) / 3).tolist())


def test_reward_model_reads_the_last_real_token():
    rm = align.RewardModel(tiny())
    torch.nn.init.normal_(rm.head.weight)
    ids, resp = align.make_batch([[2, 3], [2, 3]], [[4, 1], [4]])
    lengths = (ids != 0).sum(1)
    r = rm(ids, lengths)
    assert r[1].item() == pytest.approx(rm(ids[1:, :3], torch.tensor([3]))[0].item(), rel=1e-5)
    assert r[0] != r[1]


def test_a_reward_model_saves_and_loads_through_the_hub(tmp_path):
    from textbook_lm import hub
    rm = align.RewardModel(tiny())
    torch.nn.init.normal_(rm.head.weight)
    hub.save(rm, tmp_path / "rm")
    back = hub.load(tmp_path / "rm").obj
    ids = torch.tensor([[2, 3, 4, 1]])
    assert isinstance(back, align.RewardModel)
    assert back(ids, torch.tensor([4])).item() == pytest.approx(rm(ids, torch.tensor([4])).item(), rel=1e-6)


def test_token_kl_is_nonnegative_and_zero_for_identical_policies():
    torch.manual_seed(1)
    a, b = torch.randn(4, 6, 11), torch.randn(4, 6, 11)
    assert (align.token_kl(a, b) >= 0).all() and align.token_kl(a, a).abs().max() < 1e-6
    p, q = a[0, 0].softmax(-1), b[0, 0].softmax(-1)
    assert align.token_kl(a, b)[0, 0].item() == pytest.approx((p * (p / q).log()).sum().item(), abs=1e-5)


def test_gae_matches_a_hand_computed_example():
    r = torch.tensor([[0.0, 0.0, 0.5, 1.0, 0.0]])
    v = torch.tensor([[9.0, 0.2, 0.4, 0.6, 9.0]])
    m = torch.tensor([[False, True, True, True, False]])
    adv, ret = align.gae(r, v, m, gamma=0.9, lam=0.5)
    d3 = 1.0 - 0.6                              # last step: V after it is 0
    d2 = 0.5 + 0.9 * 0.6 - 0.4
    d1 = 0.0 + 0.9 * 0.4 - 0.2
    a3, a2 = d3, d2 + 0.45 * d3
    a1 = d1 + 0.45 * a2
    assert adv.tolist()[0] == pytest.approx([0, a1, a2, a3, 0])
    assert ret.tolist()[0] == pytest.approx([0, a1 + 0.2, a2 + 0.4, a3 + 0.6, 0])


def test_ppo_loss_ratio_is_one_and_nothing_is_clipped_before_an_update():
    torch.manual_seed(2)
    lp, adv, v = torch.randn(3, 5), torch.randn(3, 5), torch.randn(3, 5)
    m = torch.ones(3, 5, dtype=torch.bool)
    loss, st = align.ppo_loss(lp, lp, adv, v, v, v + adv, m)
    assert st["ratio"] == pytest.approx(1) and st["clip_fraction"] == 0 and st["approx_kl"] == pytest.approx(0)
    assert st["policy_loss"] == pytest.approx(-adv.mean().item(), abs=1e-6)
    # a ratio far above 1 + eps with a positive advantage is clipped: no more gain
    big, st2 = align.ppo_loss(lp + 1, lp, adv.abs(), v, v, v, m)
    assert st2["clip_fraction"] == 1 and st2["policy_loss"] == pytest.approx(-1.2 * adv.abs().mean().item(), rel=1e-5)


def test_sample_groups_prompts_by_length_and_stops_at_eos():
    model = tiny(3)
    prompts = [[2, 3], [4], [5, 6], [7, 8, 9]]
    out = align.sample(model, prompts, max_new_tokens=6, eos=1, seed=0)
    assert len(out) == 4 and all(1 <= len(r) <= 6 for r in out)
    assert all(r[-1] == 1 or len(r) == 6 for r in out) and all(1 not in r[:-1] for r in out)
    assert out == align.sample(model, prompts, max_new_tokens=6, eos=1, seed=0)      # seeded


def test_best_of_n_keeps_the_highest_scoring_response():
    model = tiny(4)
    score = lambda ps, rs: torch.tensor([float(len(r)) for r in rs])                   # longer is better
    prompts = [[2, 3], [4, 5]]
    best = align.best_of_n(model, score, prompts, n=4, max_new_tokens=6, eos=1, seed=0)
    cands = [align.sample(model, prompts, 6, 1, seed=1000 * j) for j in range(4)]
    assert [len(b) for b in best] == [max(len(c[i]) for c in cands) for i in range(2)]


def test_one_ppo_round_logs_healthy_first_minibatch_and_moves_toward_the_reward():
    torch.manual_seed(5)
    policy = tiny(5)
    ref = tiny(5)
    model = align.PolicyValue(policy)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    cfg = align.PPOConfig(max_new_tokens=4, minibatch=8, epochs=4, kl_coef=0.0)
    prompts = [[2, 3]] * 32
    want = 7                                                          # reward: how many 7s were written
    score = lambda ps, rs: torch.tensor([float(r.count(want)) for r in rs])
    first = align.ppo_round(model, ref, score, prompts, opt, cfg, eos=1, seed=0)
    assert first["first_ratio"] == pytest.approx(1, abs=1e-5) and first["first_clip_fraction"] == 0
    assert first["kl"] == pytest.approx(0, abs=1e-5)                  # policy = reference at the start
    for i in range(1, 15):
        last = align.ppo_round(model, ref, score, prompts, opt, cfg, eos=1, seed=i)
    assert last["score"] > first["score"] + 0.5 and last["kl"] > 0
