"""GPT and decoding: causality, Hugging Face GPT-2 equivalence, KV cache, sampling rules."""
import math

import pytest
import torch

import textbook_lm as tlm
from textbook_lm import generate as G
from textbook_lm import hub
from textbook_lm.experiments import gpt as GPT_MODULE
from textbook_lm.gpt import GPT, GPTConfig, hf_config


def tiny(**kw):
    tlm.seed(0)
    base = dict(vocab_size=40, block_size=24, n_layer=2, n_head=4, n_embd=32)
    base.update(kw)
    return GPT(GPTConfig(**base)).eval()


def test_future_tokens_do_not_change_earlier_logits():
    m = tiny()
    x = torch.randint(0, 40, (2, 16))
    y = x.clone()
    y[:, 9:] = torch.randint(0, 40, (2, 7))
    a, b = m(x), m(y)
    assert torch.allclose(a[:, :9], b[:, :9], atol=1e-6)
    assert not torch.allclose(a[:, 9:], b[:, 9:], atol=1e-3)


def test_bad_inputs_raise():
    m = tiny()
    with pytest.raises(ValueError, match="longer than the context window"):
        m(torch.zeros(1, 25, dtype=torch.long))
    with pytest.raises(ValueError, match=r"token ids must be in \[0, 40\)"):
        m(torch.tensor([[1, 40]]))
    with pytest.raises(ValueError, match="divisible"):
        GPTConfig(vocab_size=5, n_embd=30, n_head=4)


def test_weights_are_tied_and_counted_once():
    m = tiny()
    assert m.lm_head.weight is m.wte.weight
    total = sum(p.numel() for p in m.parameters())
    assert m.num_params(embeddings=True) == total
    assert m.num_params() == total - 40 * 32 - 24 * 32


def test_hugging_face_gpt2_weights_give_the_same_logits():
    transformers = pytest.importorskip("transformers", reason="the GPT-2 comparison needs transformers")
    transformers.logging.set_verbosity_error()
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=50, n_positions=32, n_embd=48, n_layer=3, n_head=4,
                                  bos_token_id=0, eos_token_id=0, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    hf = transformers.GPT2LMHeadModel(cfg).eval()
    ours = GPT.from_hf_state_dict(hf.state_dict(), hf_config(cfg)).eval()
    x = torch.randint(0, 50, (3, 32))
    with torch.no_grad():
        diff = (hf(x).logits - ours(x)).abs().max().item()
    assert diff <= 1e-5, diff
    bad = dict(hf.state_dict())
    bad.pop("transformer.h.2.mlp.c_fc.bias")
    with pytest.raises(ValueError, match="missing"):
        GPT.from_hf_state_dict(bad, hf_config(cfg))


def test_kv_cache_gives_identical_tokens_and_logits_even_past_the_window():
    m = tiny()
    prompt = torch.randint(0, 40, (2, 5))
    for kw in [dict(temperature=0), dict(temperature=1.0, top_k=10, seed=3)]:
        a, la = G.generate(m, prompt, 30, use_cache=True, return_logits=True, **kw)     # 35 tokens > block_size 24
        b, lb = G.generate(m, prompt, 30, use_cache=False, return_logits=True, **kw)
        assert torch.equal(a, b)
        assert (la - lb).abs().max() <= 1e-5


def test_temperature_zero_is_greedy_and_seeds_reproduce():
    m = tiny()
    prompt = torch.tensor([3, 1, 4])
    greedy = G.generate(m, prompt, 12, temperature=0)
    manual = prompt[None]
    for _ in range(12):
        manual = torch.cat([manual, m(manual)[:, -1].argmax(-1, keepdim=True)], 1)
    assert torch.equal(greedy, manual)
    cold = G.generate(m, prompt, 12, temperature=1e-4, seed=0)
    assert torch.equal(cold, greedy)
    assert torch.equal(G.generate(m, prompt, 12, seed=7), G.generate(m, prompt, 12, seed=7))


def test_filter_logits_sets():
    logits = torch.log(torch.tensor([[0.5, 0.2, 0.15, 0.1, 0.05]]))
    kept = lambda l: torch.isfinite(l)[0].tolist()
    assert kept(G.filter_logits(logits, top_k=2)) == [True, True, False, False, False]
    assert kept(G.filter_logits(logits, top_p=0.5)) == [True, False, False, False, False]
    assert kept(G.filter_logits(logits, top_p=0.6)) == [True, True, False, False, False]
    assert kept(G.filter_logits(logits, top_p=0.85)) == [True, True, True, False, False]
    shuffled = logits[:, [3, 0, 4, 2, 1]]
    assert kept(G.filter_logits(shuffled, top_p=0.6)) == [False, True, False, False, True]
    with pytest.raises(ValueError):
        G.filter_logits(logits, top_p=0)


class Fixed(torch.nn.Module):
    """A 'model' whose next-token distribution is always the same."""

    def __init__(self, probs):
        super().__init__()
        self.logits = torch.nn.Parameter(torch.log(torch.tensor(probs)), requires_grad=False)
        self.cfg = GPTConfig(vocab_size=len(probs), block_size=1000, n_embd=4, n_head=1)

    def forward(self, idx):
        return self.logits.expand(idx.size(0), idx.size(1), -1)


def test_sampling_never_leaves_the_top_k_or_top_p_set():
    m = Fixed([0.3, 0.25, 0.2, 0.1, 0.1, 0.05])
    out = G.generate(m, torch.zeros(64, 1, dtype=torch.long), 50, top_k=3, seed=0)[:, 1:]
    assert set(out.unique().tolist()) == {0, 1, 2}
    out = G.generate(m, torch.zeros(64, 1, dtype=torch.long), 50, top_p=0.5, seed=0)[:, 1:]
    assert set(out.unique().tolist()) == {0, 1}
    # and sampling follows the distribution: token 0 about 0.3 / 0.75 of the top-3 draws
    out = G.generate(m, torch.zeros(200, 1, dtype=torch.long), 50, top_k=3, seed=1)[:, 1:]
    assert abs((out == 0).float().mean().item() - 0.4) < 0.02


def test_stop_tokens_and_repetition_penalty():
    m = Fixed([0.1, 0.6, 0.3])
    out = G.generate(m, torch.zeros(8, 1, dtype=torch.long), 40, stop_tokens=[2], seed=0)
    for row in out.tolist():
        if 2 in row[1:]:
            first = row.index(2, 1)
            assert all(t == 2 for t in row[first:])
    logits = torch.tensor([[2.0, -1.0, 0.5]])
    pen = G.apply_repetition_penalty(logits, torch.tensor([[0, 1]]), 2.0)
    assert pen.tolist() == [[1.0, -2.0, 0.5]]


def test_beam_search_finds_the_best_sequence_greedy_misses():
    # from token 0 greedy takes 1 (0.6), then 1 again (0.55): 0.33 in all; 0 -> 2 -> 3 has 0.4 x 1 = 0.4.
    table = torch.full((4, 4), 1e-6)
    table[0, 1], table[0, 2] = 0.6, 0.4
    table[1, 1], table[1, 3] = 0.55, 0.45 - 2e-6
    table[2, 3] = 1 - 3e-6
    table[3, 3] = 1.0

    class Markov(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.p = torch.nn.Parameter(torch.zeros(1))
            self.cfg = GPTConfig(vocab_size=4, block_size=100, n_embd=4, n_head=1)

        def forward(self, idx):
            return torch.log(table)[idx]

    m = Markov()
    greedy = G.generate(m, [0], 2, temperature=0)[0].tolist()
    assert greedy == [0, 1, 1]
    ids, score = G.beam_search(m, [0], 2, beams=2, length_penalty=0.0)
    assert ids == [0, 2, 3] and math.isclose(score, math.log(0.4), rel_tol=1e-4)


def test_char_data_uses_nanogpts_split(data_dir):
    tok, tr, va = GPT_MODULE.char_data("shakespeare")
    assert (len(tr), len(va)) == (1_003_854, 111_540)         # nanoGPT's prepare.py: 90% / 10% of 1,115,394
    assert tok.decode(tr.ids[:14].tolist()) == "First Citizen:"
    with pytest.raises(ValueError, match="corpus must be"):
        GPT_MODULE.char_data("klingon")


def test_save_and_load_pretrained_roundtrip(tmp_path):
    from textbook_lm.tokenize import CharTokenizer

    m = tiny(vocab_size=6)
    tok = CharTokenizer("abcde")
    m.save_pretrained(tmp_path / "toy", tokenizer=tok, info={"steps": 1}, half=True)
    loaded, tok2, info = hub.load(tmp_path / "toy", kind="GPT")
    x = torch.randint(0, 6, (2, 10))
    assert torch.allclose(loaded(x), m(x), atol=2e-2)               # float16 storage
    assert loaded.lm_head.weight is loaded.wte.weight and tok2.itos == tok.itos and info == {"steps": 1}
    assert not loaded.training
    exact = tmp_path / "exact"
    m.save_pretrained(exact)                                         # float32 by default: the same logits
    assert torch.equal(GPT.from_pretrained(exact)(x), m(x))
    with pytest.raises(FileNotFoundError, match="shipped"):
        hub.load(tmp_path / "missing")
