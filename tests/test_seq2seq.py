"""Synthetic seq2seq tasks, batching, the RNN encoder-decoder, decoding and exact match."""
import random

import pytest
import torch

import textbook_lm as tlm
from textbook_lm import seq2seq, train, transformer
from textbook_lm.data import tasks


@pytest.mark.parametrize("n, words", [(0, "zero"), (7, "seven"), (13, "thirteen"), (40, "forty"),
                                      (105, "one hundred five"), (1000, "one thousand"),
                                      (2040611, "two million forty thousand six hundred eleven"),
                                      (999999999, "nine hundred ninety nine million nine hundred ninety nine "
                                                  "thousand nine hundred ninety nine")])
def test_number_words(n, words):
    assert " ".join(tasks.number_words(n)) == words


def test_number_names_are_unique():
    names = {tuple(tasks.number_words(n)) for n in range(0, 100000, 7)}
    assert len(names) == len(range(0, 100000, 7))
    with pytest.raises(ValueError):
        tasks.number_words(10 ** 9)


def test_examples_are_distinct_sized_and_exclusive():
    task = tasks.Reverse(min_len=3, max_len=8, n_symbols=5)
    test = task.examples(200, seed=0, sizes=[6, 7])
    assert len({tuple(s) for s, _ in test}) == 200 and {len(s) for s, _ in test} == {6, 7}
    assert all(t == s[::-1] for s, t in test)
    held = {tuple(s) for s, _ in test}
    other = task.examples(300, seed=1, exclude=held)
    assert not held & {tuple(s) for s, _ in other}
    data = seq2seq.PairData(task, exclude=held)
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        (src, _), _ = data.batch(64, generator=g)
        for row in src.tolist():
            assert tuple(task.src_vocab[i] for i in row if i) not in held


def test_batches_shift_and_pad():
    task = tasks.Numbers(max_digits=4)
    data = seq2seq.PairData(task, [(["forty", "two"], ["4", "2"]), (["seven"], ["7"])])
    (src, tgt_in), tgt_out = data.windows()[0]
    assert src.tolist() == [task.encode_src(["forty", "two"]), task.encode_src(["seven"]) + [0]]
    assert tgt_in[:, 0].tolist() == [tasks.BOS] * 2
    assert tgt_out.tolist()[1] == task.encode_tgt(["7"]) + [tasks.EOS, -100]
    real = tgt_in[:, 1:] != 0                     # the input is the output shifted right by one
    assert torch.equal(tgt_in[:, 1:][real], tgt_out[:, :-1][real]) and real.sum() == 3
    with pytest.raises(ValueError, match="not a source symbol"):
        task.encode_src(["eleventy"])


def test_rnn_attention_weights_and_padding():
    tlm.seed(0)
    task = tasks.Reverse(min_len=3, max_len=6)
    m = seq2seq.RNNSeq2Seq(len(task.src_vocab), len(task.tgt_vocab), 8, 16, attention="additive").eval()
    data = seq2seq.PairData(task, task.examples(4, seed=0))
    (src, tgt_in), _ = data.windows()[0]
    logits = m(src, tgt_in)
    w = m.last_weights                                            # (B, T, S)
    assert w.shape == (4, tgt_in.size(1), src.size(1))
    real = src != 0
    assert torch.allclose(w.sum(-1), torch.ones(w.shape[:2]), atol=1e-6)
    assert (w.masked_select(~real[:, None, :].expand_as(w)) == 0).all()
    # extra padding on the source changes nothing
    wider = torch.cat([src, torch.zeros(4, 3, dtype=torch.long)], 1)
    assert torch.allclose(m(wider, tgt_in), logits, atol=1e-5)
    with pytest.raises(ValueError, match="attention must be"):
        seq2seq.RNNSeq2Seq(5, 5, attention="bilinear")


class Oracle(torch.nn.Module):
    """A fake model that 'decodes' the reversed source: tests greedy() and exact_match() alone."""

    def __init__(self, wrong_on_first=False):
        super().__init__()
        self.p = torch.nn.Parameter(torch.zeros(1))
        self.wrong_on_first = wrong_on_first

    def encode(self, src):
        return (src,)

    def decode(self, tgt_in, src):
        B, t = tgt_in.shape
        target = [[i for i in row if i][::-1] + [tasks.EOS] for row in src.tolist()]
        nxt = torch.tensor([row[min(t - 1, len(row) - 1)] for row in target])
        if self.wrong_on_first:
            nxt[0] = 3
        return torch.nn.functional.one_hot(nxt, 30).float()[:, None, :].expand(B, t, 30)


def test_greedy_and_exact_match_with_an_oracle():
    task = tasks.Reverse(min_len=2, max_len=9)
    data = seq2seq.PairData(task, task.examples(50, seed=3))
    assert all(seq2seq.exact_match(Oracle(), data, batch_size=16))
    hits = seq2seq.exact_match(Oracle(wrong_on_first=True), data, batch_size=16)
    assert hits.count(False) == 4 and not hits[0] and not hits[16]
    acc = seq2seq.accuracy_by_length(Oracle(), data)
    assert set(acc) <= set(range(2, 10)) and all(v == 1.0 for v in acc.values())


def test_transformer_learns_to_reverse_with_the_book_loop():
    tlm.seed(0)
    task = tasks.Reverse(min_len=3, max_len=6, n_symbols=8)
    test = task.examples(200, seed=1)
    held = {tuple(s) for s, _ in test}
    m = transformer.Transformer(transformer.TransformerConfig(len(task.src_vocab), len(task.tgt_vocab), n_embd=32,
                                                              n_head=4, n_layer=1))
    cfg = train.TrainConfig(steps=250, batch_size=64, lr=3e-3, warmup=20, eval_every=250)
    hist = train.train(m, seq2seq.PairData(task, exclude=held), seq2seq.PairData(task, test), cfg, progress=False)
    assert hist.val_loss[-1] < 0.1
    hits = seq2seq.exact_match(m, seq2seq.PairData(task, test))
    assert sum(hits) / len(hits) > 0.9
