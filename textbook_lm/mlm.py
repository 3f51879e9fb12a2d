"""Masked-language-model pretraining data for BERT (Chapter 7): examples, masked batches, scoring.

Text becomes *examples*: ``[CLS] A [SEP] B [SEP]`` sentence pairs for next-sentence
prediction (B is the real continuation of A or, with probability 1/2, text from another
document), or ``[CLS] text [SEP]`` chunks of one document when there is no NSP (RoBERTa).
:class:`MLMData` serves masked batches of examples to ``train.train``, with static masks
(drawn once per example, BERT) or dynamic ones (drawn anew every time, RoBERTa).
:func:`evaluate_mlm` scores a model on fixed masks (optionally with its context shuffled or
removed, to see what it uses) and :func:`evaluate_unigram` a context-free model on the same
masks; :func:`fill_mask` shows a model's guesses.

The book's corpora, recipes and shipped BERTs are in :mod:`textbook_lm.experiments.bert`.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from textbook_lm.bert import BERT, mask_tokens
from textbook_lm.utils import cross_entropy, eval_mode

__all__ = ["SPECIALS", "Example", "make_examples", "MLMData", "CONTEXTS", "evaluate_mlm", "unigram_logprobs",
           "evaluate_unigram", "fill_mask"]

SPECIALS = ("[PAD]", "[CLS]", "[SEP]", "[MASK]")     # with [UNK] / <unk> at id 0: ids 1, 2, 3, 4


@dataclass
class Example:
    ids: list[int]          # [CLS] A [SEP] (B [SEP])
    segments: list[int]     # 0 for [CLS] A [SEP], 1 for B [SEP]
    is_next: int            # 0 IsNext, 1 NotNext, -100 no NSP label


# ---------------------------------------------------------------------- examples
def make_examples(docs: list[list[list[int]]], cls_id: int, sep_id: int, max_len: int, nsp: bool,
                  seed: int = 0) -> list[Example]:
    """Cut tokenised documents (lists of sentences, each a list of ids) into examples of at
    most ``max_len`` ids.

    ``nsp=True`` (BERT): consecutive sentences are gathered until they fill the example, then
    split at a random sentence boundary into A and B (a one-sentence chunk is split inside the
    sentence). With probability 1/2 B is replaced by sentences from another, random
    document (NotNext), and the sentences it displaced are used for the next example. The
    pair is trimmed to fit, from the longer side and away from the A|B junction (A loses its
    start, B its end), so an IsNext B always continues A exactly. ``nsp=False``: each
    document's ids are cut into consecutive chunks (one segment, no NSP label).
    """
    if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < (5 if nsp else 3):
        raise ValueError(f"max_len must be an int >= {5 if nsp else 3} (room for [CLS], [SEP]s and tokens), "
                         f"got {max_len!r}")
    if not isinstance(docs, (list, tuple)) or any(not isinstance(d, (list, tuple)) for d in docs):
        raise TypeError("docs must be a list of documents, each a list of sentences (lists of token ids)")
    rng = random.Random(seed)
    room = max_len - (3 if nsp else 2)
    out: list[Example] = []
    for d, doc in enumerate(docs):
        if not nsp:
            flat = [t for s in doc for t in s]
            for i in range(0, len(flat), room):
                piece = flat[i:i + room]
                if len(piece) >= 8 or (i == 0 and len(piece) >= 2):
                    out.append(Example([cls_id, *piece, sep_id], [0] * (len(piece) + 2), -100))
            continue
        i = 0
        while i < len(doc):
            chunk, n = [], 0
            while i < len(doc) and n < room:
                chunk.append(doc[i])
                n += len(doc[i])
                i += 1
            if len(chunk) == 1:
                s = chunk[0]
                if len(s) < 2:
                    continue
                cut = rng.randint(1, len(s) - 1)
                chunk, a_end = [s[:cut], s[cut:]], 1
            else:
                a_end = rng.randint(1, len(chunk) - 1)
            a = [t for s in chunk[:a_end] for t in s]
            is_next = int(rng.random() < 0.5 and len(docs) > 1)
            if is_next:                                                  # NotNext: B from another document
                draws = [j for j in (rng.randrange(len(docs)) for _ in range(10)) if j != d]   # other documents
                other = rng.choice(draws or [(d + 1) % len(docs)])
                start = rng.randrange(len(docs[other]))
                b = [t for s in docs[other][start:] for t in s][: max(1, room - len(a))]
                if len(chunk) > 1:
                    i -= len(chunk) - a_end                              # the real continuation is not wasted
            else:
                b = [t for s in chunk[a_end:] for t in s]
            while len(a) + len(b) > room:                                # trim the longer side, away from the junction
                if len(a) > len(b):
                    a.pop(0)
                else:
                    b.pop()
            if a and b:
                out.append(Example([cls_id, *a, sep_id, *b, sep_id], [0] * (len(a) + 2) + [1] * (len(b) + 1), is_next))
    return out


class MLMData:
    """Masked batches of examples for ``train.train``: ``batch()`` gives
    ``((inputs, segments), (labels, is_next))``, each (B, T) except ``is_next`` (B,).

    ``masking="dynamic"`` draws a new mask every time an example is used; ``"static"`` draws
    ``n_static`` masks per example once, at construction (BERT used 10 copies of its data with
    different masks), and always uses one of them. ``windows()`` gives fixed batches with
    masks from ``seed`` for a deterministic evaluation.
    """

    def __init__(self, examples: list[Example], vocab_size: int, pad_id: int, mask_id: int, special_ids,
                 masking: str = "dynamic", n_static: int = 1, prob: float = 0.15, seed: int = 0):
        if masking not in ("static", "dynamic"):
            raise ValueError(f"masking must be 'static' or 'dynamic', got {masking!r}")
        if isinstance(n_static, bool) or not isinstance(n_static, int) or n_static < 1:
            raise ValueError(f"n_static must be an int >= 1, got {n_static!r}")
        if not examples:
            raise ValueError("no examples")
        T = max(len(e.ids) for e in examples)
        self.ids = torch.full((len(examples), T), pad_id, dtype=torch.long)
        self.segments = torch.zeros((len(examples), T), dtype=torch.long)
        for r, e in enumerate(examples):
            self.ids[r, :len(e.ids)] = torch.tensor(e.ids)
            self.segments[r, :len(e.ids)] = torch.tensor(e.segments)
        self.lengths = torch.tensor([len(e.ids) for e in examples])
        self.is_next = torch.tensor([e.is_next for e in examples])
        self.masking, self.seed = masking, seed
        self.mask_args = dict(mask_id=mask_id, special_ids=[pad_id, *special_ids], vocab_size=vocab_size, prob=prob)
        if masking == "static":
            g = torch.Generator().manual_seed(seed)
            pairs = [mask_tokens(self.ids, generator=g, **self.mask_args) for _ in range(n_static)]
            self.static_inputs = torch.stack([p[0] for p in pairs])       # (n_static, N, T)
            self.static_labels = torch.stack([p[1] for p in pairs])

    def __len__(self) -> int:
        return len(self.ids)

    def _rows(self, idx: torch.Tensor, inputs: torch.Tensor, labels: torch.Tensor):
        T = int(self.lengths[idx].max())                                  # drop all-padding columns
        return (inputs[:, :T], self.segments[idx, :T]), (labels[:, :T], self.is_next[idx])

    def batch(self, batch_size: int, seq_len: int = 0, mode: str = "random", generator: torch.Generator | None = None):
        """A random batch (``seq_len`` and ``mode`` are ignored: examples have their own length)."""
        idx = torch.randint(len(self), (batch_size,), generator=generator)
        if self.masking == "static":
            copy = torch.randint(len(self.static_inputs), (batch_size,), generator=generator)
            return self._rows(idx, self.static_inputs[copy, idx], self.static_labels[copy, idx])
        return self._rows(idx, *mask_tokens(self.ids[idx], generator=generator, **self.mask_args))

    def windows(self, seq_len: int = 0, max_windows: int | None = None, batch_size: int = 64):
        """Batches of the examples in order, masked with a generator seeded by ``seed`` (the same every call)."""
        g = torch.Generator().manual_seed(self.seed + 1)
        out = []
        for s in range(0, len(self), batch_size):
            idx = torch.arange(s, min(s + batch_size, len(self)))
            out.append(self._rows(idx, *mask_tokens(self.ids[idx], generator=g, **self.mask_args)))
            if max_windows and len(out) >= max_windows:
                break
        return out


CONTEXTS = ("real", "shuffled", "none")


def _alter_context(x: torch.Tensor, labels: torch.Tensor, data: MLMData, context: str,
                   generator: torch.Generator) -> torch.Tensor:
    """``x`` (B, T) with its context tokens (ordinary tokens that are not scored) shuffled
    within each row, or all replaced by ``[MASK]``; scored positions and special tokens stay."""
    if context == "real":
        return x
    special = torch.zeros(data.mask_args["vocab_size"], dtype=torch.bool)
    special[list(data.mask_args["special_ids"])] = True
    special[data.mask_args["mask_id"]] = True
    ctx = (labels == -100) & ~special[x]                                 # (B, T) the context tokens
    x = x.clone()
    if context == "none":
        x[ctx] = data.mask_args["mask_id"]
        return x
    for r in range(len(x)):                                              # "shuffled": same tokens, new order
        where = ctx[r].nonzero().squeeze(1)
        x[r, where] = x[r, where[torch.randperm(len(where), generator=generator)]]
    return x


@torch.no_grad()
def evaluate_mlm(model: BERT, data: MLMData, max_batches: int | None = 20, context: str = "real") -> dict:
    """MLM loss (nats per masked token) and accuracy, and NSP accuracy where labelled, on fixed masks.

    ``context`` tests what the model uses: ``"real"`` scores the examples as they are;
    ``"shuffled"`` permutes, within each example, the tokens that are neither scored nor
    special (the same words in a random order: word identity kept, word order lost);
    ``"none"`` replaces them all by ``[MASK]`` (nothing left but the positions). The
    scored positions and their masks are the same in all three (a seeded permutation).
    """
    if context not in CONTEXTS:
        raise ValueError(f"context must be one of {CONTEXTS}, got {context!r}")
    dev = next(model.parameters()).device
    g = torch.Generator().manual_seed(data.seed + 2)
    loss = correct = n = nsp_ok = nsp_n = hidden_loss = hidden_n = 0
    with eval_mode(model):
        for (x, seg), (labels, is_next) in data.windows(max_windows=max_batches):
            x = _alter_context(x, labels, data, context, g)
            x, seg, labels, is_next = x.to(dev), seg.to(dev), labels.to(dev), is_next.to(dev)
            h = model(x, seg)
            sel = labels != -100
            logits = model.mlm_logits(h[sel])
            nll = cross_entropy(logits, labels[sel], reduction="none")    # (N,) per scored token
            loss += nll.sum().item()
            correct += (logits.argmax(-1) == labels[sel]).sum().item()
            n += int(sel.sum())
            hidden = x[sel] != labels[sel]                               # [MASK] or a random token: the answer is not shown
            hidden_loss += nll[hidden].sum().item()
            hidden_n += int(hidden.sum())
            lab = is_next != -100
            if lab.any():
                nsp_ok += (model.nsp_logits(h).argmax(-1)[lab] == is_next[lab]).sum().item()
                nsp_n += int(lab.sum())
    return {"loss": loss / n, "accuracy": correct / n, "nsp_accuracy": nsp_ok / nsp_n if nsp_n else None, "masked": n,
            "loss_hidden": hidden_loss / hidden_n if hidden_n else None, "hidden": hidden_n}


def unigram_logprobs(data: MLMData) -> torch.Tensor:
    """Log-probabilities (V,) of a unigram model of ``data``'s tokens: add-one smoothed counts of
    every non-special token of its examples; special tokens get probability 0."""
    counts = torch.bincount(data.ids.flatten(), minlength=data.mask_args["vocab_size"]).double() + 1.0
    counts[list(data.mask_args["special_ids"])] = 0.0
    counts[data.mask_args["mask_id"]] = 0.0
    return (counts / counts.sum()).log()


def evaluate_unigram(logp: torch.Tensor, data: MLMData, max_batches: int | None = 20) -> dict:
    """A context-free model scored like :func:`evaluate_mlm` on the same fixed masks: it predicts
    every scored token with the same distribution ``exp(logp)`` whatever the input shows."""
    loss = n = hidden_loss = hidden_n = 0
    for (x, _), (labels, _) in data.windows(max_windows=max_batches):
        sel = labels != -100
        nll = -logp[labels[sel]]
        hidden = x[sel] != labels[sel]
        loss, n = loss + nll.sum().item(), n + int(sel.sum())
        hidden_loss, hidden_n = hidden_loss + nll[hidden].sum().item(), hidden_n + int(hidden.sum())
    return {"loss": loss / n, "masked": n, "loss_hidden": hidden_loss / hidden_n if hidden_n else None,
            "hidden": hidden_n}


@torch.no_grad()
def fill_mask(model: BERT, tok, text: str, k: int = 5) -> list[list[tuple[str, float]]]:
    """Top-``k`` (token, probability) for every ``[MASK]`` in ``text``."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str containing [MASK], got {type(text).__name__}")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= tok.vocab_size:
        raise ValueError(f"k must be an int in [1, {tok.vocab_size}], got {k!r}")
    mask_id = tok.special_id("[MASK]")
    pieces = [tok.encode(p) if p.strip() else [] for p in text.split("[MASK]")]   # works for character tokenizers too
    ids = [tok.special_id("[CLS]"), *[t for i, p in enumerate(pieces) for t in ([mask_id] if i else []) + p],
           tok.special_id("[SEP]")]
    x = torch.tensor([ids], device=next(model.parameters()).device)
    where = (x[0] == mask_id).nonzero().squeeze(1)
    if len(where) == 0:
        raise ValueError(f"no [MASK] in {text!r}")
    with eval_mode(model):
        probs = model.mlm_logits(model(x)[0, where]).softmax(-1)         # (n_masks, V)
    top = probs.topk(k, dim=-1)
    return [[(tok.itos[i], p) for i, p in zip(row_i.tolist(), row_p.tolist())]
            for row_i, row_p in zip(top.indices, top.values)]
