"""GPT: a decoder-only Transformer trained to predict the next token (Radford et al., 2018, 2019).

The whole model is token embeddings + learned positions, a stack of pre-LN
``transformer.Block``s with causal self-attention and no cross-attention, a final LayerNorm,
and an output layer that shares its weights with the token embedding. Its parameter names
map one to one onto Hugging Face's GPT-2, so :meth:`GPT.from_hf_state_dict` loads real GPT-2
weights and reproduces its logits.

Shapes: B batch, T sequence length, C = n_embd, V = vocab_size.
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn

from textbook_lm.attention import KVCache
from textbook_lm.transformer import Block, LearnedPositions

__all__ = ["GPTConfig", "GPT", "hf_config", "RECIPES", "char_data", "train_recipe", "save_pretrained", "pretrained",
           "scaling_sweep", "leaderboard_entries"]


@dataclass
class GPTConfig:
    vocab_size: int
    block_size: int = 64            # the context window: the most tokens the model can see at once
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    activation: str = "gelu_tanh"   # GPT-2's GELU approximation
    eps: float = 1e-5               # LayerNorm epsilon
    bias: bool = True               # biases in linear layers and LayerNorms (GPT-2: yes; nanoGPT's recipes: no)

    def __post_init__(self):
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd={self.n_embd} is not divisible by n_head={self.n_head}")


class GPT(nn.Module):
    """A GPT language model: ``forward(idx (B, T)) -> logits (B, T, V)`` for the next token at every position."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        C = cfg.n_embd
        self.wte = nn.Embedding(cfg.vocab_size, C)                         # token embeddings
        self.wpe = LearnedPositions(C, cfg.block_size)                     # one vector per position
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(C, cfg.n_head, 4 * C, cfg.dropout, norm_first=True, eps=cfg.eps,
                                          activation=cfg.activation, bias=cfg.bias) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(C, eps=cfg.eps, bias=cfg.bias)
        self.lm_head = nn.Linear(C, cfg.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight                              # weight tying (Press & Wolf, 2017)
        self.apply(self._init)
        for name, p in self.named_parameters():                            # GPT-2: scale the residual projections
            if name.endswith(("attn.out.weight", "ffn.down.weight")):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def new_cache(self) -> list[KVCache]:
        """An empty key/value cache, one per block, for incremental decoding."""
        return [KVCache() for _ in self.blocks]

    def forward(self, idx: torch.Tensor, cache: list[KVCache] | None = None) -> torch.Tensor:
        """Next-token logits ``(B, T, V)``. With ``cache``, ``idx`` holds only the new tokens,
        which continue the ``len(cache[0])`` tokens already cached."""
        B, T = idx.shape
        past = len(cache[0]) if cache else 0
        if past + T > self.cfg.block_size:
            raise ValueError(f"sequence of {past + T} tokens is longer than the context window "
                             f"(block_size={self.cfg.block_size}); crop it (generate() keeps the last block_size)")
        if idx.numel() and (idx.min() < 0 or idx.max() >= self.cfg.vocab_size):
            raise ValueError(f"token ids must be in [0, {self.cfg.vocab_size}), got {idx.min().item()}..{idx.max().item()}")
        x = self.drop(self.wpe(self.wte(idx), offset=past))               # (B, T, C)
        for i, block in enumerate(self.blocks):
            x = block(x, causal=True, cache=None if cache is None else cache[i])
        return self.lm_head(self.ln_f(x))                                  # (B, T, V)

    def num_params(self, embeddings: bool = False) -> int:
        """Parameters (the tied output layer counted once); by default without the embeddings,
        the convention of Kaplan et al. (2020) for scaling laws."""
        n = sum(p.numel() for p in self.parameters())
        return n if embeddings else n - self.wte.weight.numel() - self.wpe.table.weight.numel()

    # ------------------------------------------------------------------ Hugging Face GPT-2 weights
    @classmethod
    def from_hf_state_dict(cls, sd: dict[str, torch.Tensor], cfg: GPTConfig) -> "GPT":
        """Build a GPT from the state dict of a Hugging Face ``GPT2LMHeadModel``.

        GPT-2 stores its linear layers as ``Conv1D`` with weights ``(in, out)``; ours are
        ``nn.Linear`` with ``(out, in)``, so those are transposed. Buffers (``attn.bias``,
        ``attn.masked_bias`` in older versions) are skipped; every parameter must be used.
        """
        model = cls(cfg)
        sd = {k.removeprefix("transformer."): v for k, v in sd.items()
              if not re.search(r"\.attn\.(masked_)?bias$", k) and k != "lm_head.weight"}
        names = {"wte.weight": "wte.weight", "wpe.weight": "wpe.table.weight",
                 "ln_f.weight": "ln_f.weight", "ln_f.bias": "ln_f.bias"}
        sub = {"ln_1": "ln_attn", "attn.c_attn": "attn.qkv", "attn.c_proj": "attn.out", "ln_2": "ln_ffn",
               "mlp.c_fc": "ffn.up", "mlp.c_proj": "ffn.down"}
        for i in range(cfg.n_layer):
            for theirs, ours in sub.items():
                for kind in ("weight", "bias"):
                    names[f"h.{i}.{theirs}.{kind}"] = f"blocks.{i}.{ours}.{kind}"
        missing = sorted(set(names) - set(sd))
        unused = sorted(set(sd) - set(names))
        if missing or unused:
            raise ValueError(f"state dict does not match the config: missing {missing[:5]}, unexpected {unused[:5]}")
        ours = model.state_dict()
        with torch.no_grad():
            for theirs, mine in names.items():
                w = sd[theirs]
                if theirs.endswith("weight") and any(s in theirs for s in ("c_attn", "c_proj", "c_fc")):
                    w = w.t()                                              # Conv1D (in, out) -> Linear (out, in)
                if ours[mine].shape != w.shape:
                    raise ValueError(f"{theirs}: shape {tuple(w.shape)} does not fit {mine} {tuple(ours[mine].shape)}")
                ours[mine].copy_(w)
        return model

    @classmethod
    def from_pretrained(cls, name: str = "gpt2") -> "GPT":
        """Real GPT-2 weights via Hugging Face ``transformers`` (needs the package and the
        network, or a local copy in the Hugging Face cache)."""
        try:
            from transformers import GPT2LMHeadModel
        except ImportError as e:
            raise ImportError("GPT.from_pretrained needs `transformers`: pip install transformers") from e
        try:
            hf = GPT2LMHeadModel.from_pretrained(name)
        except OSError as e:
            raise OSError(f"could not load {name!r} from Hugging Face (offline and not cached?): {e}") from e
        return cls.from_hf_state_dict(hf.state_dict(), hf_config(hf.config))

    def config_dict(self) -> dict:
        return asdict(self.cfg)


def hf_config(c) -> GPTConfig:
    """A :class:`GPTConfig` from a Hugging Face ``GPT2Config``."""
    if c.activation_function not in ("gelu_new", "gelu_pytorch_tanh"):
        raise ValueError(f"only GPT-2's tanh GELU is supported, got {c.activation_function!r}")
    if c.n_inner not in (None, 4 * c.n_embd):
        raise ValueError(f"only an MLP 4x as wide as n_embd is supported, got n_inner={c.n_inner}")
    return GPTConfig(vocab_size=c.vocab_size, block_size=c.n_positions, n_layer=c.n_layer, n_head=c.n_head,
                     n_embd=c.n_embd, dropout=0.0, activation="gelu_tanh", eps=c.layer_norm_epsilon)


# ---------------------------------------------------------------------- character-level recipes
PRETRAINED_DIR = Path(__file__).with_name("results") / "models"

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
    from textbook_lm.data import corpora
    from textbook_lm.tokenize import CharTokenizer
    from textbook_lm.train import TokenStream

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
    return tok, TokenStream(tok.encode(train_text), "train"), TokenStream(tok.encode(val_text), "val")


def train_recipe(name: str, corpus: str = "shakespeare", steps: int | None = None, seed: int = 0,
                 checkpoint: str | Path | None = None, progress: bool = True, device: torch.device | None = None):
    """Train a recipe of :data:`RECIPES` on a character corpus; returns (model, tokenizer, history)."""
    from textbook_lm import seed as seed_all
    from textbook_lm.train import TrainConfig, train

    model_kw, train_kw = RECIPES[name]
    tok, tr, va = char_data(corpus)
    if steps is not None:
        train_kw = {**train_kw, "steps": steps}
    seed_all(seed)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, **model_kw))
    if device is not None:
        model.to(device)
    history = train(model, tr, va, TrainConfig(seed=seed, **train_kw), checkpoint=checkpoint, progress=progress)
    return model, tok, history


def save_pretrained(name: str, model: GPT, tok, info: dict) -> Path:
    """float16 weights (the tied matrix stored once), config, characters and info."""
    from textbook_lm.utils import save_half

    state = {k: v for k, v in model.state_dict().items() if k != "lm_head.weight"}
    return save_half(PRETRAINED_DIR / f"{name}.pt", state, kind="GPT", config=asdict(model.cfg), chars=tok.itos[1:],
                     info=info)


def pretrained(name: str = "shakespeare-char"):
    """Load a shipped GPT: returns (model in eval mode, tokenizer, info)."""
    from textbook_lm.tokenize import CharTokenizer
    from textbook_lm.utils import load_half

    blob = load_half(PRETRAINED_DIR / f"{name}.pt", f"python -m textbook_lm.gpt train {name}")
    model = GPT(GPTConfig(**blob["config"]))
    state = blob["model"]
    state["lm_head.weight"] = state["wte.weight"]
    model.load_state_dict(state)
    return model.eval(), CharTokenizer(blob["chars"]), blob["info"]


# ---------------------------------------------------------------------- scaling sweep
SWEEP_SIZES = [(2, 2, 32), (2, 4, 64), (4, 4, 96), (4, 4, 128), (6, 6, 192)]   # (layers, heads, width)
SWEEP_TRAIN = dict(steps=1500, batch_size=12, seq_len=64, lr=1e-3, warmup=100, min_lr_ratio=0.1, weight_decay=0.1,
                   betas=(0.9, 0.99), grad_clip=1.0, eval_every=150, eval_batches=40)
SWEEP_PATH = Path(__file__).with_name("results") / "gpt_scaling.json"


def scaling_sweep(progress: bool = False) -> list[dict]:
    """Train :data:`SWEEP_SIZES` on Tiny Shakespeare characters with the same token budget
    (:data:`SWEEP_TRAIN`, 1.15M tokens) and record, for each, the non-embedding parameters,
    the validation curve and the final full validation loss."""
    import time

    from textbook_lm import seed as seed_all
    from textbook_lm.train import TrainConfig, evaluate, train

    tok, tr, va = char_data("shakespeare")
    rows = []
    for n_layer, n_head, n_embd in SWEEP_SIZES:
        seed_all(0)
        model = GPT(GPTConfig(tok.vocab_size, block_size=64, n_layer=n_layer, n_head=n_head, n_embd=n_embd,
                              bias=False, activation="gelu"))
        t0 = time.perf_counter()
        h = train(model, tr, va, TrainConfig(**SWEEP_TRAIN), progress=progress)
        rows.append({"n_layer": n_layer, "n_head": n_head, "n_embd": n_embd, "params": model.num_params(),
                     "tokens_per_step": h.tokens_per_step, "val_step": h.val_step, "val_loss": h.val_loss,
                     "final_val_loss": round(evaluate(model.eval(), va, 64), 4),
                     "train_seconds": round(time.perf_counter() - t0, 1)})
        print(f"{n_layer} x {n_embd}: {rows[-1]['params']:,} params, val {rows[-1]['final_val_loss']:.4f}, "
              f"{rows[-1]['train_seconds']:.0f} s", flush=True)
    return rows


# ---------------------------------------------------------------------- leaderboard
TINYLANG_GPT = dict(block_size=64, n_layer=2, n_head=4, n_embd=64, bias=False, activation="gelu")


def leaderboard_entries() -> list:
    """Chapter 8's entries: a GPT on TinyLang (trained here like Chapter 4's models), and on
    Tiny Shakespeare characters the nanoGPT CPU recipe (trained here) and the shipped checkpoint."""
    import time

    from textbook_lm import nnlm
    from textbook_lm import train as tr
    from textbook_lm.data import tinylang
    from textbook_lm.leaderboard import Entry

    command = "python -m textbook_lm.leaderboard reproduce gpt"
    tl = tinylang.benchmark()
    t0 = time.perf_counter()
    model, vocab, _ = nnlm.train_tinylang("GPT", factory=lambda V: GPT(GPTConfig(V, **TINYLANG_GPT)))
    seconds = time.perf_counter() - t0
    s = tr.score_sequences(model, nnlm.encode(tl.test, vocab), vocab.index("<eos>"))
    entries = [Entry("GPT (2 layers)", "tinylang", "test", s.nll, s.n_tokens, model.num_params(True),
                     round(seconds, 1), 8, command)]
    _, _, va = char_data("shakespeare")
    t0 = time.perf_counter()
    model, _, _ = train_recipe("nanogpt-cpu", progress=False)
    seconds = time.perf_counter() - t0
    n = len(va) - 1
    entries.append(Entry("GPT, nanoGPT CPU recipe", "tinyshakespeare-char", "val", tr.evaluate(model.eval(), va, 64) * n,
                         n, model.num_params(True), round(seconds, 1), 8, command))
    if (PRETRAINED_DIR / "shakespeare-char.pt").is_file():
        model, _, info = pretrained("shakespeare-char")
        entries.append(Entry("GPT, shipped checkpoint", "tinyshakespeare-char", "val",
                             tr.evaluate(model, va, model.cfg.block_size) * n, n, model.num_params(True),
                             info["train_seconds"], 8, info["command"], note="float16 weights"))
    return entries


def _main(argv: list[str] | None = None) -> int:
    import argparse
    import json
    import time

    from textbook_lm.train import evaluate
    from textbook_lm.utils import update_manifest

    ap = argparse.ArgumentParser(prog="python -m textbook_lm.gpt", description="Train the book's shipped GPT.")
    ap.add_argument("command", choices=["train", "sweep"])
    ap.add_argument("name", nargs="?", default="shakespeare-char", choices=["shakespeare-char"])
    ap.add_argument("--checkpoint", default=None, help="resumable training state (default: none)")
    args = ap.parse_args(argv)
    if args.command == "sweep":
        rows = scaling_sweep()
        SWEEP_PATH.write_text(json.dumps({"command": "python -m textbook_lm.gpt sweep", "train": SWEEP_TRAIN,
                                          "runs": rows}, indent=1) + "\n")
        print(f"wrote {SWEEP_PATH}")
        return 0
    t0 = time.perf_counter()
    model, tok, history = train_recipe(args.name, checkpoint=args.checkpoint)
    seconds = history.seconds
    _, _, va = char_data("shakespeare")
    val = evaluate(model.eval(), va, model.cfg.block_size)
    info = {"train_seconds": round(seconds, 1), "steps": history.step[-1], "val_loss": round(val, 4),
            "val_curve": history.val_loss, "val_step": history.val_step,
            "tokens_per_step": history.tokens_per_step, "command": f"python -m textbook_lm.gpt train {args.name}"}
    path = save_pretrained(args.name, model, tok, info)
    update_manifest(path, args.name, train_seconds=round(seconds, 1), val_loss=round(val, 4), command=info["command"])
    print(f"{args.name}: val loss {val:.4f} nats/char after {history.step[-1]} steps, {seconds:.0f} s training "
          f"({time.perf_counter() - t0:.0f} s in all), {path.stat().st_size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
