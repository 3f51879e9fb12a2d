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

import torch
import torch.nn as nn

from textbook_lm.attention import KVCache
from textbook_lm.transformer import Block, LearnedPositions

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
                                          activation=cfg.activation) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(C, eps=cfg.eps)
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
