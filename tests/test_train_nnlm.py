import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from textbook_lm import nnlm, train
from textbook_lm.data import tinylang
from textbook_lm.utils import count_params


def _stream(n=4000, vocab=7, seed=0):
    """A stream where each token determines the next almost surely: easy to learn."""
    g = torch.Generator().manual_seed(seed)
    ids = [0]
    for _ in range(n - 1):
        ids.append((ids[-1] * 3 + 1) % vocab if torch.rand(1, generator=g).item() > 0.1 else int(torch.randint(0, vocab, (1,), generator=g)))
    return train.TokenStream(ids)


def test_lr_schedule_warms_up_then_decays_to_the_floor():
    cfg = train.TrainConfig(steps=100, lr=1.0, warmup=10, min_lr_ratio=0.1)
    lrs = [train.lr_at(s, cfg) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:]))          # monotone decay after warmup
    assert train.lr_at(100, cfg) == pytest.approx(0.1)


def test_batches_are_shifted_windows():
    s = train.TokenStream(torch.arange(100))
    x, y = s.batch(4, 8, "random", torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (4, 8) and torch.equal(y, x + 1)
    s2 = train.TokenStream(torch.arange(41))
    first, _ = s2.batch(2, 5, "contiguous")
    second, _ = s2.batch(2, 5, "contiguous")
    assert first.tolist() == [[0, 1, 2, 3, 4], [20, 21, 22, 23, 24]] and second[0, 0] == 5
    with pytest.raises(ValueError):
        train.TrainConfig(sampling="shuffled")


def test_training_learns_and_is_deterministic():
    data, val = _stream(), _stream(seed=1)
    cfg = train.TrainConfig(steps=60, batch_size=16, seq_len=16, lr=0.05, warmup=5, eval_every=20)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = nnlm.BigramNet(7)
        runs.append(train.train(model, data, val, cfg, progress=False))
    h = runs[0]
    assert h.train_loss == runs[1].train_loss and h.val_loss == runs[1].val_loss
    assert h.val_step == [20, 40, 60] and h.val_loss[-1] < 0.6 * math.log(7)
    assert h.tokens_per_step == 16 * 16 and len(h.lr) == 60
    assert isinstance(h.plot(), __import__("matplotlib").figure.Figure)


def test_gradient_clipping_caps_the_gradient_norm():
    data = _stream()
    torch.manual_seed(0)
    model = nnlm.BigramNet(7)
    cfg = train.TrainConfig(steps=1, batch_size=8, seq_len=8, warmup=1, grad_clip=0.01)
    h = train.train(model, data, None, cfg, progress=False)
    clipped = torch.linalg.vector_norm(model.table.weight.grad)      # the gradient the optimizer used
    assert h.grad_norm[0] > 0.01 and clipped == pytest.approx(0.01, rel=1e-4)


def test_resume_continues_exactly(tmp_path):
    data, val = _stream(), _stream(seed=1)
    cfg = train.TrainConfig(steps=30, batch_size=8, seq_len=12, lr=0.02, warmup=3, eval_every=10)

    def fresh():
        torch.manual_seed(0)
        return nnlm.RecurrentLM(nnlm.RecurrentConfig(7, "gru", emb_dim=8, hidden=8, dropout=0.1))

    straight = train.train(fresh(), data, val, cfg, progress=False)
    ckpt = tmp_path / "run.pt"
    # a wall-clock budget of 0 s stops after one step, as if the run were interrupted ...
    h1 = train.train(fresh(), data, val, train.TrainConfig(**{**cfg.__dict__, "max_seconds": 0.0}),
                     checkpoint=ckpt, progress=False)
    assert len(h1.step) == 1
    # ... and a new process picks it up from the checkpoint: 29 more steps, not 30
    calls = []
    batch = data.batch
    data.batch = lambda *a, **k: calls.append(1) or batch(*a, **k)
    resumed_model = fresh()
    h2 = train.train(resumed_model, data, val, cfg, checkpoint=ckpt, progress=False)
    assert len(calls) == 29
    assert h2.step == straight.step
    assert h2.train_loss == pytest.approx(straight.train_loss, abs=1e-6)
    state = torch.load(ckpt, weights_only=True)
    assert state["step"] == 30 and state["history"]["val_step"][-1] == 30


def test_stop_after_is_the_start_of_the_longer_run():
    data, val = _stream(), _stream(seed=1)
    cfg = train.TrainConfig(steps=20, batch_size=8, seq_len=12, lr=0.02, warmup=3, eval_every=5)

    def fresh():
        torch.manual_seed(0)
        return nnlm.RecurrentLM(nnlm.RecurrentConfig(7, "gru", emb_dim=8, hidden=8))

    full = train.train(fresh(), data, val, cfg, progress=False)
    part = train.train(fresh(), data, val, train.TrainConfig(**{**cfg.__dict__, "stop_after": 12}),
                       progress=False)
    assert part.step == full.step[:12] and part.lr == full.lr[:12]       # the same schedule
    assert part.train_loss == pytest.approx(full.train_loss[:12], abs=1e-6)
    assert part.val_step == [5, 10, 12] and part.val_loss[:2] == pytest.approx(full.val_loss[:2], abs=1e-6)
    with pytest.raises(ValueError, match="stop_after"):
        train.TrainConfig(stop_after=0)


def test_evaluate_is_mean_nats_per_token():
    model = nnlm.BigramNet(5)                                   # zero logits: uniform over 5 tokens
    s = train.TokenStream(torch.randint(0, 5, (101,)))
    assert train.evaluate(model, s, seq_len=7) == pytest.approx(math.log(5), rel=1e-6)


def test_importing_train_does_not_import_matplotlib():
    import subprocess
    import sys

    code = "import sys, textbook_lm.train; assert 'matplotlib' not in sys.modules, 'train imported matplotlib'"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_resume_reads_the_checkpoint_on_the_cpu(tmp_path, monkeypatch):
    """The RNG states in a checkpoint are CPU tensors and the batch generator is a CPU
    generator, so a resumed run must load the file on the CPU whatever the model's device
    (with map_location=cuda, set_state would get a CUDA tensor and raise)."""
    data = _stream()
    cfg = train.TrainConfig(steps=4, batch_size=4, seq_len=8, warmup=1, eval_every=2)
    ckpt = tmp_path / "run.pt"
    train.train(nnlm.BigramNet(7), data, None, train.TrainConfig(**{**cfg.__dict__, "steps": 2}), checkpoint=ckpt,
                progress=False)
    seen, load = [], torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: seen.append(k.get("map_location")) or load(*a, **k))
    h = train.train(nnlm.BigramNet(7), data, None, cfg, checkpoint=ckpt, progress=False)
    assert seen == ["cpu"] and h.step == [1, 2, 3, 4]


# --------------------------------------------------------------------------- models
def test_explicit_rnn_cell_matches_torch_rnn():
    torch.manual_seed(0)
    m = nnlm.RecurrentLM(nnlm.RecurrentConfig(11, "rnn", emb_dim=6, hidden=5))
    idx = torch.randint(0, 11, (3, 9))
    logits, _ = m(idx)
    logits2, hs = m.forward_explicit(idx)
    assert torch.allclose(logits, logits2, atol=1e-6) and hs.shape == (3, 9, 5)
    with pytest.raises(ValueError):
        nnlm.RecurrentLM(nnlm.RecurrentConfig(11, "lstm")).forward_explicit(idx)


def test_models_are_causal_and_nnlm_sees_only_its_window():
    torch.manual_seed(0)
    idx = torch.randint(0, 20, (2, 12))
    later = idx.clone()
    later[:, 8:] = (later[:, 8:] + 1) % 20                      # change tokens from position 8 on
    models = [nnlm.BengioNNLM(nnlm.NNLMConfig(20, context=3, direct=True)),
              nnlm.RecurrentLM(nnlm.RecurrentConfig(20, "lstm", emb_dim=8, hidden=8)),
              nnlm.RecurrentLM(nnlm.RecurrentConfig(20, "gru", emb_dim=8, hidden=8, layers=2))]
    for m in models:
        a, b = m(idx), m(later)
        a, b = (a[0], b[0]) if isinstance(a, tuple) else (a, b)
        assert torch.allclose(a[:, :8], b[:, :8]) and not torch.allclose(a[:, 8:], b[:, 8:])
    nn_lm = models[0]
    early = idx.clone()
    early[:, 0] = (early[:, 0] + 1) % 20                        # position 0 is outside the window of position 5
    assert torch.allclose(nn_lm(idx)[:, 5:], nn_lm(early)[:, 5:])
    assert nn_lm.windows(idx)[0, 0].tolist() == [20, 20, int(idx[0, 0])]     # padded on the left


def test_bad_ids_raise_clear_errors():
    m = nnlm.RecurrentLM(nnlm.RecurrentConfig(10, "lstm", emb_dim=4, hidden=4))
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, 10\)"):
        m(torch.tensor([[1, 10]]))
    with pytest.raises(ValueError):
        nnlm.BengioNNLM(nnlm.NNLMConfig(10))(torch.tensor([[-1, 2]]))
    with pytest.raises(ValueError, match="tying"):
        nnlm.RecurrentLM(nnlm.RecurrentConfig(10, tie=True, emb_dim=4, hidden=8))


def test_weight_tying_shares_parameters():
    tied = nnlm.RecurrentLM(nnlm.RecurrentConfig(50, "lstm", emb_dim=16, hidden=16, tie=True))
    untied = nnlm.RecurrentLM(nnlm.RecurrentConfig(50, "lstm", emb_dim=16, hidden=16))
    assert tied.out.weight is tied.emb.weight
    assert count_params(untied) - count_params(tied) == 50 * 16
    t2 = nnlm.BengioNNLM(nnlm.NNLMConfig(50, emb_dim=16, hidden=16, tie=True))
    assert t2(torch.tensor([[1, 2, 3]])).shape == (1, 3, 50)


def test_bigram_net_learns_the_bigram_table():
    """Gradient descent on a one-layer net over one-hot inputs recovers the MLE bigram probabilities."""
    sents = tinylang.TinyLang().sample(300, seed=2)
    vocab = sorted({w for s in sents for w in s.tokens} | {tinylang.EOS})
    ids = torch.tensor([vocab.index(w) for s in sents for w in s.tokens + [tinylang.EOS]])
    counts = torch.zeros(len(vocab), len(vocab))
    counts.index_put_((ids[:-1], ids[1:]), torch.ones(len(ids) - 1), accumulate=True)
    model = nnlm.BigramNet(len(vocab))
    opt = torch.optim.Adam(model.parameters(), lr=0.5)
    for _ in range(300):
        loss = F.cross_entropy(model(ids[:-1][None])[0], ids[1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
    mle = counts / counts.sum(1, keepdim=True).clamp(min=1)
    nll_mle = -(torch.log(mle[ids[:-1], ids[1:]])).mean()
    assert loss.item() == pytest.approx(nll_mle.item(), abs=0.02)


def test_sequence_scores_follow_the_book_convention():
    torch.manual_seed(0)
    m = nnlm.WordLM(nnlm.WordLMConfig(300, dim=8, hidden=16, cutoffs=(20, 100))).eval()
    seqs = [[5, 6, 7], [250], []]
    lp = train.sequence_logprobs(m, seqs, start_id=0)
    for s, got in zip(seqs, lp):                                # one at a time, by hand
        x, y = torch.tensor([[0] + s]), torch.tensor([s + [0]])
        full, _ = m(x)
        assert got == pytest.approx(full.gather(-1, y[..., None]).sum().item(), abs=1e-4)
    score = train.score_sequences(m, seqs, 0)
    assert score.n_tokens == 3 + 1 + 0 + 3 and score.nll == pytest.approx(-lp.sum())


def test_adaptive_softmax_is_a_proper_distribution():
    torch.manual_seed(0)
    m = nnlm.WordLM(nnlm.WordLMConfig(1000, dim=16, hidden=32, cutoffs=(50, 300))).eval()
    x = torch.randint(0, 1000, (2, 6))
    logp, _ = m(x)
    assert torch.allclose(logp.exp().sum(-1), torch.ones(2, 6), atol=1e-5)
    y = torch.randint(0, 1000, (2, 6))
    assert torch.allclose(m.target_logprobs(x, y), logp.gather(-1, y[..., None]).squeeze(-1), atol=1e-5)
    with pytest.raises(ValueError, match="cutoffs"):
        nnlm.WordLM(nnlm.WordLMConfig(100, cutoffs=(50, 40)))


def test_vanilla_rnn_gradients_vanish_or_explode_with_distance():
    torch.manual_seed(0)
    m = nnlm.RecurrentLM(nnlm.RecurrentConfig(20, "rnn", emb_dim=16, hidden=32))
    idx = torch.randint(0, 20, (1, 41))
    with torch.no_grad():
        m.rnn.weight_hh_l0.copy_(0.5 * torch.linalg.qr(torch.randn(32, 32))[0])     # spectral radius 0.5
    small = nnlm.gradient_norms(m, idx)
    assert small[-1] > 1e6 * small[0]                           # 40 steps back: vanished
    with torch.no_grad():
        m.rnn.weight_hh_l0.mul_(4.0)                              # spectral radius 2 ...
        m.rnn.weight_ih_l0.mul_(1e-4)                             # ... and tiny inputs keep tanh linear
        m.rnn.bias_ih_l0.zero_()
        m.rnn.bias_hh_l0.zero_()
    big = nnlm.gradient_norms(m, idx[:, :13])                   # 12 steps: 2 ** 11 growth
    assert big[0] > 500 * big[-1]                               # the far past dominates: exploded


def test_sampling_is_seeded_and_stops_at_eos():
    vocab = ["<eos>", "a", "b"]
    m = nnlm.BigramNet(3)
    with torch.no_grad():
        m.table.weight.copy_(torch.tensor([[0.0, 5, -5], [-5, -5, 5], [5, -5, -5]]))   # <eos> a b <eos>
    out = nnlm.sample(m, vocab, n=3, temperature=0.01, seed=1)
    assert out == [["a", "b"]] * 3
    assert nnlm.sample(m, vocab, 2, seed=4) == nnlm.sample(m, vocab, 2, seed=4)
    with pytest.raises(ValueError):
        nnlm.sample(m, vocab, temperature=0)


def test_shipped_wikitext2_lstm_loads_and_is_within_budget():
    from textbook_lm import hub

    path = hub.SHIPPED_DIR / "wikitext2-lstm" / "weights.pt"
    assert path.stat().st_size < 5_000_000
    state = torch.load(path, weights_only=True)
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())
    assert hub.load("wikitext2-lstm").info["test_perplexity"] < 0.85 * 224.81   # beats Chapter 1's KN5 by 15%+


def test_shipped_wikitext2_lstm_scores_as_recorded(data_dir):
    from textbook_lm.data import corpora

    from textbook_lm import hub

    model, vocab, info = hub.load("wikitext2-lstm")
    test = corpora.wikitext2("test")[:300]
    s = train.score_sequences(model, nnlm.encode(test, vocab), vocab.index("<eos>"))
    assert 4.0 < s.cross_entropy < 6.0
    with pytest.raises(KeyError, match="not in the model's vocabulary"):
        nnlm.encode([["surely-not-a-wikitext-word"]], vocab)


@pytest.mark.parametrize("body", ["lstm", "gru", "rnn", "nnlm"])
def test_word_models_are_causal_distributions(body):
    torch.manual_seed(0)
    m = nnlm.WordLM(nnlm.WordLMConfig(400, dim=8, hidden=16, cutoffs=(30, 150), body=body, context=3)).eval()
    x = torch.randint(0, 400, (2, 10))
    later = x.clone()
    later[:, 6:] = (later[:, 6:] + 1) % 400
    a, _ = m(x)
    b, _ = m(later)
    assert torch.allclose(a.exp().sum(-1), torch.ones(2, 10), atol=1e-5)
    assert torch.allclose(a[:, :6], b[:, :6], atol=1e-6) and not torch.allclose(a[:, 6:], b[:, 6:])
    if body == "nnlm":                                   # position 8 sees positions 6..8 only
        early = x.clone()
        early[:, :6] = (early[:, :6] + 1) % 400
        c, _ = m(early)
        assert torch.allclose(a[:, 8:], c[:, 8:], atol=1e-6)
    with pytest.raises(ValueError, match="body"):
        nnlm.WordLM(nnlm.WordLMConfig(400, body="transformer"))
