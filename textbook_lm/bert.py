"""BERT: a Transformer encoder pretrained to fill in masked tokens (Devlin et al., 2019).

BERT = token + position + segment embeddings, a stack of post-LN ``transformer.Block``s with
bidirectional self-attention (no causal mask), and small heads: masked language modelling
(MLM, its output layer tied to the token embedding), next-sentence prediction (NSP, from the
``[CLS]`` position through a tanh "pooler") and, for fine-tuning, sequence classification.
Two options give ALBERT (Lan et al., 2020): factorised embeddings (``embedding_size`` E < C,
so the vocabulary costs V x E + E x C instead of V x C) and one block shared by every layer.

Masking follows the paper: 15% of the non-special positions of a sequence are selected; of
those 80% become ``[MASK]``, 10% a random token, 10% stay as they are; the model is scored
only at selected positions (label -100 elsewhere). Masks are drawn once per example
("static", as BERT did) or anew every time an example is used ("dynamic", RoBERTa).

Shapes: B batch, T sequence length, C = n_embd, E = embedding size, V = vocab_size.
Parameter names map onto Hugging Face's ``BertForPreTraining`` / ``AlbertForMaskedLM``, so
:meth:`BERT.from_hf_state_dict` reproduces their logits.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from textbook_lm import hub
from textbook_lm.attention import padding_mask
from textbook_lm.transformer import Block, LearnedPositions
from textbook_lm.checks import check_config
from textbook_lm.utils import count_params, cross_entropy, init_weights

__all__ = ["BertConfig", "BERT", "BertClassifier", "mask_tokens", "span_corruption", "hf_config"]


@dataclass
class BertConfig:
    vocab_size: int
    block_size: int = 128           # longest input, [CLS] and [SEP]s included (position embeddings)
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128               # C, the hidden size
    d_ff: int | None = None         # feed-forward width (None: 4 C)
    embedding_size: int | None = None   # ALBERT's E (None: E = C, no factorisation)
    share_layers: bool = False      # ALBERT: one block's weights used by every layer
    type_vocab_size: int = 2        # segments A and B
    dropout: float = 0.1
    eps: float = 1e-12              # LayerNorm epsilon, as in BERT
    activation: str = "gelu"        # exact GELU (BERT); "gelu_tanh" for ALBERT's checkpoints
    norm_first: bool = False        # post-LN as in BERT; True: pre-LN blocks + a final LayerNorm
    pad_id: int = 1                 # the book's WordPiece and character tokenizers put [PAD] at id 1

    def __post_init__(self):
        check_config(self, positive=("vocab_size", "block_size", "n_layer", "n_head", "n_embd", "type_vocab_size"),
                     optional_positive=("d_ff", "embedding_size"), fractions=("dropout",),
                     choices={"activation": ("gelu", "gelu_tanh")})
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd={self.n_embd} is not divisible by n_head={self.n_head}")
        if not 0 <= self.pad_id < self.vocab_size:
            raise ValueError(f"pad_id must be a token id in [0, {self.vocab_size}), got {self.pad_id}")


class BERT(nn.Module):
    """``forward(ids (B, T), segments (B, T) | None) -> hidden states (B, T, C)``; heads on top:
    :meth:`mlm_logits`, :meth:`nsp_logits`; :meth:`loss` for pretraining with ``train.train``."""

    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.cfg = cfg
        C, E = cfg.n_embd, cfg.embedding_size or cfg.n_embd
        self.tok = nn.Embedding(cfg.vocab_size, E)                       # token embeddings (V, E)
        self.pos = LearnedPositions(E, cfg.block_size)                      # position embeddings
        self.seg = nn.Embedding(cfg.type_vocab_size, E)                  # segment A / B embeddings
        self.ln_embed = nn.LayerNorm(E, eps=cfg.eps)
        self.project = nn.Linear(E, C) if E != C else nn.Identity()      # ALBERT: E -> C
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(
            Block(C, cfg.n_head, cfg.d_ff or 4 * C, cfg.dropout, norm_first=cfg.norm_first, eps=cfg.eps,
                  activation=cfg.activation) for _ in range(1 if cfg.share_layers else cfg.n_layer))
        self.ln_final = nn.LayerNorm(C, eps=cfg.eps) if cfg.norm_first else nn.Identity()
        # MLM head: dense + GELU + LayerNorm, then the tied output layer (x E^T) with its own bias
        self.mlm_dense = nn.Linear(C, E)
        self.mlm_ln = nn.LayerNorm(E, eps=cfg.eps)
        self.mlm_bias = nn.Parameter(torch.zeros(cfg.vocab_size))
        # pooler (tanh over the [CLS] state) and the NSP head: IsNext (0) / NotNext (1)
        self.pool = nn.Linear(C, C)
        self.nsp = nn.Linear(C, 2)
        self.apply(init_weights)                                         # BERT: N(0, 0.02), zero biases

    def layers(self):
        """The blocks in order, ``n_layer`` of them (the same one repeated when layers are shared)."""
        return [self.blocks[i % len(self.blocks)] for i in range(self.cfg.n_layer)]

    def forward(self, ids: torch.Tensor, segments: torch.Tensor | None = None) -> torch.Tensor:
        B, T = ids.shape
        if T > self.cfg.block_size:
            raise ValueError(f"sequence of {T} tokens is longer than block_size={self.cfg.block_size}")
        if ids.numel() and (ids.min() < 0 or ids.max() >= self.cfg.vocab_size):
            raise ValueError(f"token ids must be in [0, {self.cfg.vocab_size}), got {ids.min().item()}..{ids.max().item()}")
        segments = torch.zeros_like(ids) if segments is None else segments
        x = self.pos(self.tok(ids)) + self.seg(segments)                 # (B, T, E)
        x = self.project(self.drop(self.ln_embed(x)))                    # (B, T, C)
        mask = padding_mask(ids == self.cfg.pad_id)                      # (B, 1, 1, T): keys that are not [PAD]
        for block in self.layers():
            x = block(x, mask=mask)                                      # no causal mask: every token sees all
        return self.ln_final(x)

    def mlm_logits(self, h: torch.Tensor) -> torch.Tensor:              # (..., C) -> (..., V)
        h = self.mlm_ln(F.gelu(self.mlm_dense(h), approximate="tanh" if self.cfg.activation == "gelu_tanh" else "none"))
        return F.linear(h, self.tok.weight, self.mlm_bias)

    def pooled(self, h: torch.Tensor) -> torch.Tensor:                  # (B, T, C) -> (B, C)
        return torch.tanh(self.pool(h[:, 0]))

    def nsp_logits(self, h: torch.Tensor) -> torch.Tensor:              # (B, T, C) -> (B, 2)
        return self.nsp(self.pooled(h))

    def loss(self, x: tuple[torch.Tensor, torch.Tensor], y: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Pretraining loss: mean MLM cross-entropy over the selected positions (labels != -100)
        plus, where NSP labels are given (not -100), the NSP cross-entropy. Nats."""
        ids, segments = x
        labels, nsp_labels = y
        h = self(ids, segments)
        sel = labels != -100
        loss = cross_entropy(self.mlm_logits(h[sel]), labels[sel])        # logits only where scored: (N, V)
        if (nsp_labels != -100).any():
            loss = loss + cross_entropy(self.nsp_logits(h), nsp_labels)
        return loss

    def num_params(self, embeddings: bool = True) -> int:
        """Parameters, each shared tensor counted once (tied output layer, shared blocks);
        ``embeddings=False`` leaves out the token, position and segment tables."""
        return count_params(self, embeddings)

    def config_dict(self) -> dict:
        return asdict(self.cfg)

    def save_pretrained(self, directory: str | Path, tokenizer=None, info: dict | None = None,
                        half: bool = False) -> Path:
        """Save weights, config, ``tokenizer`` and ``info`` into a hub folder (see :mod:`textbook_lm.hub`)."""
        return hub.save(self, directory, tokenizer=tokenizer, info=info, half=half)

    @classmethod
    def from_pretrained(cls, name_or_dir: str | Path) -> "BERT":
        """A BERT in eval mode from a hub folder or a shipped name (``"tinylang-bert"``, ...);
        ``hub.load(name)`` returns its tokenizer too. Checked by sha256 before use."""
        return hub.load(name_or_dir, kind="BERT").obj

    # ------------------------------------------------------------------ Hugging Face weights
    @classmethod
    def from_hf_state_dict(cls, sd: dict[str, torch.Tensor], cfg: BertConfig) -> "BERT":
        """Build a BERT from the state dict of a Hugging Face ``BertForMaskedLM`` or
        ``BertForPreTraining`` (or, when ``cfg.share_layers``, an ``AlbertForMaskedLM``).

        Their query, key and value are three ``Linear`` layers; ours is one stacked ``qkv``.
        Buffers (``position_ids``) and the tied copies of the output layer are skipped; every
        other tensor of ours must be found, and every tensor of theirs used.
        """
        model = cls(cfg)
        albert = any(k.startswith("albert.") for k in sd)
        sd = {re.sub(r"^(bert|albert)\.", "", k): v for k, v in sd.items()
              if not k.endswith(("position_ids", "token_type_ids", "decoder.weight", "decoder.bias"))}
        emb = {"tok.weight": "embeddings.word_embeddings.weight", "pos.table.weight": "embeddings.position_embeddings.weight",
               "seg.weight": "embeddings.token_type_embeddings.weight", "ln_embed.weight": "embeddings.LayerNorm.weight",
               "ln_embed.bias": "embeddings.LayerNorm.bias"}
        head = "predictions." if albert else "cls.predictions."
        names = {**emb, "mlm_dense.weight": head + ("dense.weight" if albert else "transform.dense.weight"),
                 "mlm_dense.bias": head + ("dense.bias" if albert else "transform.dense.bias"),
                 "mlm_ln.weight": head + ("LayerNorm.weight" if albert else "transform.LayerNorm.weight"),
                 "mlm_ln.bias": head + ("LayerNorm.bias" if albert else "transform.LayerNorm.bias"),
                 "mlm_bias": head + "bias"}
        if albert:
            layer = {"attn.{}": "attention.{}", "attn.out": "attention.dense", "ln_attn": "attention.LayerNorm",
                     "ffn.up": "ffn", "ffn.down": "ffn_output", "ln_ffn": "full_layer_layer_norm"}
            prefixes = {0: "encoder.albert_layer_groups.0.albert_layers.0."}
            for kind in ("weight", "bias"):
                names[f"project.{kind}"] = f"encoder.embedding_hidden_mapping_in.{kind}"
        else:
            layer = {"attn.{}": "attention.self.{}", "attn.out": "attention.output.dense",
                     "ln_attn": "attention.output.LayerNorm", "ffn.up": "intermediate.dense",
                     "ffn.down": "output.dense", "ln_ffn": "output.LayerNorm"}
            prefixes = {i: f"encoder.layer.{i}." for i in range(cfg.n_layer)}
        if "pooler.dense.weight" in sd:                                  # BertForPreTraining has them
            for kind in ("weight", "bias"):
                names[f"pool.{kind}"], names[f"nsp.{kind}"] = f"pooler.dense.{kind}", f"cls.seq_relationship.{kind}"
        for i, prefix in prefixes.items():
            for ours, theirs in layer.items():
                for kind in ("weight", "bias"):
                    if ours == "attn.{}":
                        names[f"blocks.{i}.attn.qkv.{kind}"] = [prefix + theirs.format(p) + "." + kind
                                                                for p in ("query", "key", "value")]
                    else:
                        names[f"blocks.{i}.{ours}.{kind}"] = prefix + theirs + "." + kind
        wanted = {t for v in names.values() for t in (v if isinstance(v, list) else [v])}
        missing, unused = sorted(wanted - set(sd)), sorted(set(sd) - wanted)
        if missing or unused:
            raise ValueError(f"state dict does not match the config: missing {missing[:5]}, unexpected {unused[:5]}")
        ours = model.state_dict()
        with torch.no_grad():
            for mine, theirs in names.items():
                w = torch.cat([sd[t] for t in theirs]) if isinstance(theirs, list) else sd[theirs]
                if ours[mine].shape != w.shape:
                    raise ValueError(f"{theirs}: shape {tuple(w.shape)} does not fit {mine} {tuple(ours[mine].shape)}")
                ours[mine].copy_(w)
        return model


def hf_config(c) -> BertConfig:
    """A :class:`BertConfig` from a Hugging Face ``BertConfig`` or ``AlbertConfig``."""
    albert = c.model_type == "albert"
    act = {"gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh"}.get(c.hidden_act)
    if act is None:
        raise ValueError(f"only GELU activations are supported, got {c.hidden_act!r}")
    if albert and (c.num_hidden_groups != 1 or c.inner_group_num != 1):
        raise ValueError("only ALBERT with one shared layer (num_hidden_groups = inner_group_num = 1) is supported")
    return BertConfig(vocab_size=c.vocab_size, block_size=c.max_position_embeddings, n_layer=c.num_hidden_layers,
                      n_head=c.num_attention_heads, n_embd=c.hidden_size, d_ff=c.intermediate_size,
                      embedding_size=c.embedding_size if albert else None, share_layers=albert,
                      type_vocab_size=c.type_vocab_size, dropout=0.0, eps=c.layer_norm_eps, activation=act,
                      pad_id=c.pad_token_id if c.pad_token_id is not None else 0)


class BertClassifier(nn.Module):
    """A sequence classifier on top of a :class:`BERT` (pretrained or not): pooled ``[CLS]``
    state -> dropout -> linear layer. ``forward((ids, segments)) -> logits (B, n_classes)``."""

    def __init__(self, bert: BERT, n_classes: int, dropout: float = 0.1):
        super().__init__()
        self.bert, self.drop = bert, nn.Dropout(dropout)
        if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 2:
            raise ValueError(f"n_classes must be an int >= 2, got {n_classes!r}")
        self.head = nn.Linear(bert.cfg.n_embd, n_classes)
        nn.init.normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    def forward(self, ids: torch.Tensor, segments: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.drop(self.bert.pooled(self.bert(ids, segments))))

    def loss(self, x: tuple[torch.Tensor, torch.Tensor], y: torch.Tensor) -> torch.Tensor:
        return cross_entropy(self(*x), y)


# ---------------------------------------------------------------------- masking
def mask_tokens(ids: torch.Tensor, mask_id: int, special_ids, vocab_size: int, prob: float = 0.15,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking of a batch ``ids (B, T)``: returns ``(inputs, labels)``, both (B, T).

    In each row, ``max(1, round(prob * n))`` of its ``n`` candidate positions (every position
    whose token is not in ``special_ids``: [CLS], [SEP], [PAD], ...) are selected uniformly at
    random, as in BERT's data generator. Each selected position becomes ``mask_id`` with
    probability 0.8, a random non-special token with probability 0.1, and keeps its token
    with probability 0.1. ``labels`` holds the original token at selected positions and
    -100 everywhere else, so the loss ignores every other position.
    """
    if not 0 < prob < 1:
        raise ValueError(f"prob must be in (0, 1), got {prob}")
    special = torch.zeros(vocab_size, dtype=torch.bool)
    special[list(special_ids)] = True
    special[mask_id] = True
    cand = ~special.to(ids.device)[ids]                                  # (B, T) may be selected
    n = cand.sum(1)
    n = n.cpu().double()                                                 # float64 on the CPU (MPS has none)
    k = torch.where(n > 0, torch.clamp((prob * n).round().long(), min=1), 0).to(ids.device)   # (B,) how many per row
    score = torch.rand(ids.shape, generator=generator).to(ids.device).masked_fill(~cand, 2.0)
    rank = score.argsort(1).argsort(1)                                   # rank of each position's random score
    selected = rank < k[:, None]                                         # the k lowest-scored candidates
    u = torch.rand(ids.shape, generator=generator).to(ids.device)
    normal = (~special).nonzero().squeeze(1).to(ids.device)              # ids a random replacement may take
    rand_tok = normal[torch.randint(len(normal), ids.shape, generator=generator).to(ids.device)]
    inputs = torch.where(selected & (u < 0.8), torch.full_like(ids, mask_id), ids)
    inputs = torch.where(selected & (u >= 0.8) & (u < 0.9), rand_tok, inputs)
    labels = torch.where(selected, ids, torch.full_like(ids, -100))
    return inputs, labels


def span_corruption(tokens: list[str], noise: float = 0.15, mean_span: float = 3.0,
                    seed: int = 0) -> tuple[list[str], list[str]]:
    """T5's pretraining objective (Raffel et al., 2020) on a list of tokens, for illustration.

    About ``noise`` of the tokens, in spans of mean length ``mean_span``, are dropped from the
    input; each span is replaced by one sentinel ``<X0>``, ``<X1>``, ... The target lists each
    sentinel followed by the tokens it replaced, and ends with a final sentinel. Unlike
    BERT's MLM the model must say how many tokens each gap held, and the input is shorter.
    """
    import random

    rng = random.Random(seed)
    n = len(tokens)
    n_noise = max(1, round(n * noise))
    n_spans = max(1, min(n_noise, round(n_noise / mean_span)))
    # split the noise tokens into n_spans lengths >= 1 and the kept tokens into n_spans + 1 gaps
    def split(total, parts):                                             # `parts` random lengths >= 1 summing to total
        cuts = sorted(rng.sample(range(1, total), parts - 1)) if parts > 1 else []
        return [b - a for a, b in zip([0] + cuts, cuts + [total])]
    noise_lens = split(n_noise, n_spans)
    keep_lens = split(n - n_noise, n_spans)                              # keep_lens[i] tokens come before span i
    inp, tgt, pos = [], [], 0
    for i, (keep, drop) in enumerate(zip(keep_lens, noise_lens)):
        inp += tokens[pos:pos + keep] + [f"<X{i}>"]
        tgt += [f"<X{i}>"] + tokens[pos + keep:pos + keep + drop]
        pos += keep + drop
    inp += tokens[pos:]
    return inp, tgt + [f"<X{n_spans}>"]


hub.register_model(BERT, BertConfig)
