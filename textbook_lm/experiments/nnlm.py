"""Chapter 4's experiments: the TinyLang models trained live, the three shipped WikiText-2
models, and their leaderboard entries.

``python -m textbook_lm.experiments.nnlm train wikitext2-lstm [--out DIR | --into-package]``
trains one shipped model (about 10 minutes on a 2-core CPU; also ``wikitext2-rnn``,
``wikitext2-nnlm``).
"""
from __future__ import annotations

import argparse
import time

import torch

from textbook_lm import hub
from textbook_lm import train as tr
from textbook_lm.data import corpora, tinylang
from textbook_lm.experiments import add_output_args, output_dir
from textbook_lm.leaderboard import Entry
from textbook_lm.nnlm import (BengioNNLM, NNLMConfig, RecurrentConfig, RecurrentLM, WordLM, WordLMConfig, encode,
                              frequency_vocab, stream)
from textbook_lm.utils import count_params

__all__ = ["WIKITEXT2_TRAIN", "WIKITEXT2_MODELS", "train_wikitext2", "TINYLANG_MODELS", "TINYLANG_TRAIN",
           "train_tinylang", "leaderboard_entries", "main"]

WIKITEXT2_TRAIN = {"steps": 5000, "batch_size": 32, "seq_len": 70, "lr": 3e-3, "warmup": 200,
                   "min_lr_ratio": 0.05, "eval_every": 500, "max_seconds": 1500.0}
# name -> (leaderboard label, body); every one trained with WIKITEXT2_TRAIN
WIKITEXT2_MODELS = {"wikitext2-lstm": ("LSTM (adaptive softmax, 64/256)", "lstm"),
                    "wikitext2-rnn": ("RNN (adaptive softmax, 64/256)", "rnn"),
                    "wikitext2-nnlm": ("NNLM (4 words, adaptive softmax)", "nnlm")}


def train_wikitext2(name: str = "wikitext2-lstm", progress: bool = True):
    """Train one of the shipped WikiText-2 models (about 10 minutes each on a 2-core CPU).
    Returns (model, vocab, history, test score)."""
    if name not in WIKITEXT2_MODELS:
        raise KeyError(f"unknown WikiText-2 model {name!r}; known: {sorted(WIKITEXT2_MODELS)}")
    torch.manual_seed(0)
    train_s, valid_s, test_s = (corpora.wikitext2(s) for s in ("train", "valid", "test"))
    vocab = frequency_vocab(train_s)
    eos = vocab.index("<eos>")
    model = WordLM(WordLMConfig(len(vocab), body=WIKITEXT2_MODELS[name][1]))
    history = tr.train(model, tr.TokenStream(stream(encode(train_s, vocab), eos)),
                       tr.TokenStream(stream(encode(valid_s, vocab), eos)), tr.TrainConfig(**WIKITEXT2_TRAIN),
                       progress=progress)
    score = tr.score_sequences(model, encode(test_s, vocab), eos)
    return model, vocab, history, score


TINYLANG_MODELS = {
    "NNLM (4 words)": lambda V: BengioNNLM(NNLMConfig(V, context=4, emb_dim=32, hidden=128)),
    "RNN": lambda V: RecurrentLM(RecurrentConfig(V, "rnn", emb_dim=32, hidden=128)),
    "GRU": lambda V: RecurrentLM(RecurrentConfig(V, "gru", emb_dim=32, hidden=128)),
    "LSTM": lambda V: RecurrentLM(RecurrentConfig(V, "lstm", emb_dim=32, hidden=128)),
}
TINYLANG_TRAIN = {"steps": 2000, "batch_size": 32, "seq_len": 64, "lr": 3e-3, "warmup": 100, "eval_every": 500}


def train_tinylang(name: str, steps: int | None = None, progress: bool = False, seed: int = 0,
                   factory=None, train_overrides: dict | None = None):
    """Train one of :data:`TINYLANG_MODELS` (or ``factory(vocab_size)``, e.g. a GPT of Chapter 8) on
    the TinyLang benchmark, deterministic given ``seed``. Returns (model in eval mode, vocab, history)."""
    if factory is None and name not in TINYLANG_MODELS:
        raise KeyError(f"unknown TinyLang model {name!r}; known: {sorted(TINYLANG_MODELS)} (or pass a factory)")
    tl = tinylang.benchmark()
    vocab = frequency_vocab(tl.train)
    eos = vocab.index("<eos>")
    torch.manual_seed(seed)
    model = (factory or TINYLANG_MODELS[name])(len(vocab))
    cfg = tr.TrainConfig(**{**TINYLANG_TRAIN, **(train_overrides or {}), **({"steps": steps} if steps else {}),
                            "seed": seed})
    history = tr.train(model, tr.TokenStream(stream(encode(tl.train, vocab), eos)),
                       tr.TokenStream(stream(encode(tl.valid, vocab), eos)), cfg, progress=progress)
    return model.eval(), vocab, history


def leaderboard_entries() -> list[Entry]:
    """The TinyLang models (trained here, about 2 minutes) and the shipped WikiText-2 models
    (scored here from their float16 weights)."""
    command = "python -m textbook_lm.experiments.leaderboard reproduce nnlm"
    tl = tinylang.benchmark()
    entries = []
    for name in TINYLANG_MODELS:
        t0 = time.perf_counter()
        model, vocab, _ = train_tinylang(name)
        seconds = time.perf_counter() - t0
        s = tr.score_sequences(model, encode(tl.test, vocab), vocab.index("<eos>"))
        entries.append(Entry(name, "tinylang", "test", s.nll, s.n_tokens, count_params(model), round(seconds, 1), 4,
                             command))
    test = corpora.wikitext2("test")
    for name, (label, _) in WIKITEXT2_MODELS.items():
        model, vocab, info = hub.load(name, kind="WordLM")
        s = tr.score_sequences(model, encode(test, vocab), vocab.index("<eos>"))
        entries.append(Entry(label, "wikitext-2", "test", s.nll, s.n_tokens, count_params(model),
                             info["train_seconds"], 4, info["command"],
                             note="scored from the shipped checkpoint (float16 weights)"))
    return entries


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m textbook_lm.experiments.nnlm",
                                 description="Train the book's shipped WikiText-2 models (Chapter 4).")
    ap.add_argument("command", choices=["train"])
    ap.add_argument("name", choices=list(WIKITEXT2_MODELS))
    add_output_args(ap)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    model, vocab, history, score = train_wikitext2(args.name)
    seconds = time.perf_counter() - t0
    info = {"train_seconds": round(seconds, 1), "steps": len(history.step), "test_nll": score.nll,
            "test_tokens": score.n_tokens, "test_perplexity": round(score.perplexity, 2),
            "val_loss": history.val_loss, "val_step": history.val_step,
            "train_loss_tail": history.train_loss[-200:],
            "command": f"python -m textbook_lm.experiments.nnlm train {args.name}"}
    path = hub.save(model, output_dir(args, args.name), tokenizer=vocab, info=info, half=True)
    print(f"{args.name}: test perplexity {score.perplexity:.2f} ({score.n_tokens:,} tokens), {seconds:.0f} s -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
