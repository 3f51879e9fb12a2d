"""GPT: a decoder-only Transformer trained to predict the next token (Radford et al., 2018, 2019).

The whole model is token embeddings + learned positions, a stack of pre-LN
``transformer.Block`` modules with causal self-attention and no cross-attention, a final LayerNorm,
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

from textbook_lm import hub
from textbook_lm.attention import KVCache
from textbook_lm.transformer import Block, LearnedPositions
from textbook_lm.checks import check_config
from textbook_lm.utils import count_params, init_weights

__all__ = ["GPTConfig", "GPT", "hf_config"]


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
        check_config(self, positive=("vocab_size", "block_size", "n_layer", "n_head", "n_embd"), fractions=("dropout",),
                     choices={"activation": ("gelu", "gelu_tanh")})
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd={self.n_embd} is not divisible by n_head={self.n_head}")
        if not self.eps > 0:
            raise ValueError(f"eps must be > 0, got {self.eps}")


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
        self.apply(init_weights)                                           # N(0, 0.02), zero biases
        for name, p in self.named_parameters():                            # GPT-2: scale the residual projections
            if name.endswith(("attn.out.weight", "ffn.down.weight")):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * cfg.n_layer))

    def new_cache(self) -> list[KVCache]:
        """An empty key/value cache, one per block, for incremental decoding."""
        return [KVCache() for _ in self.blocks]

    def forward(self, idx: torch.Tensor, cache: list[KVCache] | None = None) -> torch.Tensor:
        """Next-token logits ``(B, T, V)``. With ``cache``, ``idx`` holds only the new tokens,
        which continue the ``len(cache[0])`` tokens already cached."""
        return self.lm_head(self.features(idx, cache))                    # (B, T, V)

    def features(self, idx: torch.Tensor, cache: list[KVCache] | None = None) -> torch.Tensor:
        """The final hidden states ``(B, T, C)`` that the output layer reads (after the last
        LayerNorm); a reward model or a value head reads them too (Chapter 10)."""
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
        return self.ln_f(x)                                                # (B, T, C)

    def num_params(self, embeddings: bool = False) -> int:
        """Parameters (the tied output layer counted once); by default without the token and
        position embeddings, the convention of Kaplan et al. (2020) for scaling laws."""
        return count_params(self, embeddings)

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

    # ------------------------------------------------------------------ saving and loading
    def save_pretrained(self, directory: str | Path, tokenizer=None, info: dict | None = None,
                        half: bool = False) -> Path:
        """Save weights, config, ``tokenizer`` and ``info`` into a hub folder (see :mod:`textbook_lm.hub`)."""
        return hub.save(self, directory, tokenizer=tokenizer, info=info, half=half)

    @classmethod
    def from_pretrained(cls, name_or_dir: str | Path = "gpt2") -> "GPT":
        """A GPT in eval mode: a folder written by :meth:`save_pretrained`, a model shipped with
        the book (``"shakespeare-char"``; ``hub.load`` also returns its tokenizer), or otherwise
        a Hugging Face GPT-2 (``"gpt2"``, ``"gpt2-medium"``, ...; needs ``transformers`` and the
        network or its cache)."""
        try:
            return hub.load(name_or_dir, kind="GPT").obj
        except FileNotFoundError:
            pass
        try:
            from transformers import GPT2LMHeadModel
        except ImportError as e:
            raise ImportError(f"{str(name_or_dir)!r} is neither a folder nor a shipped model; loading it from "
                              f"Hugging Face needs `transformers`: pip install transformers") from e
        try:
            hf = GPT2LMHeadModel.from_pretrained(str(name_or_dir))
        except OSError as e:
            raise OSError(f"could not load {str(name_or_dir)!r} from Hugging Face (offline and not cached?): {e}") from e
        return cls.from_hf_state_dict(hf.state_dict(), hf_config(hf.config)).eval()

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


hub.register_model(GPT, GPTConfig)
