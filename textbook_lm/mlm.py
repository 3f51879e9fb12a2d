"""Pretraining data and recipes for the book's BERTs (Chapter 7).

Text becomes *examples*: ``[CLS] A [SEP] B [SEP]`` sentence pairs for next-sentence
prediction (B is the real continuation of A or, with probability 1/2, text from another
document), or ``[CLS] text [SEP]`` chunks of one document when there is no NSP (RoBERTa).
:class:`MLMData` serves masked batches of examples to ``train.train``, with static masks
(drawn once per example, BERT) or dynamic ones (drawn anew every time, RoBERTa).

Package commands: ``python -m textbook_lm.mlm train wikitext2-bert`` (or ``tang-bert``) makes
a shipped checkpoint; ``python -m textbook_lm.mlm ablate`` runs the RoBERTa / ALBERT
ablations and writes ``results/bert_ablations.json``; ``python -m textbook_lm.mlm finetune``
fine-tunes the shipped models over five seeds and writes ``results/bert_finetune.json``.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from textbook_lm.bert import BERT, BertConfig, mask_tokens

__all__ = ["SPECIALS", "Example", "wikitext_documents", "tang_documents", "make_examples", "MLMData",
           "evaluate_mlm", "fill_mask", "RECIPES", "corpus_data", "nsp_validation", "pretrain", "save_pretrained",
           "pretrained", "leaderboard_entries"]

SPECIALS = ("[PAD]", "[CLS]", "[SEP]", "[MASK]")     # with [UNK] / <unk> at id 0: ids 1, 2, 3, 4
EXCLUDED_POETS = ("李白", "韋應物")                     # held out of the Tang BERT's pretraining text (Chapter 7's task)


@dataclass
class Example:
    ids: list[int]          # [CLS] A [SEP] (B [SEP])
    segments: list[int]     # 0 for [CLS] A [SEP], 1 for B [SEP]
    is_next: int            # 0 IsNext, 1 NotNext, -100 no NSP label


# ---------------------------------------------------------------------- documents
def _clean_wikitext(line: str) -> str:
    """Undo WikiText's tokenisation artefacts: ``@-@`` -> ``-`` etc.; ``<unk>`` -> ``[UNK]``."""
    line = line.replace(" @-@ ", "-").replace(" @,@ ", ",").replace(" @.@ ", ".")
    return line.replace("<unk>", "[UNK]").strip()


def wikitext_documents(split: str = "train") -> list[list[str]]:
    """WikiText-2 as articles, each a list of sentences (paragraphs cut after " . ");
    headings are dropped, a top-level heading ``= Title =`` starts a new article."""
    from textbook_lm.data import corpora

    docs: list[list[str]] = []
    for line in corpora.read_text("wikitext-2", f"{split}.txt").splitlines():
        s = line.strip()
        if not s:
            continue
        if re.fullmatch(r"= [^=].* =", s):
            docs.append([])
        elif not s.startswith("="):
            if not docs:
                docs.append([])
            docs[-1] += [t.strip() + (" ." if i < s.count(" . ") else "")
                         for i, t in enumerate(_clean_wikitext(s).split(" . ")) if t.strip()]
    return [d for d in docs if d]


def tang_documents(exclude: tuple[str, ...] = EXCLUDED_POETS) -> list[list[str]]:
    """The Tang poems as documents whose sentences are the poem's lines (poets in ``exclude`` left out)."""
    from textbook_lm.data import corpora

    return [p["text"].split("\n") for p in corpora.tang_poems() if p["author"] not in exclude]


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


@torch.no_grad()
def evaluate_mlm(model: BERT, data: MLMData, max_batches: int | None = 20) -> dict:
    """MLM loss (nats per masked token) and accuracy, and NSP accuracy where labelled, on fixed masks."""
    was = model.training
    model.eval()
    dev = next(model.parameters()).device
    loss = correct = n = nsp_ok = nsp_n = 0
    for (x, seg), (labels, is_next) in data.windows(max_windows=max_batches):
        x, seg, labels, is_next = x.to(dev), seg.to(dev), labels.to(dev), is_next.to(dev)
        h = model(x, seg)
        sel = labels != -100
        logits = model.mlm_logits(h[sel])
        loss += F.cross_entropy(logits, labels[sel], reduction="sum").item()
        correct += (logits.argmax(-1) == labels[sel]).sum().item()
        n += int(sel.sum())
        lab = is_next != -100
        if lab.any():
            nsp_ok += (model.nsp_logits(h).argmax(-1)[lab] == is_next[lab]).sum().item()
            nsp_n += int(lab.sum())
    model.train(was)
    return {"loss": loss / n, "accuracy": correct / n, "nsp_accuracy": nsp_ok / nsp_n if nsp_n else None, "masked": n}


@torch.no_grad()
def fill_mask(model: BERT, tok, text: str, k: int = 5) -> list[list[tuple[str, float]]]:
    """Top-``k`` (token, probability) for every ``[MASK]`` in ``text`` (the model in eval mode)."""
    mask_id = tok.special_id("[MASK]")
    pieces = [tok.encode(p) if p.strip() else [] for p in text.split("[MASK]")]   # works for character tokenizers too
    ids = [tok.special_id("[CLS]"), *[t for i, p in enumerate(pieces) for t in ([mask_id] if i else []) + p],
           tok.special_id("[SEP]")]
    x = torch.tensor([ids], device=next(model.parameters()).device)
    where = (x[0] == mask_id).nonzero().squeeze(1)
    if len(where) == 0:
        raise ValueError(f"no [MASK] in {text!r}")
    was = model.training
    model.eval()
    probs = model.mlm_logits(model(x)[0, where]).softmax(-1)             # (n_masks, V)
    model.train(was)
    top = probs.topk(k, dim=-1)
    return [[(tok.itos[i], p) for i, p in zip(row_i.tolist(), row_p.tolist())]
            for row_i, row_p in zip(top.indices, top.values)]


# ---------------------------------------------------------------------- recipes and shipped models
PRETRAINED_DIR = Path(__file__).with_name("results") / "models"
ABLATIONS_PATH = Path(__file__).with_name("results") / "bert_ablations.json"
RECIPES: dict[str, dict] = {
    # 4 layers x 128, WordPiece 8k (Chapter 2), sequences of 128, MLM + NSP, dynamic masking
    "wikitext2-bert": dict(corpus="wikitext-2", nsp=True, masking="dynamic",
                           model=dict(max_len=128, n_layer=4, n_head=4, d_model=128, dropout=0.1),
                           train=dict(steps=4500, batch_size=32, seq_len=128, lr=1e-3, warmup=300, min_lr_ratio=0.1,
                                      weight_decay=0.01, betas=(0.9, 0.98), grad_clip=1.0, eval_every=500,
                                      eval_batches=10, max_seconds=1500)),
    # TinyLang's 20,000 training sentences, one per example, MLM only: small enough to train live
    "tinylang-bert": dict(corpus="tinylang", nsp=False, masking="dynamic",
                          model=dict(max_len=32, n_layer=2, n_head=4, d_model=64, dropout=0.1),
                          train=dict(steps=1500, batch_size=64, seq_len=32, lr=2e-3, warmup=100, min_lr_ratio=0.1,
                                     weight_decay=0.01, betas=(0.9, 0.98), grad_clip=1.0, eval_every=250,
                                     eval_batches=10, max_seconds=600)),
    # characters of the Tang poems (李白 and 韋應物 held out), one poem per example, MLM only
    "tang-bert": dict(corpus="tang", nsp=False, masking="dynamic",
                      model=dict(max_len=66, n_layer=3, n_head=4, d_model=128, dropout=0.1),
                      train=dict(steps=3000, batch_size=64, seq_len=66, lr=1e-3, warmup=200, min_lr_ratio=0.1,
                                 weight_decay=0.01, betas=(0.9, 0.98), grad_clip=1.0, eval_every=500,
                                 eval_batches=10, max_seconds=900)),
}


def corpus_data(corpus: str, nsp: bool, max_len: int, masking: str = "dynamic", n_static: int = 1,
                max_docs: int | None = None, seed: int = 0):
    """(tokenizer, train MLMData, validation MLMData) for ``"wikitext-2"`` (WordPiece 8k),
    ``"tinylang"`` (its words; one sentence per document) or ``"tang"`` (characters). The
    validation data are always one-segment chunks without NSP, so that variants with and
    without NSP are scored on the same masked tokens. ``max_docs`` keeps the first documents
    of each split only."""
    from textbook_lm import tokenize

    if corpus == "wikitext-2":
        tok = tokenize.pretrained("wikitext2-wordpiece-8k")
        train_docs, val_docs = wikitext_documents("train"), wikitext_documents("valid")
    elif corpus == "tinylang":
        from textbook_lm.data import tinylang

        tl = tinylang.benchmark()
        tok = tokenize.WordTokenizer([w for w in tinylang.TinyLang().vocab if w != "<eos>"], specials=SPECIALS)
        train_docs, val_docs = [[" ".join(s)] for s in tl.train], [[" ".join(s)] for s in tl.valid]
    elif corpus == "tang":
        docs = tang_documents()
        tok = tokenize.CharTokenizer.train("".join(s for d in docs for s in d), specials=SPECIALS)
        cut = int(0.95 * len(docs))
        train_docs, val_docs = docs[:cut], docs[cut:]
    else:
        raise ValueError(f"corpus must be 'wikitext-2', 'tinylang' or 'tang', got {corpus!r}")
    train_docs, val_docs = train_docs[:max_docs], val_docs[:max_docs]
    enc = lambda docs: [[tok.encode(s) for s in d] for d in docs]
    sid = {s: tok.special_id(s) for s in SPECIALS}
    common = dict(vocab_size=tok.vocab_size, pad_id=sid["[PAD]"], mask_id=sid["[MASK]"],
                  special_ids=[sid["[CLS]"], sid["[SEP]"]])
    tr = MLMData(make_examples(enc(train_docs), sid["[CLS]"], sid["[SEP]"], max_len, nsp, seed), masking=masking,
                 n_static=n_static, seed=seed, **common)
    va = MLMData(make_examples(enc(val_docs), sid["[CLS]"], sid["[SEP]"], max_len, False, 0), **common)
    return tok, tr, va


def nsp_validation(tok, max_len: int = 128) -> MLMData:
    """NSP pairs (half IsNext, half NotNext) from the WikiText-2 validation articles, for
    scoring next-sentence prediction; masks as in :class:`MLMData` (fixed)."""
    docs = [[tok.encode(s) for s in d] for d in wikitext_documents("valid")]
    sid = {s: tok.special_id(s) for s in SPECIALS}
    return MLMData(make_examples(docs, sid["[CLS]"], sid["[SEP]"], max_len, True, seed=1), tok.vocab_size,
                   sid["[PAD]"], sid["[MASK]"], [sid["[CLS]"], sid["[SEP]"]])


def pretrain(name: str = "wikitext2-bert", steps: int | None = None, seed: int = 0, progress: bool = True,
             device: torch.device | None = None, data=None, train_overrides: dict | None = None, **overrides):
    """Pretrain a recipe of :data:`RECIPES`; ``overrides`` change its model options (and
    ``nsp``, ``masking``), ``train_overrides`` its ``TrainConfig``; ``data`` replaces the
    corpus by a (tokenizer, train MLMData, validation MLMData) triple. Returns (model,
    tokenizer, history, validation data)."""
    from textbook_lm import seed as seed_all
    from textbook_lm.train import TrainConfig, train

    r = RECIPES[name]
    nsp, masking = overrides.pop("nsp", r["nsp"]), overrides.pop("masking", r["masking"])
    model_kw, train_kw = {**r["model"], **overrides}, {**r["train"], **(train_overrides or {})}
    if steps is not None:
        train_kw["steps"] = steps
    tok, tr, va = data or corpus_data(r["corpus"], nsp, model_kw["max_len"], masking, seed=seed)
    seed_all(seed)
    model = BERT(BertConfig(vocab_size=tok.vocab_size, pad_id=tok.special_id("[PAD]"), **model_kw))
    if device is not None:
        model.to(device)
    history = train(model, tr, va, TrainConfig(seed=seed, **train_kw), progress=progress)
    return model, tok, history, va


def save_pretrained(name: str, model: BERT, tok, info: dict) -> Path:
    """float16 weights, config, the tokenizer (a shipped tokenizer's name, or its characters or words) and info."""
    from textbook_lm.tokenize import CharTokenizer, WordTokenizer
    from textbook_lm.utils import save_half

    if isinstance(tok, (CharTokenizer, WordTokenizer)):
        tokenizer = {"kind": tok.kind, "symbols": tok.itos[len(tok.specials):], "specials": tok.specials[1:]}
    else:
        tokenizer = {"name": "wikitext2-wordpiece-8k"}
    return save_half(PRETRAINED_DIR / f"{name}.pt", model.state_dict(), kind="BERT", config=model.config_dict(),
                     tokenizer=tokenizer, info=info)


def pretrained(name: str = "wikitext2-bert"):
    """Load a shipped BERT: returns (model in eval mode, tokenizer, info)."""
    from textbook_lm import tokenize
    from textbook_lm.utils import load_half

    blob = load_half(PRETRAINED_DIR / f"{name}.pt", f"python -m textbook_lm.mlm train {name}")
    model = BERT(BertConfig(**blob["config"]))
    model.load_state_dict(blob["model"])
    t = blob["tokenizer"]
    if "name" in t:
        tok = tokenize.pretrained(t["name"])
    else:
        tok = (tokenize.CharTokenizer if t["kind"] == "char" else tokenize.WordTokenizer)(t["symbols"], t["specials"])
    return model.eval(), tok, blob["info"]


LEADERBOARD = {"wikitext2-bert": ("wikitext-2-mlm", "mini-BERT (4 x 128), shipped"),
               "tinylang-bert": ("tinylang-mlm", "TinyLang BERT (2 x 64), shipped"),
               "tang-bert": ("tang-mlm", "Tang character BERT (3 x 128), shipped")}
ABLATION_BENCHMARKS = {"wikitext-2": "wikitext-2-mlm", "tinylang": "tinylang-mlm"}


def leaderboard_entries() -> list:
    """Chapter 7's entries, on masked-LM benchmarks of their own (a masked LM has no
    left-to-right perplexity): cross-entropy per masked token on the validation split with
    fixed masks, for each shipped BERT, a unigram model (token frequencies, no context) and
    the ablation variants of ``results/bert_ablations.json``."""
    import json

    from textbook_lm.leaderboard import Entry

    command = "python -m textbook_lm.leaderboard reproduce bert"
    entries = []
    for name, (bench, label) in LEADERBOARD.items():
        r = RECIPES[name]
        model, tok, info = pretrained(name)
        _, tr, va = corpus_data(r["corpus"], False, r["model"]["max_len"])
        ev = evaluate_mlm(model, va, None)
        entries.append(Entry(label, bench, "val", ev["loss"] * ev["masked"], ev["masked"], model.num_params(),
                             info["train_seconds"], 7, info["command"], note="float16 weights"))
        counts = torch.bincount(tr.ids.flatten(), minlength=tok.vocab_size).double() + 1.0   # add-one
        counts[[tok.special_id(s) for s in SPECIALS]] = 0.0
        logp = (counts / counts.sum()).log()
        nll = sum(-logp[labels[labels != -100]].sum().item() for _, (labels, _) in va.windows())
        entries.append(Entry("unigram frequencies (no context)", bench, "val", nll, ev["masked"],
                             int((counts > 0).sum()), 0.0, 7, command, note="add-one smoothed training counts"))
    if ABLATIONS_PATH.is_file():
        abl = json.loads(ABLATIONS_PATH.read_text(encoding="utf-8"))
        for corpus, study in abl["studies"].items():
            b = study["budget"]
            budget = f"{b['max_docs']} articles, {b['steps']} steps" if b["max_docs"] else f"recipe {b['recipe']}"
            for row in study["runs"]:
                entries.append(Entry(f"ablation: {row['variant']}", ABLATION_BENCHMARKS[corpus], "val", row["mlm_nll"],
                                     row["masked"], row["params"], row["train_seconds"], 7, abl["command"], note=budget))
    return entries


def _main(argv: list[str] | None = None) -> int:
    import argparse
    import json
    import time

    from textbook_lm.utils import update_manifest

    ap = argparse.ArgumentParser(prog="python -m textbook_lm.mlm", description="Pretrain the book's BERTs.")
    ap.add_argument("command", choices=["train", "ablate", "finetune"])
    ap.add_argument("name", nargs="?", default="wikitext2-bert", choices=sorted(RECIPES))
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    if args.command == "ablate":
        from textbook_lm.finetune import ablations

        result = ablations()
        ABLATIONS_PATH.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {ABLATIONS_PATH}")
        return 0
    if args.command == "finetune":
        from textbook_lm.finetune import STUDY_PATH, seed_study

        STUDY_PATH.write_text(json.dumps(seed_study(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {STUDY_PATH}")
        return 0
    t0 = time.perf_counter()
    model, tok, history, va = pretrain(args.name)
    ev = evaluate_mlm(model, va, None)
    command = f"python -m textbook_lm.mlm train {args.name}"
    info = {"train_seconds": round(history.seconds, 1), "steps": history.step[-1], "val_loss": round(ev["loss"], 4),
            "val_accuracy": round(ev["accuracy"], 4), "val_masked": ev["masked"], "params": model.num_params(),
            "train_loss": history.train_loss[::10], "val_curve": history.val_loss, "val_step": history.val_step,
            "tokens_per_step": history.tokens_per_step, "command": command}
    path = save_pretrained(args.name, model, tok, info)
    update_manifest(path, args.name, train_seconds=info["train_seconds"], val_loss=info["val_loss"], command=command)
    print(f"{args.name}: MLM val loss {ev['loss']:.4f} nats, accuracy {ev['accuracy']:.3f}, {history.step[-1]} steps, "
          f"{history.seconds:.0f} s training ({time.perf_counter() - t0:.0f} s in all), {path.stat().st_size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
