"""Chapter 9's package: the ICL data, prompts, likelihood scoring, calibration, head scores
and ablation."""
import math
import random

import pytest
import torch
import torch.nn.functional as F

from textbook_lm import heads, prompting
from textbook_lm.data import icl
from textbook_lm.gpt import GPT, GPTConfig


def _gpt(n_layer=2, seed=0):
    torch.manual_seed(seed)
    return GPT(GPTConfig(len(icl.VOCAB), block_size=72, n_layer=n_layer, n_head=2, n_embd=32)).eval()


def test_the_vocabulary_has_every_word_once():
    assert len(set(icl.VOCAB)) == len(icl.VOCAB) and len(icl.ITEMS) == 96
    assert icl.decode(icl.encode(["<bos>", "bal", "red"])) == ["<bos>", "bal", "red"]
    with pytest.raises(KeyError, match="not in the ICL vocabulary"):
        icl.encode(["hello"])


def test_episodes_put_targets_on_labels_only_and_follow_the_mapping():
    data = icl.Episodes(n_items=3, n_labels=2, templates=[icl.Template(":", ",")])
    x, y = data.sequence(random.Random(1), 40)
    words = icl.decode(x)
    assert words[0] == "<bos>" and len(x) == len(y) == 40
    scored = [i for i, t in enumerate(y) if t != -100]
    assert scored == list(range(2, 40, 4))                        # the label after each "item sep"
    pairs = {}
    for i in range(1, 36, 4):
        assert words[i] in icl.ITEMS and words[i + 1] in icl.SEPARATORS and words[i + 3] in icl.DELIMITERS
        assert pairs.setdefault(words[i], words[i + 2]) == words[i + 2]     # one label per item
    assert len(pairs) <= 3 and len(set(pairs.values())) <= 2
    xb, yb = data.batch(5, 24, generator=torch.Generator().manual_seed(0))
    assert xb.shape == yb.shape == (5, 24)
    plain = icl.Episodes()                                            # x y , : a label every 3 tokens
    x, y = plain.sequence(random.Random(2), 30)
    assert [i for i, t in enumerate(y) if t != -100] == list(range(1, 30, 3))
    assert all(icl.VOCAB[x[i + 1]] in icl.LABELS for i in range(1, 28, 3))
    mixed = icl.Episodes(repeats=1.0)
    x, y = mixed.batch(3, 40, generator=torch.Generator().manual_seed(0))
    for row, tgt in zip(x.tolist(), y.tolist()):
        period = row.index(row[1], 2) - 1                                  # the run's length
        assert row[1:1 + period] == row[1 + period:1 + 2 * period]     # a run, repeated
        first = next(i for i, t in enumerate(tgt) if t != -100)
        assert first == period + 1                                        # after the first repeat
    assert [w[0] for w in data.windows(24, 3)][0].shape == (1, 24)


def test_fixed_mapping_is_the_same_in_every_sequence():
    data = icl.Episodes(n_items=4, mapping="fixed", seed=3)
    rng = random.Random(0)
    for _ in range(20):
        for item, label in data.draw(rng).items():
            assert data.fixed[item] == label
    fresh = icl.Episodes(n_items=4)
    assert len({tuple(sorted(fresh.draw(rng).items())) for _ in range(50)}) == 50


def test_prompts_are_built_exactly_as_specified():
    demos = [("bal", "red"), ("kin", "blue"), ("bal", "red")]
    words = prompting.build(demos, "kin", sep="->", delim=";", labels={"red": "yes", "blue": "no"},
                            order=[2, 0, 1])
    assert words == ["<bos>", "bal", "->", "yes", ";", "bal", "->", "yes", ";", "kin", "->", "no", ";",
                     "kin", "->"]
    assert prompting.build([], "bal") == ["<bos>", "bal", ":"]
    assert prompting.build([("bal", "red")], "kin", sep="") == ["<bos>", "bal", "red", ",", "kin"]
    with pytest.raises(ValueError, match="permutation"):
        prompting.build(demos, "kin", order=[0, 0, 1])
    p = icl.Episodes(n_items=4, n_labels=2).prompt(random.Random(0), 5, template=icl.Template("is", "."),
                                                   labels=icl.HELD_OUT_LABELS)
    assert p.words[-1] == "is" and p.words[-2] in icl.ITEMS and len(p.words) == 1 + 4 * 5 + 2
    assert p.answer in p.candidates and len(p.candidates) == 2
    assert set(p.candidates) <= set(icl.HELD_OUT_LABELS)


def test_likelihood_scores_equal_a_hand_written_loop():
    model = _gpt()
    prompt = icl.encode(["<bos>", "bal", ":", "red", ",", "bal", ":"])
    cands = [icl.encode(["red"]), icl.encode(["blue", ","]), icl.encode(["owl"])]
    fast = prompting.score(model, prompt, cands)
    for c, got in zip(cands, fast):
        total, ctx = 0.0, list(prompt)
        for t in c:
            with torch.no_grad():
                logp = F.log_softmax(model(torch.tensor([ctx]))[0, -1], -1)
            total += float(logp[t])
            ctx.append(t)
        assert float(got) == pytest.approx(total, abs=1e-5)
    assert prompting.predict(model, prompt, cands) == int(fast.argmax())


def test_calibration_divides_out_the_content_free_bias():
    biased = torch.tensor([0.8, 0.2]).log()
    assert prompting.calibrate(biased, biased).exp().tolist() == pytest.approx([0.5, 0.5])
    out = prompting.calibrate(torch.tensor([0.6, 0.4]).log(), biased).exp()
    assert out[1] > out[0] and float(out.sum()) == pytest.approx(1.0)     # 0.6/0.8 < 0.4/0.2


def test_prompting_changes_no_weight():
    model = _gpt()
    before = prompting.checksum(model)
    ev = prompting.evaluate(model, lambda r: icl.Episodes().prompt(r, 4), n=10, encode=icl.encode,
                            calibrated=True)
    assert prompting.checksum(model) == before and 0 <= ev.accuracy <= 1 and ev.chance == 0.5
    with torch.no_grad():
        model.blocks[0].attn.out.bias[0] += 1e-3
    assert prompting.checksum(model) != before


def _hand_built_induction_maps(half=10, B=3):
    """Attention maps of an ideal previous-token head (layer 0) and an ideal induction head
    (layer 1) on <bos> s s, and of a uniform head beside each."""
    T = 1 + 2 * half
    prev = torch.zeros(T, T)
    prev[0, 0] = 1
    prev[torch.arange(1, T), torch.arange(0, T - 1)] = 1
    ind = torch.tril(torch.ones(T, T)) / torch.arange(1, T + 1)[:, None]     # uniform where no match
    for q in range(half + 1, 2 * half):
        ind[q] = 0
        ind[q, q - half + 1] = 1
    uniform = torch.tril(torch.ones(T, T)) / torch.arange(1, T + 1)[:, None]
    maps = torch.stack([torch.stack([prev, uniform]), torch.stack([uniform, ind])])   # (L, H, T, T)
    return maps[:, :, None].expand(2, 2, B, T, T)


def test_a_hand_built_induction_head_scores_one():
    maps = _hand_built_induction_maps()
    pm, pt = heads.prefix_matching(maps, 10), heads.previous_token(maps)
    assert float(pm[1, 1]) == pytest.approx(1.0) and float(pm[0, 1]) < 0.2 and float(pm[1, 0]) < 0.2
    assert float(pt[0, 0]) == pytest.approx(1.0) and float(pt[1, 1]) < 0.6
    seqs = icl.repeated_random(4, 10, seed=0)
    assert torch.equal(seqs[:, 1:11], seqs[:, 11:]) and (seqs[:, 0] == icl.BOS).all()
    real = heads.attention_maps(_gpt(), seqs)
    assert real.shape == (2, 2, 4, 21, 21)
    assert torch.allclose(real.sum(-1), torch.ones(2, 2, 4, 21))


def test_copying_score_is_one_for_a_head_that_copies():
    model = _gpt(n_layer=1)
    C, d = 32, 16
    with torch.no_grad():
        m = model.blocks[0].attn
        m.qkv.weight[2 * C:] = torch.eye(C)          # W_V = I
        m.out.weight.copy_(torch.eye(C))              # W_O = I: head h passes its 16 dimensions on
    sc = heads.copying(model)
    assert sc.shape == (1, 2) and (sc > 0.99).all()   # W_U W_E^T restricted to a subspace: PSD
    with torch.no_grad():
        m.out.weight.copy_(-torch.eye(C))
    assert (heads.copying(model) < -0.99).all()


def test_ablation_changes_only_that_heads_contribution():
    model = _gpt()
    attn = model.blocks[1].attn
    h_in = torch.randn(2, 9, 32)
    seen = {}
    attn.head_hook = lambda y: seen.setdefault("y", y)
    with torch.no_grad():
        full, _ = attn(h_in, causal=True)
    attn.head_hook = None
    with heads.ablate(model, [(1, 0)]), torch.no_grad():
        cut, _ = attn(h_in, causal=True)
    assert attn.head_hook is None                                        # removed on exit
    y0 = seen["y"][:, 0]                                                 # head 0's output (B, T, 16)
    assert torch.allclose(full - cut, y0 @ attn.out.weight[:, :16].T, atol=1e-6)
    x = icl.repeated_random(2, 8)
    base = model(x)
    with heads.ablate(model, [(1, 0)]):
        assert not torch.allclose(model(x), base)
    assert torch.equal(model(x), base)
    means = heads.head_means(model, x)
    assert len(means) == 2 and means[1].shape == (2, 16)
    with heads.ablate(model, [(1, 1)], means=means):
        assert not torch.allclose(model(x), base)
    with pytest.raises(ValueError, match="no head"):
        with heads.ablate(model, [(5, 0)]):
            pass


def test_icl_score_is_late_minus_early_loss():
    losses = torch.tensor([3.0, 2.5, 2.0, 1.0, 0.5])
    assert heads.icl_score(losses, 0, 4) == pytest.approx(-2.5)
    assert heads.icl_score(losses, slice(0, 2), slice(3, 5)) == pytest.approx(0.75 - 2.75)


def test_chains_answers_are_where_the_chain_ends():
    rng = random.Random(0)
    for steps in (False, True):
        task = icl.Chains(steps=steps)
        for hops in (1, 3, 6):
            words, start, end = task.words(rng, hops, 10)
            arrows = {words[i]: words[i + 1] for i in range(1, start - 3, 3)}
            assert all(words[i] == "," for i in range(3, start - 3, 3)) and len(arrows) == 10
            x = words[start - 2]
            node = x
            for _ in range(hops):
                node = arrows[node]
            assert node == end and arrows[end] == "end"
            if steps:
                walk = words[start:]
                assert walk == [x] + [arrows[w] for w in walk[:-1]] and len(walk) == hops + 2
            else:
                assert words[start:] == [end]
    x, y = icl.Chains(steps=True, repeats=0.5).batch(8, 60, generator=torch.Generator().manual_seed(0))
    assert x.shape == y.shape and (y != -100).any(dim=1).all()


def test_the_floor_is_the_true_process_probability():
    data = icl.Episodes()
    x, y = data.sequence(random.Random(3), 63)
    lp = data.best_logprobs(x, y)
    assert len(lp) == sum(t != -100 for t in y) and lp[0] == pytest.approx(-math.log(16))
    labels = [icl.STOI[w] for w in icl.LABELS]
    for t in [i for i, v in enumerate(y) if v != -100]:             # every label position
        total = 0.0
        for lab in labels:                                           # all possible next labels
            yy = list(y)
            yy[t] = lab
            k = sum(v != -100 for v in y[:t])
            total += math.exp(data.best_logprobs(x, yy)[k])
        assert total == pytest.approx(1.0)
