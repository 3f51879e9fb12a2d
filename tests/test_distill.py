"""Distillation (Chapter 11): the KD loss against hand-written KL, the T^2 factor, hidden-state
losses, initialisation from the teacher's layers and the student wrapper for the training loop."""
import copy
import math

import pytest
import torch
import torch.nn.functional as F

from textbook_lm import distill
from textbook_lm import train as tr
from textbook_lm.bert import BERT, BertConfig
from textbook_lm.gpt import GPT, GPTConfig


def _gpt(n_layer=4, seed=0):
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=11, block_size=16, n_layer=n_layer, n_head=2, n_embd=16)).eval()


def test_soften_flattens_and_sharpens():
    z = torch.tensor([2.0, 1.0, 0.0])
    assert torch.allclose(distill.soften(z, 1.0), F.softmax(z, -1))
    hot, cold = distill.soften(z, 10.0), distill.soften(z, 0.5)
    assert hot.max() < F.softmax(z, -1).max() < cold.max()
    assert torch.allclose(hot.sum(), torch.tensor(1.0))


def test_kd_loss_is_zero_for_the_teacher_itself_and_equals_a_hand_written_kl():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(3, 5, 7, generator=g), torch.randn(3, 5, 7, generator=g)
    assert distill.kd_loss(t, t, T=3.0, alpha=1.0).item() == pytest.approx(0.0, abs=1e-6)
    T = 2.5
    total = 0.0
    for row_s, row_t in zip(s.reshape(-1, 7).tolist(), t.reshape(-1, 7).tolist()):
        zs = [math.exp(v / T) for v in row_s]
        zt = [math.exp(v / T) for v in row_t]
        q = [v / sum(zs) for v in zs]
        p = [v / sum(zt) for v in zt]
        total += sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))
    hand = T * T * total / 15
    assert distill.kd_loss(s, t, T=T, alpha=1.0).item() == pytest.approx(hand, rel=1e-5)
    # PyTorch's kl_div with batchmean over one row per position gives the same number
    ref = F.kl_div(F.log_softmax(s.reshape(-1, 7) / T, -1), F.softmax(t.reshape(-1, 7) / T, -1),
                   reduction="batchmean") * T * T
    assert distill.kd_loss(s, t, T=T, alpha=1.0).item() == pytest.approx(ref.item(), rel=1e-5)


def test_kd_loss_mixes_in_the_hard_labels_and_ignores_minus_100():
    g = torch.Generator().manual_seed(1)
    s, t = torch.randn(2, 4, 6, generator=g), torch.randn(2, 4, 6, generator=g)
    y = torch.randint(0, 6, (2, 4), generator=g)
    y[0, 0] = -100
    keep = y != -100
    soft = distill.soft_kl(s[keep], t[keep], 2.0) * 4
    hard = F.cross_entropy(s[keep], y[keep])
    assert distill.kd_loss(s, t, y, T=2.0, alpha=0.3).item() == pytest.approx((0.3 * soft + 0.7 * hard).item(),
                                                                               rel=1e-6)
    with pytest.raises(ValueError, match="needs targets"):
        distill.kd_loss(s, t, None, alpha=0.5)
    with pytest.raises(ValueError, match="shape"):
        distill.kd_loss(s, t[..., :5], alpha=1.0)


@pytest.mark.parametrize("scale", [True, False])
def test_t_squared_keeps_the_gradient_norm_invariant_to_temperature(scale):
    g = torch.Generator().manual_seed(2)
    t = torch.randn(64, 50, generator=g)
    s0 = torch.randn(64, 50, generator=g)
    norms = {}
    for T in (4.0, 8.0, 16.0, 32.0):
        s = s0.clone().requires_grad_(True)
        distill.kd_loss(s, t, T=T, alpha=1.0, scale=scale).backward()
        norms[T] = s.grad.norm().item()
    if scale:     # with T^2 the gradient is the same size at every high temperature (within 10%)
        assert max(norms.values()) / min(norms.values()) < 1.1
    else:         # without it, it shrinks as 1/T^2: 64 times from T = 4 to T = 32
        assert norms[4.0] / norms[32.0] == pytest.approx(64, rel=0.1)


def test_hidden_state_losses():
    g = torch.Generator().manual_seed(3)
    h = torch.randn(2, 5, 8, generator=g)
    assert distill.hidden_cosine_loss(h, 3 * h).item() == pytest.approx(0.0, abs=1e-6)
    assert distill.hidden_cosine_loss(h, -h).item() == pytest.approx(2.0, abs=1e-6)
    e = torch.eye(2).reshape(1, 2, 2)
    assert distill.hidden_cosine_loss(e[:, :1], e[:, 1:]).item() == pytest.approx(1.0)   # orthogonal
    with pytest.raises(ValueError, match="HiddenProjector"):
        distill.hidden_cosine_loss(h, torch.randn(2, 5, 16))
    proj = distill.HiddenProjector(8, 16)
    teacher = proj(h).detach()
    assert distill.hidden_mse_loss(h, teacher, proj).item() == pytest.approx(0.0, abs=1e-10)
    with pytest.raises(ValueError, match="after projection"):
        distill.hidden_mse_loss(h, torch.randn(2, 5, 12), proj)


def test_student_from_teacher_copies_exactly_the_chosen_layers():
    teacher = _gpt(4)
    student = distill.student_from_teacher(teacher)                        # every other layer: 0, 2
    assert student.cfg.n_layer == 2 and len(student.blocks) == 2
    for s_i, t_i in ((0, 0), (1, 2)):
        for (n1, a), (n2, b) in zip(student.blocks[s_i].state_dict().items(),
                                    teacher.blocks[t_i].state_dict().items()):
            assert n1 == n2 and torch.equal(a, b)
    assert torch.equal(student.wte.weight, teacher.wte.weight)
    assert student.wte.weight.data_ptr() != teacher.wte.weight.data_ptr()   # a copy, not shared
    assert student.lm_head.weight is student.wte.weight                      # still tied
    assert student(torch.randint(0, 11, (2, 6))).shape == (2, 6, 11)
    picked = distill.student_from_teacher(teacher, [1, 3])
    for s_i, t_i in ((0, 1), (1, 3)):
        a, b = picked.blocks[s_i].state_dict(), teacher.blocks[t_i].state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="distinct block indices"):
        distill.student_from_teacher(teacher, [0, 4])
    bert = BERT(BertConfig(vocab_size=11, block_size=16, n_layer=4, n_head=2, n_embd=16))
    assert distill.student_from_teacher(bert).cfg.n_layer == 2


def test_the_distiller_trains_only_the_student_and_validates_its_own_loss():
    torch.manual_seed(0)
    teacher, student = _gpt(4, seed=0), _gpt(2, seed=1)
    # a teacher trained on a cyclic stream has sharp predictions
    cyc = tr.TokenStream(torch.arange(3000) % 11)
    tr.train(teacher.train(), cyc, None, tr.TrainConfig(steps=80, batch_size=8, seq_len=12, lr=1e-2,
                                                        eval_every=80), progress=False)
    teacher.eval()
    wrap = distill.Distiller(student, teacher, T=2.0, alpha=0.5)
    assert sum(p.numel() for p in wrap.parameters()) == sum(p.numel() for p in student.parameters())
    x = torch.randint(0, 11, (3, 8))
    y = torch.randint(0, 11, (3, 8))
    wrap.train()
    with torch.no_grad():
        expected = distill.kd_loss(student(x), teacher(x), y, 2.0, 0.5)
    assert wrap.loss(x, y).item() == pytest.approx(expected.item(), rel=1e-6)
    wrap.eval()
    assert wrap.loss(x, y).item() == pytest.approx(F.cross_entropy(student(x).reshape(-1, 11),
                                                                   y.reshape(-1)).item(), rel=1e-6)
    # distilling on random text (soft targets only) brings the student close to the teacher
    wrap = distill.Distiller(student, teacher, T=1.0, alpha=1.0)
    probe = torch.randint(0, 11, (8, 12))
    before = distill.soft_kl(student(probe), teacher(probe)).item()
    frozen = [p.clone() for p in teacher.parameters()]
    data = tr.TokenStream(torch.randint(0, 11, (4000,)))
    tr.train(wrap, data, data, tr.TrainConfig(steps=150, batch_size=16, seq_len=12, lr=3e-3, eval_every=150,
                                              eval_batches=4), progress=False)
    after = distill.soft_kl(student.eval()(probe), teacher(probe)).item()
    assert before > 0.5 and after < 0.3 * before
    assert all(torch.equal(a, b) for a, b in zip(frozen, teacher.parameters()))


def test_a_student_copied_from_a_frozen_teacher_is_trainable():
    teacher = _gpt()
    distill.Distiller(_gpt(1), teacher)                     # freezes the teacher
    student = distill.student_from_teacher(teacher, [0])
    assert all(p.requires_grad for p in student.parameters()) and student.training
    assert not any(p.requires_grad for p in teacher.parameters())


def test_teacher_targets_hold_the_teachers_logits_and_give_the_same_loss_as_a_live_teacher():
    teacher, student = _gpt(), _gpt(1, seed=1)
    ids = torch.randint(0, 11, (200,), generator=torch.Generator().manual_seed(0))
    targets = distill.TeacherTargets(ids, teacher, seq_len=16, batch_size=5)
    assert targets.x.shape == (12, 16) and targets.logits.shape == (12, 16, 11)
    assert torch.equal(targets.y[:, :-1], targets.x[:, 1:])
    with torch.no_grad():
        assert torch.allclose(targets.logits.float(), teacher(targets.x), atol=1e-2)   # stored in float16
    x, (y, logits) = targets.batch(4, 16, generator=torch.Generator().manual_seed(1))
    d = distill.Distiller(student, teacher, T=2.0, alpha=0.5).train()
    cached, live = d.loss(x, (y, logits)), d.loss(x, y)
    assert cached.item() == pytest.approx(live.item(), abs=1e-3)
    with pytest.raises(ValueError, match="random windows of 16"):
        targets.batch(4, 8)
    alone = distill.Distiller(student, teacher, alpha=0.0).train()          # alpha 0: hard labels only
    assert alone.loss(x, (y, logits)).item() == pytest.approx(F.cross_entropy(student(x).reshape(-1, 11),
                                                                              y.reshape(-1)).item(), abs=1e-5)


def _bert(n_layer=2, seed=0):
    torch.manual_seed(seed)
    return BERT(BertConfig(vocab_size=20, block_size=12, n_layer=n_layer, n_head=2, n_embd=16, dropout=0.0)).eval()


def _mlm_batch():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 20, (3, 12), generator=g)
    ids[2, 9:] = 0                                                           # padding
    labels = torch.full_like(ids, -100)
    labels[:, 2], labels[:, 5] = ids[:, 2], ids[:, 5]
    ids[:, 2] = 4                                                            # [MASK]-like
    return (ids, torch.zeros_like(ids)), (labels, torch.full((3,), -100))


def test_bert_triple_loss_adds_its_terms_and_each_weight_removes_one():
    teacher = _bert()
    student = distill.student_from_teacher(teacher, [0])
    x, y = _mlm_batch()
    terms = {}
    for name, w in (("soft", (1, 0, 0)), ("mlm", (0, 1, 0)), ("cos", (0, 0, 1)), ("all", (1, 1, 1))):
        terms[name] = distill.BertDistiller(student, teacher, 2.0, *w).train().loss(x, y).item()
    assert terms["all"] == pytest.approx(terms["soft"] + terms["mlm"] + terms["cos"], rel=1e-5)
    assert all(terms[k] > 0 for k in ("soft", "mlm", "cos"))
    same = distill.BertDistiller(copy.deepcopy(teacher), teacher, 2.0, 1, 0, 1).train()
    assert same.loss(x, y).item() == pytest.approx(0.0, abs=1e-5)            # a copy of the teacher: no KL, cos 1
    assert distill.BertDistiller(student, teacher).eval().loss(x, y).item() == pytest.approx(terms["mlm"], rel=1e-5)
    with pytest.raises(ValueError):
        distill.BertDistiller(student, teacher, 2.0, 0, 0, 0)


def test_logit_bias_shifts_one_token_only():
    model = _gpt(1)
    x = torch.randint(0, 11, (2, 5))
    with torch.no_grad():
        diff = distill.LogitBias(model, 3, 2.5)(x) - model(x)
    assert torch.allclose(diff[..., 3], torch.full((2, 5), 2.5))
    assert torch.equal(diff[..., [0, 1, 2, 4, 5]], torch.zeros(2, 5, 5))
