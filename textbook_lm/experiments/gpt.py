"""Chapter 8's experiments: the character-level GPT recipes, the shipped checkpoint, the scaling
sweep and the leaderboard entries.

Commands (each writes into ``--out DIR``, default ``./artefacts``, or with ``--into-package``
into the package's shipped artefacts):

* ``python -m textbook_lm.experiments.gpt train shakespeare-char``: the shipped character GPT
  (6 x 180, about 25 minutes of a 2-core CPU).
* ``python -m textbook_lm.experiments.gpt train tinylang-gpt``: the 2-layer GPT of the TinyLang
  leaderboard, trained like Chapter 4's models (about a minute; float32, 0.4 MB).
* ``python -m textbook_lm.experiments.gpt sweep``: five sizes on the same token budget
  (about 10 minutes), stored as the result ``gpt-scaling``.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from textbook_lm import hub
from textbook_lm import seed as seed_all
from textbook_lm import train as tr
from textbook_lm.data import corpora, tinylang
from textbook_lm.experiments import add_output_args, output_dir
from textbook_lm.experiments import nnlm as nnlm_experiments
from textbook_lm.gpt import GPT, GPTConfig
from textbook_lm.leaderboard import Entry
from textbook_lm.nnlm import encode
from textbook_lm.tokenize import CharTokenizer

__all__ = ["RECIPES", "char_data", "train_recipe", "SWEEP_SIZES", "SWEEP_TRAIN", "scaling_sweep", "TINYLANG_GPT",
           "train_tinylang_gpt", "leaderboard_entries", "main"]

# nanoGPT's CPU recipe for Tiny Shakespeare (its README: loss 1.88): 4 layers, 4 heads,
# 128 wide, block 64, batch 12, 2,000 iterations, no dropout, lr 1e-3 -> 1e-4 after 100
# warmup steps, AdamW betas (0.9, 0.99), weight decay 0.1, gradient clipping 1.0, and, as in
# nanoGPT's defaults, no biases and the exact GELU.
RECIPES: dict[str, tuple[dict, dict]] = {
    "nanogpt-cpu": (dict(block_size=64, n_layer=4, n_head=4, n_embd=128, dropout=0.0, bias=False, activation="gelu"),
                    dict(steps=2000, batch_size=12, seq_len=64, lr=1e-3, warmup=100, min_lr_ratio=0.1,
                         weight_decay=0.1, betas=(0.9, 0.99), grad_clip=1.0, eval_every=250, eval_batches=40)),
    # the shipped checkpoint: as large as fits in 5 MB of float16 and 30 minutes of a 2-core CPU
    "shakespeare-char": (dict(block_size=128, n_layer=6, n_head=6, n_embd=180, dropout=0.1),
                         dict(steps=3600, batch_size=16, seq_len=128, lr=1.5e-3, warmup=200, min_lr_ratio=0.1,
                              weight_decay=0.1, betas=(0.9, 0.99), grad_clip=1.0, eval_every=500, eval_batches=40,
                              max_seconds=1740)),
}


def char_data(corpus: str = "shakespeare"):
    """Characters of a corpus as (tokenizer, train stream, validation stream).

    ``"shakespeare"``: Tiny Shakespeare split as nanoGPT does, the first 90% of the characters
    for training, the last 10% for validation. ``"tang"``: the Tang poems, one per line
    (newlines inside a poem become ``/``), the first 90% of the poems for training.
    """
    if corpus == "shakespeare":
        text = corpora.tiny_shakespeare()
        cut = int(0.9 * len(text))
        train_text, val_text = text[:cut], text[cut:]
    elif corpus == "tang":
        poems = [p["text"].replace("\n", "/") for p in corpora.tang_poems()]
        cut = int(0.9 * len(poems))
        train_text, val_text = "\n".join(poems[:cut]) + "\n", "\n".join(poems[cut:]) + "\n"
    else:
        raise ValueError(f"corpus must be 'shakespeare' or 'tang', got {corpus!r}")
    tok = CharTokenizer.train(train_text + val_text)
    return tok, tr.TokenStream(tok.encode(train_text), "train"), tr.TokenStream(tok.encode(val_text), "val")


def train_recipe(name: str, corpus: str = "shakespeare", steps: int | None = None, seed: int = 0,
                 checkpoint: str | Path | None = None, progress: bool = True, device: torch.device | None = None):
    """Train a recipe of :data:`RECIPES` on a character corpus; returns (model, tokenizer, history)."""
    if name not in RECIPES:
        raise KeyError(f"unknown GPT recipe {name!r}; known: {sorted(RECIPES)}")
    model_kw, train_kw = RECIPES[name]
    tok, train_data, val_data = char_data(corpus)
    if steps is not None:
        train_kw = {**train_kw, "steps": steps}
    seed_all(seed)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, **model_kw))
    if device is not None:
        model.to(device)
    history = tr.train(model, train_data, val_data, tr.TrainConfig(seed=seed, **train_kw), checkpoint=checkpoint,
                       progress=progress)
    return model, tok, history


# ---------------------------------------------------------------------- scaling sweep
SWEEP_SIZES = [(2, 2, 32), (2, 4, 64), (4, 4, 96), (4, 4, 128), (6, 6, 192)]   # (layers, heads, width)
SWEEP_TRAIN = dict(steps=1500, batch_size=12, seq_len=64, lr=1e-3, warmup=100, min_lr_ratio=0.1, weight_decay=0.1,
                   betas=(0.9, 0.99), grad_clip=1.0, eval_every=150, eval_batches=40)


def scaling_sweep(progress: bool = False, sizes: list[tuple[int, int, int]] | None = None,
                  seeds: tuple[int, ...] = (0,)) -> list[dict]:
    """Train ``sizes`` (default :data:`SWEEP_SIZES`) on Tiny Shakespeare characters with the same
    token budget (:data:`SWEEP_TRAIN`, 1.15M tokens), once per seed, and record, for each run, the
    non-embedding parameters, the validation curve and the final full validation loss."""
    tok, train_data, val_data = char_data("shakespeare")
    rows = []
    for seed in seeds:
        for n_layer, n_head, n_embd in sizes or SWEEP_SIZES:
            seed_all(seed)
            model = GPT(GPTConfig(tok.vocab_size, block_size=64, n_layer=n_layer, n_head=n_head, n_embd=n_embd,
                                  bias=False, activation="gelu"))
            t0 = time.perf_counter()
            h = tr.train(model, train_data, val_data, tr.TrainConfig(**SWEEP_TRAIN, seed=seed), progress=progress)
            rows.append({"n_layer": n_layer, "n_head": n_head, "n_embd": n_embd, "params": model.num_params(),
                         "tokens_per_step": h.tokens_per_step, "val_step": h.val_step, "val_loss": h.val_loss,
                         "final_val_loss": round(tr.evaluate(model.eval(), val_data, 64), 4),
                         "train_seconds": round(time.perf_counter() - t0, 1)})
            if seeds != (0,):
                rows[-1]["seed"] = seed
            print(f"{n_layer} x {n_embd} seed {seed}: {rows[-1]['params']:,} params, "
                  f"val {rows[-1]['final_val_loss']:.4f}, {rows[-1]['train_seconds']:.0f} s", flush=True)
    return rows


# ---------------------------------------------------------------------- leaderboard
TINYLANG_GPT = dict(block_size=64, n_layer=2, n_head=4, n_embd=64, bias=False, activation="gelu")
COMMAND = "python -m textbook_lm.experiments.leaderboard reproduce gpt"


def train_tinylang_gpt(progress: bool = False):
    """The 2-layer GPT on TinyLang, with Chapter 4's budget and loop: (model, vocab, history)."""
    return nnlm_experiments.train_tinylang("GPT", factory=lambda V: GPT(GPTConfig(V, **TINYLANG_GPT)),
                                           progress=progress)


def leaderboard_entries() -> list[Entry]:
    """A GPT on TinyLang (trained here like Chapter 4's models), and on Tiny Shakespeare
    characters the nanoGPT CPU recipe (trained here) and the shipped checkpoint."""
    tl = tinylang.benchmark()
    t0 = time.perf_counter()
    model, vocab, _ = train_tinylang_gpt()
    seconds = time.perf_counter() - t0
    s = tr.score_sequences(model, encode(tl.test, vocab), vocab.index("<eos>"))
    entries = [Entry("GPT (2 layers)", "tinylang", "test", s.nll, s.n_tokens, model.num_params(True),
                     round(seconds, 1), 8, COMMAND)]
    _, _, val_data = char_data("shakespeare")
    t0 = time.perf_counter()
    model, _, _ = train_recipe("nanogpt-cpu", progress=False)
    seconds = time.perf_counter() - t0
    n = len(val_data) - 1
    entries.append(Entry("GPT, nanoGPT CPU recipe", "tinyshakespeare-char", "val",
                         tr.evaluate(model.eval(), val_data, 64) * n, n, model.num_params(True), round(seconds, 1), 8,
                         COMMAND))
    model, _, info = hub.load("shakespeare-char", kind="GPT")
    entries.append(Entry("GPT, shipped checkpoint", "tinyshakespeare-char", "val",
                         tr.evaluate(model, val_data, model.cfg.block_size) * n, n, model.num_params(True),
                         info["train_seconds"], 8, info["command"], note="float16 weights"))
    return entries


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m textbook_lm.experiments.gpt",
                                 description="Train the book's shipped GPT, or run the scaling sweep (Chapter 8).")
    ap.add_argument("command", choices=["train", "sweep"])
    ap.add_argument("name", nargs="?", default="shakespeare-char", choices=["shakespeare-char", "tinylang-gpt"])
    ap.add_argument("--checkpoint", default=None, help="resumable training state (default: none)")
    add_output_args(ap)
    args = ap.parse_args(argv)
    if args.command == "sweep":
        command = "python -m textbook_lm.experiments.gpt sweep"
        rows = scaling_sweep()
        path = hub.save({"command": command, "train": SWEEP_TRAIN, "runs": rows}, output_dir(args, "gpt-scaling"),
                        info={"command": command})
        print(f"wrote {path}")
        return 0
    command = f"python -m textbook_lm.experiments.gpt train {args.name}"
    if args.name == "tinylang-gpt":
        t0 = time.perf_counter()
        model, vocab, history = train_tinylang_gpt(progress=True)
        seconds = time.perf_counter() - t0
        s = tr.score_sequences(model, encode(tinylang.benchmark().test, vocab), vocab.index("<eos>"))
        info = {"train_seconds": round(seconds, 1), "steps": history.step[-1], "test_nll": s.nll,
                "test_tokens": s.n_tokens, "val_curve": history.val_loss, "val_step": history.val_step,
                "command": command}
        path = hub.save(model, output_dir(args, args.name), tokenizer=vocab, info=info)
        print(f"{args.name}: test {s.nll / s.n_tokens:.4f} nats/token, {seconds:.0f} s -> {path}")
        return 0
    t0 = time.perf_counter()
    model, tok, history = train_recipe(args.name, checkpoint=args.checkpoint)
    _, _, val_data = char_data("shakespeare")
    val = tr.evaluate(model.eval(), val_data, model.cfg.block_size)
    info = {"train_seconds": round(history.seconds, 1), "steps": history.step[-1], "val_loss": round(val, 4),
            "val_curve": history.val_loss, "val_step": history.val_step, "tokens_per_step": history.tokens_per_step,
            "command": command}
    path = model.save_pretrained(output_dir(args, args.name), tokenizer=tok, info=info, half=True)
    print(f"{args.name}: val loss {val:.4f} nats/char after {history.step[-1]} steps, {history.seconds:.0f} s "
          f"training ({time.perf_counter() - t0:.0f} s in all) -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
