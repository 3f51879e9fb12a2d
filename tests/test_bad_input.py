"""Bad input gets a clear error, never a silent wrong answer (CONVENTIONS, "Clear errors").

``CASES`` lists bad calls, grouped by module: ``pytest.param(thunk, ExpectedError, "regex",
id="module-what")``. The thunk makes the bad call; the test checks the exception type and
that its message matches the regex (a fragment that says what was wrong or what is
allowed), so each case fails if its validation is removed. To add cases, append them under
their module's header (or add a header); keep models and data tiny so the file runs in
seconds. Tiny shared objects are built lazily by the helpers below.
"""
from __future__ import annotations

import functools
import math
import random
import tempfile
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn as nn

from textbook_lm import attention as A
from textbook_lm import bert, finetune, gpt, hub, leaderboard, mlm, ngram_counts, nnlm, utils
from textbook_lm import embeddings as E
from textbook_lm import evaluate as ev
from textbook_lm.checks import check_int, check_number
from textbook_lm.experiments import bert as x_bert
from textbook_lm.experiments import gpt as x_gpt
from textbook_lm.experiments import leaderboard as x_leaderboard
from textbook_lm.experiments import nnlm as x_nnlm
from textbook_lm.experiments import tokenize as x_tokenize
from textbook_lm import generate as G
from textbook_lm import metrics, ngram, plot, seq2seq, train
from textbook_lm import tokenize as tok
from textbook_lm import transformer as T
from textbook_lm.data import corpora, tasks, tinylang

NAN = float("nan")


# ----------------------------------------------------------------------------- tiny helpers
class TinyLM(nn.Module):
    """A decoder-only LM small enough for every case: vocabulary 5, context window 8."""

    def __init__(self, vocab_size: int = 5, block_size: int = 8):
        super().__init__()
        self.cfg = SimpleNamespace(vocab_size=vocab_size, block_size=block_size)
        self.emb = nn.Embedding(vocab_size, 4)
        self.head = nn.Linear(4, vocab_size)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.head(self.emb(idx))                        # (B, T, V)


@functools.lru_cache(None)
def lm() -> TinyLM:
    torch.manual_seed(0)
    return TinyLM().eval()


@functools.lru_cache(None)
def tiny_gpt() -> gpt.GPT:
    torch.manual_seed(0)
    return gpt.GPT(gpt.GPTConfig(vocab_size=10, block_size=8, n_layer=1, n_head=2, n_embd=8)).eval()


@functools.lru_cache(None)
def char_tok() -> tok.CharTokenizer:
    return tok.CharTokenizer("abc", specials=mlm.SPECIALS)            # 8 tokens: <unk>, 4 specials, a, b, c


@functools.lru_cache(None)
def tiny_bert() -> bert.BERT:
    torch.manual_seed(0)
    return bert.BERT(bert.BertConfig(vocab_size=8, block_size=8, n_layer=1, n_head=2, n_embd=8)).eval()


def stream() -> train.TokenStream:
    return train.TokenStream(torch.arange(40) % 5)


def qkv(tk: int = 7, d: int = 8, dv: int = 8):
    g = torch.Generator().manual_seed(0)
    return (torch.randn(2, 3, 5, d, generator=g), torch.randn(2, 3, tk, d, generator=g),
            torch.randn(2, 3, tk, dv, generator=g))


def tf(**kw) -> T.Transformer:
    return T.Transformer(T.TransformerConfig(**{**dict(src_vocab=11, tgt_vocab=13, n_embd=8, n_head=2, n_layer=1,
                                                       block_size=6), **kw})).eval()


def rnn() -> seq2seq.RNNSeq2Seq:
    return seq2seq.RNNSeq2Seq(8, 8, d_emb=4, d_hidden=4).eval()


@functools.lru_cache(None)
def kn() -> ngram.NGramLM:
    return ngram.fit([["a", "b", "c"], ["a", "c"]], 2, "kn")


@functools.lru_cache(None)
def toks() -> dict:
    text = "the cat sat on the mat. the dog sat too."
    return {"char": tok.CharTokenizer.train(text), "word": tok.WordTokenizer.train(text),
            "bpe": tok.BPETokenizer.train(text, 270), "wordpiece": tok.WordPieceTokenizer.train(text, 60)}


def corrupt_file(data: bytes = b"not a checkpoint") -> str:
    f = tempfile.NamedTemporaryFile(suffix=".pt", delete=False)
    f.write(data)
    f.close()
    return f.name


class AllIgnored:
    """Evaluation data whose every target is -100: nothing to score."""

    def windows(self, seq_len, max_windows=None):
        return [(torch.zeros(1, 3, dtype=torch.long), torch.full((1, 3), -100))]


def pairs(n: int = 2) -> list:
    return [tinylang.MinimalPair(["x"], ["y"], 1, 0)] * n


# ----------------------------------------------------------------------------- the cases
CASES = [
    # ------------------------------------------------------------------ attention
    pytest.param(lambda: A.causal_mask(5, 3), ValueError, "at least as many keys", id="attention-causal-fewer-keys"),
    pytest.param(lambda: A.causal_mask(2.5), TypeError, "t_q must be an int", id="attention-causal-float-size"),
    pytest.param(lambda: A.causal_mask(-1), ValueError, "t_q must be >= 0", id="attention-causal-negative"),
    pytest.param(lambda: A.padding_mask(torch.zeros(2, 3)), TypeError, "boolean", id="attention-padding-float"),
    pytest.param(lambda: A.padding_mask(torch.zeros(2, 3, 4, dtype=torch.bool)), ValueError, r"shape \(B, T_k\)",
                 id="attention-padding-3d"),
    pytest.param(lambda: A.combine(torch.ones(3, 3, dtype=torch.bool), torch.ones(2, 4, dtype=torch.bool)),
                 ValueError, "do not broadcast", id="attention-combine-shapes"),
    pytest.param(lambda: A.combine(torch.ones(2, 2)), TypeError, "boolean", id="attention-combine-float"),
    pytest.param(lambda: A.attend_explicit(*qkv(), torch.zeros(5, 7)), TypeError, "boolean",
                 id="attention-explicit-float-mask"),
    pytest.param(lambda: A.attend_explicit(*qkv(), torch.ones(4, 7, dtype=torch.bool)), ValueError,
                 "does not broadcast", id="attention-explicit-mask-shape"),
    pytest.param(lambda: A.attend_fused(*qkv(), torch.ones(4, 5, 7, dtype=torch.bool)), ValueError,
                 "does not broadcast", id="attention-fused-mask-heads"),
    pytest.param(lambda: A.attend_explicit(qkv()[0], qkv()[1], qkv(tk=6)[2]), ValueError, "same number of keys",
                 id="attention-explicit-k-v-length"),
    pytest.param(lambda: A.attend_fused(qkv()[0], qkv(d=4)[1], qkv(d=4)[2]), ValueError, "same feature size",
                 id="attention-fused-q-k-size"),
    pytest.param(lambda: A.attend_fused(*qkv(), dropout_p=1.5), ValueError, r"dropout probability .* \[0, 1\)",
                 id="attention-fused-dropout"),
    pytest.param(lambda: A.attend_explicit(torch.ones(8), torch.ones(8), torch.ones(8)), ValueError,
                 "at least 2 dimensions", id="attention-explicit-1d"),
    pytest.param(lambda: A.dot_scores([[1.0]], torch.ones(1, 1)), TypeError, "torch.Tensor", id="attention-dot-list"),
    pytest.param(lambda: A.scaled_dot_scores(torch.ones(2, 5, 4), torch.ones(3, 5, 4)), ValueError,
                 "do not broadcast", id="attention-scores-batch"),
    pytest.param(lambda: A.AdditiveScore(4, 0, 5), ValueError, "d_k must be >= 1", id="attention-additive-size"),
    pytest.param(lambda: A.AdditiveScore(3, 5, 4)(torch.ones(2, 4), torch.ones(6, 5)), ValueError,
                 "queries of size 3", id="attention-additive-query-size"),
    pytest.param(lambda: A.MultiHeadAttention(10, 3), ValueError, "divisible", id="attention-mha-divisible"),
    pytest.param(lambda: A.MultiHeadAttention(8, 2, dropout=-0.1), ValueError, "dropout", id="attention-mha-dropout"),
    pytest.param(lambda: A.MultiHeadAttention(8, 2)(torch.ones(2, 5, 6)), ValueError, "d_model=8",
                 id="attention-mha-width"),
    pytest.param(lambda: A.MultiHeadAttention(8, 2)(torch.ones(2, 5, 8), context=torch.ones(3, 4, 8)), ValueError,
                 r"context must have shape \(B=2", id="attention-mha-context-batch"),
    pytest.param(lambda: A.MultiHeadAttention(8, 2)(torch.ones(1, 2, 8), torch.ones(1, 3, 8), cache=A.KVCache()),
                 ValueError, "KV cache is for self-attention", id="attention-mha-cache-cross"),
    pytest.param(lambda: A.KVCache().append(torch.ones(2, 3, 4), torch.ones(2, 3, 4)), ValueError,
                 "at least 4 dimensions", id="attention-cache-3d"),
    pytest.param(lambda: (c := A.KVCache(), c.append(torch.ones(1, 2, 3, 4), torch.ones(1, 2, 3, 4)),
                          c.append(torch.ones(1, 4, 1, 2), torch.ones(1, 4, 1, 2))),
                 ValueError, "do not continue", id="attention-cache-heads"),
    pytest.param(lambda: A.record("model").__enter__(), TypeError, "nn.Module", id="attention-record-not-module"),

    # ------------------------------------------------------------------ transformer
    pytest.param(lambda: T.TransformerConfig(11, 13, n_embd=30, n_head=4), ValueError, "divisible",
                 id="transformer-config-divisible"),
    pytest.param(lambda: T.TransformerConfig(11, 13, positions="alibi"), ValueError, "positions must be one of",
                 id="transformer-config-positions"),
    pytest.param(lambda: T.TransformerConfig(11, 13, dropout=1.0), ValueError, r"dropout must be in \[0, 1\)",
                 id="transformer-config-dropout"),
    pytest.param(lambda: T.TransformerConfig(11, 13, n_layer=0), ValueError, "n_layer must be >= 1",
                 id="transformer-config-layers"),
    pytest.param(lambda: T.TransformerConfig(11, 13, n_decoder_layer=0), ValueError, "n_decoder_layer must be >= 1",
                 id="transformer-config-decoder-layers"),
    pytest.param(lambda: T.TransformerConfig(11, 13, block_size=64.0), TypeError, "block_size must be an int",
                 id="transformer-config-float-size"),
    pytest.param(lambda: T.TransformerConfig(11, 13, d_ff=0), ValueError, "d_ff must be >= 1",
                 id="transformer-config-d-ff"),
    pytest.param(lambda: T.TransformerConfig(11, 13, pad_id=11), ValueError, "pad_id=11",
                 id="transformer-config-pad-id"),
    pytest.param(lambda: T.TransformerConfig(11, 13, n_embd=12, n_head=4, positions="rotary"), ValueError,
                 "even head size", id="transformer-config-rotary-odd"),
    pytest.param(lambda: tf()(torch.ones(1, 7, dtype=torch.long), torch.ones(1, 2, dtype=torch.long)), ValueError,
                 r"context window \(block_size=6", id="transformer-too-long"),
    pytest.param(lambda: tf()(torch.tensor([[3, 11]]), torch.ones(1, 2, dtype=torch.long)), ValueError,
                 r"token ids must be in \[0, 11\)", id="transformer-id-out-of-vocab"),
    pytest.param(lambda: tf()(torch.ones(1, 3), torch.ones(1, 2, dtype=torch.long)), TypeError, "integer tensor",
                 id="transformer-float-ids"),
    pytest.param(lambda: tf()(torch.ones(2, 3, dtype=torch.long), torch.ones(1, 2, dtype=torch.long)), ValueError,
                 "same batch size", id="transformer-batch-mismatch"),
    pytest.param(lambda: tf().loss((torch.ones(1, 3, dtype=torch.long), torch.ones(1, 2, dtype=torch.long)),
                                   torch.ones(1, 3, dtype=torch.long)), ValueError, "targets of shape",
                 id="transformer-loss-target-shape"),
    pytest.param(lambda: tf().loss(torch.ones(1, 3, dtype=torch.long), torch.ones(1, 3, dtype=torch.long)),
                 TypeError, r"pair \(src, tgt_in\)", id="transformer-loss-not-pair"),
    pytest.param(lambda: T.Block(8, 2)(torch.ones(1, 3, 8), memory=torch.ones(1, 2, 8)), ValueError,
                 "no cross-attention", id="transformer-block-memory-ignored"),
    pytest.param(lambda: T.Block(8, 2, cross=True)(torch.ones(1, 3, 8)), ValueError, "pass the encoder output",
                 id="transformer-block-memory-missing"),
    pytest.param(lambda: T.SinusoidalPositions(16, 10)(torch.zeros(1, 11, 16)), ValueError, "block_size=10",
                 id="transformer-sinusoidal-too-long"),
    pytest.param(lambda: T.LearnedPositions(16, 10)(torch.zeros(1, 2, 16), offset=-1), ValueError,
                 "offset must be >= 0", id="transformer-learned-negative-offset"),
    pytest.param(lambda: T.Rotary(7), ValueError, "even head size", id="transformer-rotary-odd"),
    pytest.param(lambda: T.FeedForward(8, 16, activation="relu"), ValueError, "activation must be",
                 id="transformer-ffn-activation"),
    pytest.param(lambda: T.flops_per_token(tf(), 0), ValueError, "context must be >= 1", id="transformer-flops-context"),
    pytest.param(lambda: T.Encoder(T.TransformerConfig(11, 13, n_embd=8, n_head=2), vocab=0), ValueError,
                 "vocab must be >= 1", id="transformer-encoder-vocab"),

    # ------------------------------------------------------------------ generate
    pytest.param(lambda: G.generate(lm(), [1, 2], -5), ValueError, "max_new_tokens must be >= 1",
                 id="generate-negative-max-new-tokens"),
    pytest.param(lambda: G.generate(lm(), [1, 2], 2.5), TypeError, "max_new_tokens must be an int",
                 id="generate-float-max-new-tokens"),
    pytest.param(lambda: G.generate(lm(), [1], 3, temperature=-1), ValueError, "temperature must be",
                 id="generate-negative-temperature"),
    pytest.param(lambda: G.generate(lm(), [1], 3, temperature=NAN), ValueError, "temperature must be a number, got NaN",
                 id="generate-nan-temperature"),
    pytest.param(lambda: G.generate(lm(), [1], 3, top_k=0), ValueError, "top_k must be >= 1", id="generate-top-k-zero"),
    pytest.param(lambda: G.generate(lm(), [1], 3, top_k=2.5), TypeError, "top_k must be an int",
                 id="generate-top-k-float"),
    pytest.param(lambda: G.generate(lm(), [1], 3, top_p=0), ValueError, r"top_p must be in \(0, 1\]",
                 id="generate-top-p-zero"),
    pytest.param(lambda: G.generate(lm(), [1], 3, top_p=1.5), ValueError, r"top_p must be in \(0, 1\]",
                 id="generate-top-p-above-one"),
    pytest.param(lambda: G.generate(lm(), [1], 3, temperature=0, top_p=NAN), ValueError, "top_p must be a number",
                 id="generate-top-p-nan-even-greedy"),
    pytest.param(lambda: G.generate(lm(), [1], 3, repetition_penalty=0), ValueError, "repetition_penalty must be",
                 id="generate-penalty-zero"),
    pytest.param(lambda: G.generate(lm(), [1], 3, repetition_penalty=NAN), ValueError, "repetition_penalty .*NaN",
                 id="generate-penalty-nan"),
    pytest.param(lambda: G.generate(lm(), [1, 99], 3), ValueError, r"prompt must be token ids in \[0, 5\)",
                 id="generate-prompt-out-of-vocab"),
    pytest.param(lambda: G.generate(lm(), [-1, 2], 3), ValueError, r"prompt must be token ids in \[0, 5\)",
                 id="generate-prompt-negative"),
    pytest.param(lambda: G.generate(lm(), "hello", 3), TypeError, "not a string", id="generate-prompt-string"),
    pytest.param(lambda: G.generate(lm(), [1.5, 2.0], 3), TypeError, "integer token ids", id="generate-prompt-float"),
    pytest.param(lambda: G.generate(lm(), [], 3), ValueError, "non-empty", id="generate-prompt-empty"),
    pytest.param(lambda: G.generate(lm(), [[1, 2], [3]], 3), ValueError, "rows of equal length",
                 id="generate-prompt-ragged"),
    pytest.param(lambda: G.generate(lm(), [1], 3, stop_tokens=[9]), ValueError, "stop_tokens must be token ids",
                 id="generate-stop-out-of-vocab"),
    pytest.param(lambda: G.generate(lm(), [1], 3, stop_tokens="ab"), TypeError, "stop_tokens must be a sequence",
                 id="generate-stop-string"),
    pytest.param(lambda: G.generate(lm(), [1], 3, seed=-1), ValueError, "seed must be >= 0", id="generate-seed"),
    pytest.param(lambda: G.generate(nn.Linear(2, 2), [1], 3), TypeError, "no cfg.block_size",
                 id="generate-model-without-window"),
    pytest.param(lambda: G.beam_search(lm(), [1], 3, beams=0), ValueError, "beams must be >= 1", id="generate-beams"),
    pytest.param(lambda: G.beam_search(lm(), [[1], [2]], 3), ValueError, "one prompt at a time",
                 id="generate-beam-batch"),
    pytest.param(lambda: G.beam_search(lm(), [1], 3, length_penalty=math.inf), ValueError,
                 "length_penalty must be finite", id="generate-beam-length-penalty"),
    pytest.param(lambda: G.beam_search(lm(), [7], 3), ValueError, r"prompt must be token ids in \[0, 5\)",
                 id="generate-beam-out-of-vocab"),
    pytest.param(lambda: G.filter_logits(torch.zeros(1, 5), top_k=0), ValueError, "top_k must be >= 1",
                 id="generate-filter-top-k"),
    pytest.param(lambda: G.filter_logits(torch.tensor([[1, 2]])), TypeError, "floating-point",
                 id="generate-filter-int-logits"),
    pytest.param(lambda: G.apply_repetition_penalty(torch.zeros(1, 5), torch.tensor([[1]]), -2.0), ValueError,
                 "repetition_penalty must be", id="generate-penalty-negative"),
    pytest.param(lambda: G.apply_repetition_penalty(torch.zeros(1, 5), torch.tensor([[7]]), 2.0), ValueError,
                 r"previous must be token ids in \[0, 5\)", id="generate-penalty-previous-out-of-vocab"),
    pytest.param(lambda: G.apply_repetition_penalty(torch.zeros(2, 5), torch.tensor([[1]]), 2.0), ValueError,
                 "same B", id="generate-penalty-batch"),

    # ------------------------------------------------------------------ train
    pytest.param(lambda: train.TrainConfig(eval_every=0), ValueError, "eval_every must be >= 1", id="train-eval-every"),
    pytest.param(lambda: train.TrainConfig(min_lr_ratio=5), ValueError, r"min_lr_ratio must be in \[0, 1\]",
                 id="train-min-lr-ratio"),
    pytest.param(lambda: train.TrainConfig(lr=0), ValueError, "lr must be a finite number > 0", id="train-lr-zero"),
    pytest.param(lambda: train.TrainConfig(lr=NAN), ValueError, "lr must be", id="train-lr-nan"),
    pytest.param(lambda: train.TrainConfig(steps=10.5), TypeError, "steps must be an int", id="train-float-steps"),
    pytest.param(lambda: train.TrainConfig(warmup=-1), ValueError, "warmup must be >= 0", id="train-warmup"),
    pytest.param(lambda: train.TrainConfig(betas=(0.9, 1.0)), ValueError, r"betas must be in \[0, 1\)",
                 id="train-betas"),
    pytest.param(lambda: train.TrainConfig(grad_clip=0), ValueError, "grad_clip must be > 0", id="train-grad-clip"),
    pytest.param(lambda: train.TrainConfig(weight_decay=-0.1), ValueError, "weight_decay", id="train-weight-decay"),
    pytest.param(lambda: train.TrainConfig(max_seconds=-1), ValueError, "max_seconds", id="train-max-seconds"),
    pytest.param(lambda: train.TrainConfig(sampling="shuffled"), ValueError, "sampling must be", id="train-sampling"),
    pytest.param(lambda: train.TokenStream([1]), ValueError, "at least 2 tokens", id="train-stream-short"),
    pytest.param(lambda: train.TokenStream([0.5, 1.5, 2.5]), TypeError, "integer token ids", id="train-stream-floats"),
    pytest.param(lambda: train.TokenStream("hello"), TypeError, "not a string", id="train-stream-string"),
    pytest.param(lambda: train.TokenStream([1, -2, 3]), ValueError, "token ids >= 0", id="train-stream-negative"),
    pytest.param(lambda: stream().batch(0, 4), ValueError, "batch_size must be >= 1", id="train-batch-size"),
    pytest.param(lambda: stream().batch(2, 4, mode="shuffled"), ValueError, "mode must be", id="train-batch-mode"),
    pytest.param(lambda: stream().windows(0), ValueError, "seq_len must be >= 1", id="train-windows-seq-len"),
    pytest.param(lambda: train.lr_at(-1, train.TrainConfig()), ValueError, "step must be >= 0", id="train-lr-at-step"),
    pytest.param(lambda: train.lr_at(0, {"lr": 1.0}), TypeError, "TrainConfig", id="train-lr-at-config"),
    pytest.param(lambda: train.History().plot(), ValueError, "no training steps", id="train-history-empty-plot"),
    pytest.param(lambda: train.train(lm(), [1, 2, 3], progress=False), TypeError, "must be a TokenStream",
                 id="train-data-list"),
    pytest.param(lambda: train.train(lm(), stream(), cfg={"steps": 5}, progress=False), TypeError, "TrainConfig",
                 id="train-config-dict"),
    pytest.param(lambda: train.train(nn.ReLU(), stream(), progress=False), TypeError, "with parameters",
                 id="train-model-without-parameters"),
    pytest.param(lambda: train.evaluate(lm(), AllIgnored()), ValueError, "no target to score",
                 id="train-evaluate-nothing-scored"),
    pytest.param(lambda: train.load_checkpoint("/nonexistent/run.pt", lm()), FileNotFoundError, "no checkpoint at",
                 id="train-checkpoint-missing"),
    pytest.param(lambda: train.load_checkpoint(corrupt_file(), lm()), ValueError, "not a readable checkpoint",
                 id="train-checkpoint-corrupt"),
    pytest.param(lambda: train.target_logprobs(lm(), torch.ones(1, 3, dtype=torch.long),
                                               torch.ones(1, 4, dtype=torch.long)),
                 ValueError, "same shape", id="train-target-logprobs-shape"),
    pytest.param(lambda: train.target_logprobs(lm(), torch.ones(1, 2, dtype=torch.long), torch.tensor([[1, 9]])),
                 ValueError, r"targets must be token ids in \[0, 5\)", id="train-target-out-of-vocab"),
    pytest.param(lambda: train.sequence_logprobs(lm(), [], 0), ValueError, "empty", id="train-sequences-empty"),
    pytest.param(lambda: train.sequence_logprobs(lm(), "abc", 0), TypeError, "list of token-id lists",
                 id="train-sequences-string"),
    pytest.param(lambda: train.sequence_logprobs(lm(), [["a", "b"]], 0), TypeError, "integer token ids",
                 id="train-sequences-words"),
    pytest.param(lambda: train.sequence_logprobs(lm(), [[1, -1]], 0), ValueError, "token ids >= 0",
                 id="train-sequences-negative"),
    pytest.param(lambda: train.sequence_logprobs(lm(), [[1]], -1), ValueError, "start_id must be >= 0",
                 id="train-sequences-start-id"),

    # ------------------------------------------------------------------ seq2seq
    pytest.param(lambda: seq2seq.PairData("reverse"), TypeError, "must be a data.tasks.Task", id="seq2seq-task-name"),
    pytest.param(lambda: seq2seq.PairData(tasks.Reverse(), []), ValueError, "non-empty list", id="seq2seq-no-examples"),
    pytest.param(lambda: seq2seq.PairData(tasks.Reverse(), eval_batch=0), ValueError, "eval_batch must be >= 1",
                 id="seq2seq-eval-batch"),
    pytest.param(lambda: seq2seq.PairData(tasks.Reverse()).windows(), ValueError, "fixed list of examples",
                 id="seq2seq-windows-without-examples"),
    pytest.param(lambda: seq2seq.PairData(tasks.Reverse()).batch(0), ValueError, "batch_size must be >= 1",
                 id="seq2seq-batch-size"),
    pytest.param(lambda: seq2seq.RNNSeq2Seq(5, 5, attention="bilinear"), ValueError, "attention must be",
                 id="seq2seq-attention-kind"),
    pytest.param(lambda: seq2seq.RNNSeq2Seq(3, 10), ValueError, "src_vocab must be >= 4", id="seq2seq-vocab"),
    pytest.param(lambda: rnn().encode(torch.tensor([[3, 4], [0, 0]])), ValueError, "non-padding",
                 id="seq2seq-all-padding-source"),
    pytest.param(lambda: rnn()(torch.tensor([[3, 9]]), torch.tensor([[1]])), ValueError, r"src must be token ids in \[0, 8\)",
                 id="seq2seq-source-out-of-vocab"),
    pytest.param(lambda: rnn()(torch.ones(1, 2), torch.tensor([[1]])), TypeError, "integer tensor",
                 id="seq2seq-float-source"),
    pytest.param(lambda: rnn().loss(torch.tensor([[3]]), torch.tensor([[3]])), TypeError, r"pair \(src, tgt_in\)",
                 id="seq2seq-loss-not-pair"),
    pytest.param(lambda: seq2seq.greedy(rnn(), torch.tensor([[3, 4]]), 0), ValueError, "max_len must be >= 1",
                 id="seq2seq-greedy-max-len"),
    pytest.param(lambda: seq2seq.greedy(nn.Linear(2, 2), torch.tensor([[3]]), 3), TypeError, "encode",
                 id="seq2seq-greedy-not-seq2seq"),
    pytest.param(lambda: seq2seq.exact_match(rnn(), seq2seq.PairData(tasks.Reverse())), TypeError,
                 "fixed list of examples", id="seq2seq-exact-match-without-examples"),

    # ------------------------------------------------------------------ metrics
    pytest.param(lambda: metrics.score([]), ValueError, "non-empty", id="metrics-score-empty"),
    pytest.param(lambda: metrics.score([-1.0, NAN]), ValueError, "NaN", id="metrics-score-nan"),
    pytest.param(lambda: metrics.score([0.5]), ValueError, "<= 0", id="metrics-score-probabilities"),
    pytest.param(lambda: metrics.score("-1"), TypeError, "not a string", id="metrics-score-string"),
    pytest.param(lambda: metrics.score([[-1.0, -2.0]]), ValueError, "1-D", id="metrics-score-2d"),
    pytest.param(lambda: metrics.Score(1.0, 0), ValueError, "n_tokens must be an int >= 1", id="metrics-score-no-tokens"),
    pytest.param(lambda: metrics.Score(NAN, 3), ValueError, "nll must be a number >= 0", id="metrics-score-nll-nan"),
    pytest.param(lambda: metrics.Score(-1.0, 3), ValueError, "nll must be a number >= 0", id="metrics-score-nll-negative"),
    pytest.param(lambda: metrics.Score(1.0, 1) + 3, TypeError, "unsupported operand", id="metrics-score-add-number"),
    pytest.param(lambda: metrics.perplexity([NAN]), ValueError, "NaN", id="metrics-perplexity-nan"),
    pytest.param(lambda: metrics.bits(NAN), ValueError, "NaN", id="metrics-bits-nan"),
    pytest.param(lambda: metrics.bits("1.0"), TypeError, "nats must be a number", id="metrics-bits-string"),
    pytest.param(lambda: metrics.count_tokens("a b c"), TypeError, "not a string", id="metrics-count-string"),
    pytest.param(lambda: metrics.pair_accuracy([-1.0], [-1.0, -2.0]), ValueError, "as many good as bad",
                 id="metrics-pairs-lengths"),
    pytest.param(lambda: metrics.pair_accuracy([NAN], [-1.0]), ValueError, "NaN", id="metrics-pairs-nan"),
    pytest.param(lambda: metrics.agreement_accuracy(lambda s: -1.0, []), ValueError, "no minimal pairs",
                 id="metrics-agreement-empty"),
    pytest.param(lambda: metrics.agreement_accuracy("lm", pairs()), TypeError, "must be a function",
                 id="metrics-agreement-not-callable"),
    pytest.param(lambda: metrics.agreement_accuracy(lambda s: NAN, pairs()), ValueError, "NaN",
                 id="metrics-agreement-nan-logprob"),
    pytest.param(lambda: metrics.distinct_n([], 2), ValueError, "texts is empty", id="metrics-distinct-empty"),
    pytest.param(lambda: metrics.distinct_n("a b c", 2), TypeError, "not a string", id="metrics-distinct-string"),
    pytest.param(lambda: metrics.distinct_n(["a"], 0), ValueError, "n must be >= 1", id="metrics-distinct-n"),
    pytest.param(lambda: metrics.distinct_n([["a", "b"]], 1), TypeError, "texts must be strings",
                 id="metrics-distinct-token-lists"),

    # ------------------------------------------------------------------ plot
    pytest.param(lambda: plot.heatmap(np.zeros((2, 2)), ["a"], ["x", "y"]), ValueError, "does not match",
                 id="plot-heatmap-labels"),
    pytest.param(lambda: plot.curves({}), ValueError, "series is empty", id="plot-curves-empty"),
    pytest.param(lambda: plot.curves({"a": ([1, 2, 3], [1, 2])}), ValueError, "same length", id="plot-curves-lengths"),
    pytest.param(lambda: plot.training_curves([1, 2], [1.0]), ValueError, "same length", id="plot-training-lengths"),
    pytest.param(lambda: plot.bars(["a", "b"], [1.0]), ValueError, "one value per label", id="plot-bars-lengths"),
    pytest.param(lambda: plot.scatter([1, 2], [1]), ValueError, "same length", id="plot-scatter-lengths"),
    pytest.param(lambda: plot.curves({"a": ("abc", [1, 2, 3])}), TypeError, "not a string", id="plot-curves-string"),
    pytest.param(lambda: plot.attention_grid(np.ones((2, 3, 2, 2)) / 2, ["a", "b"], ["c", "d"], row_names=["l0"]),
                 ValueError, "row_names has 1 names for 2 rows", id="plot-grid-row-names"),
    pytest.param(lambda: plot.masks({}), ValueError, "no masks", id="plot-masks-empty"),
    pytest.param(lambda: plot.masks({"m": np.ones(3)}), ValueError, "2-D", id="plot-masks-1d"),
    pytest.param(lambda: plot.token_strips({"a": "hello"}), TypeError, "list of token strings",
                 id="plot-strips-string"),

    # ------------------------------------------------------------------ data.tinylang
    pytest.param(lambda: tinylang.TinyLang(max_depth=-1), ValueError, "max_depth must be >= 0", id="tinylang-depth"),
    pytest.param(lambda: tinylang.TinyLang(max_depth=1.5), TypeError, "max_depth must be an int",
                 id="tinylang-float-depth"),
    pytest.param(lambda: tinylang.TinyLang(adj_prob=1.5), ValueError, r"in \[0, 1\]", id="tinylang-probability"),
    pytest.param(lambda: tinylang.TinyLang(adj_prob=NAN), ValueError, r"in \[0, 1\]", id="tinylang-nan-probability"),
    pytest.param(lambda: tinylang.TinyLang(max_depth=2, rc_prob=(0.5,)), ValueError, "one value per depth",
                 id="tinylang-per-depth"),
    pytest.param(lambda: tinylang.TinyLang().sample(-1), ValueError, "n must be >= 0", id="tinylang-sample-negative"),
    pytest.param(lambda: tinylang.TinyLang().sample(3, seed=None), TypeError, "seed must be an int",
                 id="tinylang-sample-unseeded"),
    pytest.param(lambda: tinylang.TinyLang().logprob("the dog sleeps"), TypeError, "list of words",
                 id="tinylang-logprob-string"),
    pytest.param(lambda: tinylang.TinyLang().minimal_pairs(0, 1), ValueError, "distance must be >= 1",
                 id="tinylang-pairs-distance"),
    pytest.param(lambda: tinylang.TinyLang().minimal_pairs(2, 0), ValueError, "n must be >= 1", id="tinylang-pairs-n"),
    pytest.param(lambda: tinylang.entropy_rate([], []), ValueError, "at least one sentence", id="tinylang-entropy-empty"),
    pytest.param(lambda: tinylang.entropy_rate([["a"]], [-1.0, -2.0]), ValueError, "one log-probability per sentence",
                 id="tinylang-entropy-lengths"),
    pytest.param(lambda: tinylang.entropy_rate([["a"]], [NAN]), ValueError, "not NaN", id="tinylang-entropy-nan"),
    pytest.param(lambda: tinylang.benchmark(0), ValueError, "n_train must be >= 1", id="tinylang-benchmark-size"),

    # ------------------------------------------------------------------ data.tasks
    pytest.param(lambda: tasks.Reverse(min_len=5, max_len=3), ValueError, "min_len <= max_len", id="tasks-reverse-lengths"),
    pytest.param(lambda: tasks.Reverse(n_symbols=30), ValueError, "n_symbols must be between 2 and 26",
                 id="tasks-reverse-symbols"),
    pytest.param(lambda: tasks.Reverse(min_len=2.5), TypeError, "min_len must be an int", id="tasks-reverse-float"),
    pytest.param(lambda: tasks.Numbers(max_digits=10), ValueError, "max_digits must be between 1 and 9",
                 id="tasks-numbers-digits"),
    pytest.param(lambda: tasks.number_words(10 ** 9), ValueError, "1,000,000,000", id="tasks-number-too-big"),
    pytest.param(lambda: tasks.number_words(3.5), TypeError, "needs an int", id="tasks-number-float"),
    pytest.param(lambda: tasks.Reverse().examples(0, seed=0), ValueError, "n must be >= 1", id="tasks-examples-n"),
    pytest.param(lambda: tasks.Reverse().examples(5, 0, sizes=[]), ValueError, "sizes is empty",
                 id="tasks-examples-no-sizes"),
    pytest.param(lambda: tasks.Reverse().examples(5, 0, sizes=[0]), ValueError, r"size \(a string length\) must be >= 1",
                 id="tasks-examples-size-zero"),
    pytest.param(lambda: tasks.Numbers().sample(random.Random(0), size=12), ValueError, "between 1 and 9",
                 id="tasks-numbers-size"),
    pytest.param(lambda: tasks.Reverse().encode_src(["zz"]), ValueError, "not a source symbol", id="tasks-unknown-src"),
    pytest.param(lambda: tasks.Numbers().encode_tgt(["x"]), ValueError, "not a target symbol", id="tasks-unknown-tgt"),
    pytest.param(lambda: tasks.Reverse().encode_src("abc"), TypeError, "not a string", id="tasks-encode-string"),
    pytest.param(lambda: tasks.Reverse().decode_tgt([99]), ValueError, r"target ids must be ints in \[0, 23\)",
                 id="tasks-decode-out-of-vocab"),
    pytest.param(lambda: tasks.Reverse(min_len=1, max_len=1, n_symbols=2).examples(5, 0), ValueError,
                 "cannot produce 5 distinct", id="tasks-too-few-distinct"),

    # ------------------------------------------------------------------ evaluate
    pytest.param(lambda: ev.bits_per_char(3.0, ""), ValueError, "the text is empty", id="evaluate-bpc-empty"),
    pytest.param(lambda: ev.bits_per_byte(-1.0, "abc"), ValueError, "total_nats must be >= 0", id="evaluate-bpb-neg"),
    pytest.param(lambda: ev.confusion_matrix([0, 1], [0]), ValueError, "differ in length", id="evaluate-cm-lengths"),
    pytest.param(lambda: ev.precision_recall_f1([0, -1], [0, 1]), ValueError, "class ids >= 0", id="evaluate-f1-neg"),
    pytest.param(lambda: ev.exact_match(3, "a"), TypeError, "strings", id="evaluate-em-type"),
    pytest.param(lambda: ev.token_f1("a", [None]), TypeError, "strings", id="evaluate-f1-type"),
    pytest.param(lambda: ev.bleu(["a b"], ["a", "b"]), ValueError, "references for each", id="evaluate-bleu-refs"),
    pytest.param(lambda: ev.chrf(["a"], []), ValueError, "references for each", id="evaluate-chrf-refs"),
    pytest.param(lambda: ev.bootstrap_ci([1.0]), ValueError, "at least two values", id="evaluate-bootstrap-short"),
    pytest.param(lambda: ev.paired_bootstrap([1, 0], [1]), ValueError, "the same items", id="evaluate-paired-lengths"),
    pytest.param(lambda: ev.reliability([1.5], [1]), ValueError, r"in \[0, 1\]", id="evaluate-reliability-range"),
    pytest.param(lambda: ev.flops_per_token(-5), ValueError, "n_params must be >= 0", id="evaluate-flops-neg"),
    pytest.param(lambda: ev.chinchilla_allocation(0), ValueError, "compute must be > 0", id="evaluate-chinchilla-zero"),
    pytest.param(lambda: ev.fit_power_law([1, 2], [1, 2], floor=1.5), ValueError, "y > floor",
                 id="evaluate-power-below-floor"),
    pytest.param(lambda: ev.fit_power_law([2, 2], [1, 2]), ValueError, "two distinct x", id="evaluate-power-one-x"),
    pytest.param(lambda: ev.ngram_overlap([["a"]], [["a"]], n=0), ValueError, "n must be >= 1",
                 id="evaluate-overlap-n"),
    pytest.param(lambda: ev.ngram_overlap([], [["a"]]), ValueError, "test is empty", id="evaluate-overlap-empty"),
    pytest.param(lambda: ev.weat(np.ones((2, 2)), np.ones((3, 2)), np.ones((1, 2)), np.ones((1, 2))), ValueError,
                 "same size", id="evaluate-weat-sizes"),
    pytest.param(lambda: ev.weat(np.ones(2), np.ones(2), np.ones((1, 2)), np.ones((1, 2))), ValueError,
                 "2-D array", id="evaluate-weat-1d"),

    # ------------------------------------------------------------------ data.corpora
    pytest.param(lambda: corpora.get("wikitext-103"), KeyError, "unknown corpus", id="corpora-unknown-name"),
    pytest.param(lambda: corpora.get(2), TypeError, "corpus name must be a string", id="corpora-name-type"),
    pytest.param(lambda: corpora.get("ptb").file("ptb.dev.txt"), KeyError, "has no file", id="corpora-unknown-file"),
    pytest.param(lambda: corpora.path("wikitext-3", "train.txt"), KeyError, "known corpora", id="corpora-path-unknown"),
    pytest.param(lambda: corpora.search_paths("ptb", "dev.txt"), KeyError, "has no file", id="corpora-search-unknown"),
    pytest.param(lambda: corpora.wikitext2("dev"), ValueError, "split must be", id="corpora-wikitext-split"),
    pytest.param(lambda: corpora.ptb("dev"), ValueError, "split must be", id="corpora-ptb-split"),

    # ------------------------------------------------------------------ ngram
    pytest.param(lambda: ngram.fit(["the cat sat"], 2), TypeError, "a string where a list of tokens is expected",
                 id="ngram-fit-strings"),
    pytest.param(lambda: ngram.fit("the cat sat", 2), TypeError, "a string where a list of tokens is expected",
                 id="ngram-fit-one-string"),
    pytest.param(lambda: ngram.fit([["a"]], 0), ValueError, "order must be >= 1", id="ngram-order-zero"),
    pytest.param(lambda: ngram.fit([["a"]], 2.0), TypeError, "order must be an int", id="ngram-order-float"),
    pytest.param(lambda: ngram.fit([["a"]], 2, "witten-bell"), ValueError, "unknown smoothing", id="ngram-smoothing"),
    pytest.param(lambda: ngram.fit([], 2), ValueError, "empty corpus", id="ngram-empty"),
    pytest.param(lambda: ngram.fit([["a"]], 2, min_count=0), ValueError, "min_count must be >= 1", id="ngram-min-count"),
    pytest.param(lambda: ngram.fit([["a"]], 2, "add-k", k=0), ValueError, "k > 0", id="ngram-add-k-zero"),
    pytest.param(lambda: ngram.fit([["a"]], 2, "add-k", k=NAN), ValueError, "k > 0", id="ngram-add-k-nan"),
    pytest.param(lambda: ngram.fit([["a", "b"]], 2, "kn", discount=5), ValueError, r"discount must be in \(0, 1\]",
                 id="ngram-kn-discount-5"),
    pytest.param(lambda: ngram.fit([["a", "b"]], 2, "kn", discount=0), ValueError, r"discount must be in \(0, 1\]",
                 id="ngram-kn-discount-0"),
    pytest.param(lambda: ngram.fit([["a", "b"]], 2, "interpolated", lambdas=[0.5]), ValueError,
                 "need 2 interpolation weights", id="ngram-lambdas-count"),
    pytest.param(lambda: ngram.fit([["a", "b"]], 2, "interpolated", lambdas=[-0.1, 0.5]), ValueError,
                 r"interpolation weight must be in \[0, 1\]", id="ngram-lambdas-negative"),
    pytest.param(lambda: ngram.fit([["a", "b"]], 2, "interpolated", lambdas=[NAN, 0.5]), ValueError,
                 r"interpolation weight must be in \[0, 1\]", id="ngram-lambdas-nan"),
    pytest.param(lambda: ngram.fit([["a", "b"]], 2, "interpolated", heldout=["a b"]), TypeError,
                 "a string where a list of tokens is expected", id="ngram-heldout-strings"),
    pytest.param(lambda: ngram.KneserNey(ngram.NGramCounts([["a"]], 2), 3), ValueError, "needs counts up to order 3",
                 id="ngram-order-above-counts"),
    pytest.param(lambda: ngram.MLE([["a"]], 1), TypeError, "NGramCounts", id="ngram-model-without-counts"),
    pytest.param(lambda: kn().prob("b", "a b"), TypeError, "list of words", id="ngram-prob-string-context"),
    pytest.param(lambda: kn().prob(3, ["a"]), TypeError, "word must be a string", id="ngram-prob-word-type"),
    pytest.param(lambda: kn().sentence_logprob("a b"), TypeError, "list of words", id="ngram-sentence-string"),
    pytest.param(lambda: kn().score(["a b", "c"]), TypeError, "a string where a list of tokens", id="ngram-score-strings"),
    pytest.param(lambda: kn().sample(temperature=0), ValueError, "temperature must be a finite number > 0",
                 id="ngram-sample-temperature"),
    pytest.param(lambda: kn().sample(max_len=0), ValueError, "max_len must be >= 1", id="ngram-sample-max-len"),
    pytest.param(lambda: kn().sample(prefix="a b"), TypeError, "list of words", id="ngram-sample-prefix-string"),

    # ------------------------------------------------------------------ tokenize
    pytest.param(lambda: toks()["char"].encode(None), TypeError, "text must be a str", id="tokenize-char-encode-none"),
    pytest.param(lambda: toks()["word"].encode(3), TypeError, "text must be a str", id="tokenize-word-encode-int"),
    pytest.param(lambda: toks()["bpe"].encode(None), TypeError, "text must be a str", id="tokenize-bpe-encode-none"),
    pytest.param(lambda: toks()["bpe"].encode(b"abc", allow_special=False), TypeError, "text must be a str",
                 id="tokenize-bpe-encode-bytes"),
    pytest.param(lambda: toks()["wordpiece"].encode(None), TypeError, "text must be a str",
                 id="tokenize-wordpiece-encode-none"),
    pytest.param(lambda: toks()["char"].decode([1.5]), TypeError, "integer token ids", id="tokenize-decode-float"),
    pytest.param(lambda: toks()["word"].decode("12"), TypeError, "not a string", id="tokenize-decode-string"),
    pytest.param(lambda: toks()["bpe"].decode([10 ** 6]), ValueError, "token ids must lie in",
                 id="tokenize-decode-out-of-vocab"),
    pytest.param(lambda: toks()["bpe"].special_id("<nope>"), KeyError, "not a special token", id="tokenize-special-id"),
    pytest.param(lambda: tok.BPETokenizer.train("abc", 100), ValueError, "at least the 256 bytes",
                 id="tokenize-bpe-vocab-below-bytes"),
    pytest.param(lambda: tok.BPETokenizer.train("abc", 300.5), TypeError, "vocab_size must be an int",
                 id="tokenize-bpe-vocab-float"),
    pytest.param(lambda: tok.BPETokenizer.train("abc", 300, min_frequency=0), ValueError, "min_frequency must be >= 1",
                 id="tokenize-bpe-min-frequency"),
    pytest.param(lambda: tok.BPETokenizer.train(None, 300), TypeError, "text must be a str", id="tokenize-bpe-train-none"),
    pytest.param(lambda: tok.BPETokenizer([(0, 300)]), ValueError, "merge 0 must be a pair of earlier token ids",
                 id="tokenize-bpe-bad-merge"),
    pytest.param(lambda: tok.BPETokenizer([], pattern="("), ValueError, "not a valid regular expression",
                 id="tokenize-bpe-pattern"),
    pytest.param(lambda: tok.WordPieceTokenizer.train("hello world", 5), ValueError, "smaller than the base alphabet",
                 id="tokenize-wordpiece-vocab-below-alphabet"),
    pytest.param(lambda: tok.WordPieceTokenizer(["a"], max_chars=0), ValueError, "max_chars must be >= 1",
                 id="tokenize-wordpiece-max-chars"),
    pytest.param(lambda: tok.WordTokenizer.train("a b", max_vocab=0), ValueError, "max_vocab must be >= 1",
                 id="tokenize-word-max-vocab"),
    pytest.param(lambda: tok.CharTokenizer(["ab"]), ValueError, "single characters", id="tokenize-char-multichar"),
    pytest.param(lambda: tok.CharTokenizer.train("abc", specials="<pad>"), TypeError, "specials must be a list",
                 id="tokenize-specials-string"),
    pytest.param(lambda: tok.split_words(None), TypeError, "text must be a str", id="tokenize-split-none"),
    pytest.param(lambda: tok.from_dict({"type": "sentencepiece"}), ValueError, "unknown tokenizer type",
                 id="tokenize-unknown-type"),
    pytest.param(lambda: tok.from_dict("char"), TypeError, "state is a dict", id="tokenize-state-type"),
    pytest.param(lambda: tok.load("/nonexistent/tokenizer.json"), FileNotFoundError, "tokenizer.json",
                 id="tokenize-load-missing"),
    pytest.param(lambda: tok.load(corrupt_file(b"{not json")), ValueError, "not a tokenizer JSON file",
                 id="tokenize-load-corrupt"),
    pytest.param(lambda: tok.from_pretrained("no-such-tokenizer"), FileNotFoundError, "no-such-tokenizer",
                 id="tokenize-unknown-name"),
    # --------------------------------------------------------------------- hub (shipped artefacts)
    pytest.param(lambda: hub.load("no-such-model"), FileNotFoundError, "no artefact 'no-such-model'",
                 id="hub-load-unknown-name"),
    pytest.param(lambda: hub.load(42), TypeError, "named by a string or a path", id="hub-load-wrong-type"),
    pytest.param(lambda: hub.verify(tempfile.mkdtemp()), hub.ArtefactError, "no manifest.json", id="hub-verify-not-artefact"),
    pytest.param(lambda: hub.load("tinylang-bert", kind="GPT"), hub.ArtefactError, "holds a BERT, not a GPT",
                 id="hub-load-wrong-kind"),
    pytest.param(lambda: hub.save(object(), tempfile.mkdtemp() + "/x"), TypeError, "cannot save a object",
                 id="hub-save-unknown-object"),
    pytest.param(lambda: hub.save(tiny_gpt(), tempfile.mkdtemp() + "/x", tokenizer=tok.CharTokenizer("ab")),
                 hub.ArtefactError, "vocab_size=10 but its tokenizer has 3 tokens", id="hub-save-tokenizer-mismatch"),
    pytest.param(lambda: hub.save(tiny_gpt(), tempfile.mkdtemp() + "/x", tokenizer=[1, 2]), TypeError, "must hold strings",
                 id="hub-save-vocab-not-strings"),
    # --------------------------------------------------------------------- checks and utils
    pytest.param(lambda: check_int("steps", True), TypeError, "steps must be an int", id="checks-int-bool"),
    pytest.param(lambda: check_number("lr", NAN), ValueError, "lr must be a number, got NaN", id="checks-number-nan"),
    pytest.param(lambda: utils.count_params("model"), TypeError, "needs a torch.nn.Module", id="utils-count-params"),
    pytest.param(lambda: utils.cross_entropy(torch.zeros(2, 3, 5), torch.zeros(2, 4, dtype=torch.long)), ValueError,
                 "need targets of shape", id="utils-cross-entropy-shape"),
    # --------------------------------------------------------------------- gpt
    pytest.param(lambda: gpt.GPTConfig(vocab_size=10, n_embd=30, n_head=4), ValueError, "not divisible by n_head",
                 id="gpt-config-heads"),
    pytest.param(lambda: gpt.GPTConfig(vocab_size=0), ValueError, "vocab_size must be >= 1", id="gpt-config-vocab"),
    pytest.param(lambda: gpt.GPTConfig(vocab_size=10, n_layer=2.0), TypeError, "n_layer must be an int",
                 id="gpt-config-float-layers"),
    pytest.param(lambda: gpt.GPTConfig(vocab_size=10, dropout=1.0), ValueError, r"dropout must be a number in \[0, 1\)",
                 id="gpt-config-dropout"),
    pytest.param(lambda: gpt.GPTConfig(vocab_size=10, activation="relu"), ValueError, "activation must be one of",
                 id="gpt-config-activation"),
    pytest.param(lambda: tiny_gpt()(torch.zeros(1, 9, dtype=torch.long)), ValueError, "longer than the context window",
                 id="gpt-forward-too-long"),
    pytest.param(lambda: tiny_gpt()(torch.tensor([[3, 10]])), ValueError, r"token ids must be in \[0, 10\)",
                 id="gpt-forward-out-of-vocab"),
    pytest.param(lambda: gpt.GPT.from_pretrained("tinylang-bert"), hub.ArtefactError, "holds a BERT, not a GPT",
                 id="gpt-from-pretrained-wrong-kind"),
    # --------------------------------------------------------------------- bert, mlm, finetune
    pytest.param(lambda: bert.BertConfig(vocab_size=10, pad_id=10), ValueError, r"pad_id must be a token id in \[0, 10\)",
                 id="bert-config-pad-id"),
    pytest.param(lambda: bert.BertConfig(vocab_size=10, embedding_size=0), ValueError, "embedding_size must be >= 1",
                 id="bert-config-embedding-size"),
    pytest.param(lambda: tiny_bert()(torch.zeros(1, 9, dtype=torch.long)), ValueError, "longer than block_size=8",
                 id="bert-forward-too-long"),
    pytest.param(lambda: bert.BertClassifier(tiny_bert(), 1), ValueError, "n_classes must be an int >= 2",
                 id="bert-classifier-one-class"),
    pytest.param(lambda: bert.mask_tokens(torch.zeros(2, 4, dtype=torch.long), 3, [0], 10, prob=0.0), ValueError,
                 r"prob must be in \(0, 1\)", id="bert-mask-prob"),
    pytest.param(lambda: mlm.make_examples([[[5, 6]]], 1, 2, max_len=2, nsp=False), ValueError, "max_len must be an int >= 3",
                 id="mlm-examples-max-len"),
    pytest.param(lambda: mlm.make_examples("text", 1, 2, max_len=8, nsp=False), TypeError, "docs must be a list of documents",
                 id="mlm-examples-string"),
    pytest.param(lambda: mlm.MLMData(mlm.make_examples([[[5, 6, 7]]], 1, 2, 8, False), 10, 0, 3, [1, 2], masking="sometimes"),
                 ValueError, "masking must be 'static' or 'dynamic'", id="mlm-data-masking"),
    pytest.param(lambda: mlm.MLMData(mlm.make_examples([[[5, 6, 7]]], 1, 2, 8, False), 10, 0, 3, [1, 2], masking="static",
                                     n_static=0), ValueError, "n_static must be an int >= 1", id="mlm-data-n-static"),
    pytest.param(lambda: mlm.MLMData([], 10, 0, 3, [1, 2]), ValueError, "no examples", id="mlm-data-empty"),
    pytest.param(lambda: mlm.fill_mask(tiny_bert(), char_tok(), "abc"), ValueError, r"no \[MASK\]", id="mlm-fill-no-mask"),
    pytest.param(lambda: mlm.fill_mask(tiny_bert(), char_tok(), "a[MASK]", k=0), ValueError, "k must be an int in",
                 id="mlm-fill-k"),
    pytest.param(lambda: mlm.fill_mask(tiny_bert(), char_tok(), None), TypeError, r"text must be a str containing \[MASK\]",
                 id="mlm-fill-none"),
    pytest.param(lambda: finetune.ClassificationData([[5]], [0, 1], 1, 2, 0), ValueError, "as many labels as sequences",
                 id="finetune-data-labels"),
    pytest.param(lambda: finetune.ClassificationData(["ab"], [0], 1, 2, 0), TypeError, "not strings",
                 id="finetune-data-strings"),
    pytest.param(lambda: finetune.ClassificationData([[5]], [0], 1, 2, 0, max_len=2), ValueError, "max_len must be an int >= 3",
                 id="finetune-data-max-len"),
    pytest.param(lambda: finetune.ClassificationData([[5]], [0], 1, 2, 0, groups=[1, 2]), ValueError, "one group per sequence",
                 id="finetune-data-groups"),
    pytest.param(lambda: finetune.mean_ci([0.5]), ValueError, "at least two values", id="finetune-ci-one-value"),
    pytest.param(lambda: finetune.mean_ci([0.5, NAN]), ValueError, "finite numbers", id="finetune-ci-nan"),
    pytest.param(lambda: finetune.fine_tune("bert", None), TypeError, "needs a BERT or a BertConfig", id="finetune-wrong-model"),
    pytest.param(lambda: finetune.fine_tune(tiny_bert().cfg, None, learning_rate=1e-3), TypeError,
                 "unknown fine-tuning settings", id="finetune-unknown-setting"),
    # --------------------------------------------------------------------- nnlm
    pytest.param(lambda: nnlm.BigramNet(0), ValueError, "vocab_size must be an int >= 1", id="nnlm-bigram-vocab"),
    pytest.param(lambda: nnlm.NNLMConfig(10, tie=True, emb_dim=8, hidden=16), ValueError, "weight tying needs hidden == emb_dim",
                 id="nnlm-config-tie"),
    pytest.param(lambda: nnlm.RecurrentConfig(10, kind="transformer"), ValueError, "kind must be one of",
                 id="nnlm-config-kind"),
    pytest.param(lambda: nnlm.WordLMConfig(100, cutoffs=(50, 20)), ValueError, "cutoffs must increase strictly",
                 id="nnlm-config-cutoffs"),
    pytest.param(lambda: nnlm.WordLMConfig(100, dropout=-0.1), ValueError, r"dropout must be a number in \[0, 1\)",
                 id="nnlm-config-dropout"),
    pytest.param(lambda: nnlm.sample(nnlm.BigramNet(3), ["a", "b", "<eos>"], temperature=NAN), ValueError,
                 "temperature must be a finite number > 0", id="nnlm-sample-temperature"),
    pytest.param(lambda: nnlm.sample(nnlm.BigramNet(2), ["a", "b"]), ValueError, "is not in the vocabulary",
                 id="nnlm-sample-no-eos"),
    pytest.param(lambda: nnlm.sample(nnlm.BigramNet(3), ["a", "b", "<eos>"], n=0), ValueError, "n must be >= 1",
                 id="nnlm-sample-n"),
    pytest.param(lambda: nnlm.frequency_vocab(["the cat sat"]), TypeError, "a string where a list of tokens is expected",
                 id="nnlm-vocab-strings"),
    pytest.param(lambda: nnlm.encode([["the", 3]], ["the"]), TypeError, "tokens must be strings", id="nnlm-encode-int-token"),
    pytest.param(lambda: nnlm.stream([[1, 2]], -1), ValueError, "eos_id must be a token id", id="nnlm-stream-eos"),
    pytest.param(lambda: nnlm.gradient_norms(nnlm.BigramNet(3), torch.tensor([[0, 1]])), TypeError, "needs a RecurrentLM",
                 id="nnlm-gradient-norms-model"),
    pytest.param(lambda: nnlm.BigramNet(3)(torch.tensor([[0, 3]])), ValueError, r"token ids must lie in \[0, 3\)",
                 id="nnlm-forward-out-of-vocab"),
    # --------------------------------------------------------------------- embeddings
    pytest.param(lambda: E.SGNSConfig(dim=0), ValueError, "SGNSConfig.dim must be >= 1", id="embeddings-sgns-dim"),
    pytest.param(lambda: E.SGNSConfig(subsample=1.5), ValueError, "0 <= subsample < 1", id="embeddings-sgns-subsample"),
    pytest.param(lambda: E.GloVeConfig(x_max=0), ValueError, "x_max, alpha and lr > 0", id="embeddings-glove-xmax"),
    pytest.param(lambda: E.Corpus(["the cat sat"]), TypeError, "a string where a list of tokens is expected",
                 id="embeddings-corpus-strings"),
    pytest.param(lambda: E.Corpus([["a", "a"]]), ValueError, "at least 2 distinct words", id="embeddings-corpus-one-word"),
    pytest.param(lambda: E.Vectors(["a", "b"], np.zeros((3, 4))), ValueError, r"matrix must be \(len\(words\), d\)",
                 id="embeddings-vectors-shape"),
    pytest.param(lambda: E.Vectors(["a", "b"], np.full((2, 4), NAN)), ValueError, "must be finite", id="embeddings-vectors-nan"),
    pytest.param(lambda: E.Vectors(["a", "b"], np.eye(2)).nearest("a", k=0), ValueError, "k must be an int >= 1",
                 id="embeddings-nearest-k"),
    pytest.param(lambda: E.Vectors(["a", "b"], np.eye(2)).nearest(np.ones(3)), ValueError, "a query vector must have shape",
                 id="embeddings-nearest-vector"),
    pytest.param(lambda: E.Vectors(["a", "b"], np.eye(2))["c"], KeyError, "has no vector", id="embeddings-unknown-word"),
    pytest.param(lambda: E.from_pretrained("wikitext2-bpe-4k"), hub.ArtefactError, "holds a Tokenizer, not a Vectors",
                 id="embeddings-from-pretrained-wrong-kind"),
    # --------------------------------------------------------------------- n-gram counts
    pytest.param(lambda: ngram_counts.NGramCounts(["the cat"], 2), TypeError, "a string where a list of tokens",
                 id="ngram-counts-strings"),
    pytest.param(lambda: ngram_counts.NGramCounts([["a"]], 0), ValueError, "n-gram order must be >= 1",
                 id="ngram-counts-order"),
    pytest.param(lambda: ngram_counts.Vocab.from_sentences([["a"]], min_count=0), ValueError, "min_count must be >= 1",
                 id="ngram-vocab-min-count"),
    # --------------------------------------------------------------------- leaderboard
    pytest.param(lambda: leaderboard.load("typo.json"), FileNotFoundError, "no artefact 'typo.json'",
                 id="leaderboard-load-typo"),
    pytest.param(lambda: leaderboard.Entry("m", "b", "test", 10.0, 0, 1, 1.0, 1, "cmd"), ValueError,
                 "n_tokens must be an int >= 1", id="leaderboard-entry-no-tokens"),
    pytest.param(lambda: leaderboard.Entry("m", "b", "test", NAN, 5, 1, 1.0, 1, "cmd"), ValueError, "nll must be a finite",
                 id="leaderboard-entry-nan"),
    pytest.param(lambda: leaderboard.Entry("m", "b", "test", 1.0, 5, 1, 1.0, 1, "cmd", kind="baseline"), ValueError,
                 "kind must be 'model' or 'floor'", id="leaderboard-entry-kind"),
    pytest.param(lambda: leaderboard.load().chart("tinylang", metric="accuracy"), ValueError, "metric must be",
                 id="leaderboard-chart-metric"),
    pytest.param(lambda: leaderboard.load().table("klingon"), KeyError, "no entries for klingon", id="leaderboard-table-unknown"),
    pytest.param(lambda: leaderboard.load().get("nope", "tinylang"), KeyError, "no entry for 'nope'", id="leaderboard-get-unknown"),
    # --------------------------------------------------------------------- experiments
    pytest.param(lambda: x_gpt.train_recipe("gpt-5"), KeyError, "unknown GPT recipe", id="experiments-gpt-recipe"),
    pytest.param(lambda: x_gpt.char_data("klingon"), ValueError, "corpus must be 'shakespeare' or 'tang'",
                 id="experiments-gpt-corpus"),
    pytest.param(lambda: x_bert.pretrain("roberta-large"), KeyError, "unknown BERT recipe", id="experiments-bert-recipe"),
    pytest.param(lambda: x_bert.task_for("sentiment", None), ValueError, "task must be 'grammaticality' or 'poets'",
                 id="experiments-bert-task"),
    pytest.param(lambda: x_nnlm.train_tinylang("Transformer-XL"), KeyError, "unknown TinyLang model",
                 id="experiments-nnlm-model"),
    pytest.param(lambda: x_nnlm.train_wikitext2("wikitext2-gpt"), KeyError, "unknown WikiText-2 model",
                 id="experiments-nnlm-wikitext"),
    pytest.param(lambda: x_tokenize.train("gpt4-tokenizer"), KeyError, "unknown tokenizer recipe",
                 id="experiments-tokenizer-recipe"),
    pytest.param(lambda: x_leaderboard.reproduce(["chapter-13"]), KeyError, "unknown leaderboard sources",
                 id="experiments-leaderboard-source"),
]


@pytest.mark.parametrize("call, error, match", CASES)
def test_bad_input_raises_clear_error(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_every_case_has_a_unique_id():
    ids = [p.id for p in CASES]
    assert len(ids) == len(set(ids)) and all(ids)


# ----------------------------------------------------------------------------- state left behind
class FailsAtStep(TinyLM):
    """Raises on its ``n``-th forward pass: an error in the middle of decoding or scoring."""

    def __init__(self, n: int = 2):
        super().__init__()
        self.n, self.calls = n, 0

    def forward(self, idx):
        self.calls += 1
        if self.calls >= self.n:
            raise RuntimeError("boom")
        return super().forward(idx)

    def encode(self, src):                     # enough of a seq2seq model for seq2seq.greedy
        return (src,)

    def decode(self, tgt_in, src):
        return self(tgt_in)


@pytest.mark.parametrize("call", [
    pytest.param(lambda m: G.generate(m, [1, 2], 5), id="generate"),
    pytest.param(lambda m: G.generate(m, [1, 2], 5, seed=0, top_k=2), id="generate-sampled"),
    pytest.param(lambda m: G.beam_search(m, [1, 2], 5), id="beam_search"),
    pytest.param(lambda m: train.evaluate(m, stream(), seq_len=4), id="evaluate"),
    pytest.param(lambda m: train.sequence_logprobs(m, [[1, 2], [3]], 0, batch_size=1), id="sequence_logprobs"),
    pytest.param(lambda m: seq2seq.greedy(m, torch.tensor([[3, 4]]), 5), id="greedy"),
])
def test_a_failed_call_leaves_the_model_in_training_mode(call):
    model = FailsAtStep(1).train()                 # the first forward pass fails
    with pytest.raises(RuntimeError, match="boom"):
        call(model)
    assert model.training and all(m.training for m in model.modules())


def test_seeded_sampling_draws_from_a_cpu_generator(monkeypatch):
    """The same seed gives the same tokens on every device: the draw uses a CPU generator
    on the (B, V) probabilities moved to the CPU (a CUDA generator would draw differently)."""
    draws = []
    real = torch.multinomial

    def spy(probs, n, *args, generator=None, **kw):
        draws.append((probs.device.type, None if generator is None else generator.device.type))
        return real(probs, n, *args, generator=generator, **kw)

    monkeypatch.setattr(torch, "multinomial", spy)
    out = G.generate(lm(), [1, 2], 4, seed=3)
    assert draws == [("cpu", "cpu")] * 4
    gen, idx = torch.Generator().manual_seed(3), torch.tensor([[1, 2]])   # the same draws by hand
    for _ in range(4):
        probs = lm()(idx)[:, -1].softmax(-1)
        idx = torch.cat([idx, real(probs, 1, generator=gen)], 1)
    assert torch.equal(out, idx)
