"""Chapter 7's experiments: the book's BERTs (corpora, recipes, shipped checkpoints), the
fine-tuning tasks and seed study, the RoBERTa / ALBERT ablations, and the leaderboard entries.

Commands (each writes into ``--out DIR``, default ``./artefacts``, or with ``--into-package``
into the package's shipped artefacts):

* ``python -m textbook_lm.experiments.bert train wikitext2-bert`` (or ``tinylang-bert``,
  ``tang-bert``): pretrain a shipped BERT (25, 1 and 10 minutes on a 2-core CPU).
* ``python -m textbook_lm.experiments.bert ablate``: the ablations (about 30 minutes), stored
  as the result ``bert-ablations``.
* ``python -m textbook_lm.experiments.bert finetune``: pretrained vs from scratch over five
  seeds, stored as the result ``bert-finetune``.
* ``python -m textbook_lm.experiments.bert probe``: a linear probe on the frozen Tang BERT vs
  random weights and a bag of words, with fewer and fewer labels, stored as ``bert-probe``.
"""
from __future__ import annotations

import argparse
import random
import re
import time

import torch

from textbook_lm import hub, tokenize
from textbook_lm import seed as seed_all
from textbook_lm.bert import BERT, BertConfig
from textbook_lm.data import corpora, tinylang
from textbook_lm.data.tinylang import TinyLang
from textbook_lm.experiments import add_output_args, output_dir
from textbook_lm.finetune import (ClassificationData, Task, accuracy, bag_of_words_baseline, features, fine_tune,
                                  group_accuracy, linear_probe, majority_baseline, mean_ci)
from textbook_lm.leaderboard import Entry
from textbook_lm.mlm import SPECIALS, MLMData, evaluate_mlm, evaluate_unigram, make_examples, unigram_logprobs
from textbook_lm.train import TrainConfig, train

__all__ = ["EXCLUDED_POETS", "BERT_PAPER", "wikitext_documents", "tang_documents", "RECIPES", "corpus_data",
           "nsp_validation", "pretrain", "grammaticality", "poets", "task_for", "TASK_FINETUNE", "STUDY",
           "seed_study", "VARIANTS", "ABLATION", "ablations", "PROBE", "probe_study", "leaderboard_entries", "main"]

EXCLUDED_POETS = ("李白", "韋應物")                     # held out of the Tang BERT's pretraining text (the poets task)

# Published figures of BERT's pretraining (Devlin et al., 2019, Section 3.1 and Appendix A.2) that
# Chapter 7 sets beside ours: corpus sizes in words (not WordPiece tokens); 1M steps of 256
# sequences of 512 tokens ("approximately 40 epochs over the 3.3 billion word corpus"), of which
# 90% were in fact run with sequences of 128 tokens.
BERT_PAPER = {
    "corpus_words": {"BooksCorpus": 800_000_000, "English Wikipedia": 2_500_000_000},
    "steps": 1_000_000, "batch_size": 256, "seq_len": 512,
    "short_seq_len": 128, "short_fraction": 0.9,
}


# ---------------------------------------------------------------------- documents
def _clean_wikitext(line: str) -> str:
    """Undo WikiText's tokenisation artefacts: ``@-@`` -> ``-`` etc.; ``<unk>`` -> ``[UNK]``."""
    line = line.replace(" @-@ ", "-").replace(" @,@ ", ",").replace(" @.@ ", ".")
    return line.replace("<unk>", "[UNK]").strip()


def wikitext_documents(split: str = "train") -> list[list[str]]:
    """WikiText-2 as articles, each a list of sentences (paragraphs cut after " . ");
    headings are dropped, a top-level heading ``= Title =`` starts a new article."""
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
    return [p["text"].split("\n") for p in corpora.tang_poems() if p["author"] not in exclude]


# ---------------------------------------------------------------------- recipes
RECIPES: dict[str, dict] = {
    # 4 layers x 128, WordPiece 8k (Chapter 2), sequences of 128, MLM + NSP, dynamic masking
    "wikitext2-bert": dict(corpus="wikitext-2", nsp=True, masking="dynamic",
                           model=dict(block_size=128, n_layer=4, n_head=4, n_embd=128, dropout=0.1),
                           train=dict(steps=4500, batch_size=32, seq_len=128, lr=1e-3, warmup=300, min_lr_ratio=0.1,
                                      weight_decay=0.01, betas=(0.9, 0.98), grad_clip=1.0, eval_every=500,
                                      eval_batches=10, max_seconds=1500)),
    # TinyLang's 20,000 training sentences, one per example, MLM only: small enough to train live
    "tinylang-bert": dict(corpus="tinylang", nsp=False, masking="dynamic",
                          model=dict(block_size=32, n_layer=2, n_head=4, n_embd=64, dropout=0.1),
                          train=dict(steps=1500, batch_size=64, seq_len=32, lr=2e-3, warmup=100, min_lr_ratio=0.1,
                                     weight_decay=0.01, betas=(0.9, 0.98), grad_clip=1.0, eval_every=250,
                                     eval_batches=10, max_seconds=600)),
    # characters of the Tang poems (李白 and 韋應物 held out), one poem per example, MLM only
    "tang-bert": dict(corpus="tang", nsp=False, masking="dynamic",
                      model=dict(block_size=66, n_layer=3, n_head=4, n_embd=128, dropout=0.1),
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
    if corpus == "wikitext-2":
        tok = tokenize.from_pretrained("wikitext2-wordpiece-8k")
        train_docs, val_docs = wikitext_documents("train"), wikitext_documents("valid")
    elif corpus == "tinylang":
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
    if name not in RECIPES:
        raise KeyError(f"unknown BERT recipe {name!r}; known: {sorted(RECIPES)}")
    r = RECIPES[name]
    nsp, masking = overrides.pop("nsp", r["nsp"]), overrides.pop("masking", r["masking"])
    model_kw, train_kw = {**r["model"], **overrides}, {**r["train"], **(train_overrides or {})}
    if steps is not None:
        train_kw["steps"] = steps
    tok, tr, va = data or corpus_data(r["corpus"], nsp, model_kw["block_size"], masking, seed=seed)
    seed_all(seed)
    model = BERT(BertConfig(vocab_size=tok.vocab_size, pad_id=tok.special_id("[PAD]"), **model_kw))
    if device is not None:
        model.to(device)
    history = train(model, tr, va, TrainConfig(seed=seed, **train_kw), progress=progress)
    return model, tok, history, va


LEADERBOARD = {"wikitext2-bert": ("wikitext-2-mlm", "mini-BERT (4 x 128), shipped"),
               "tinylang-bert": ("tinylang-mlm", "TinyLang BERT (2 x 64), shipped"),
               "tang-bert": ("tang-mlm", "Tang character BERT (3 x 128), shipped")}
ABLATION_BENCHMARKS = {"wikitext-2": "wikitext-2-mlm", "tinylang": "tinylang-mlm"}


def leaderboard_entries() -> list:
    """Chapter 7's entries, on masked-LM benchmarks of their own (a masked LM has no
    left-to-right perplexity): cross-entropy per masked token on the validation split with
    fixed masks, for each shipped BERT, a unigram model (token frequencies, no context) and
    the ablation variants of ``results/bert_ablations.json``."""
    command = "python -m textbook_lm.experiments.leaderboard reproduce bert"
    entries = []
    for name, (bench, label) in LEADERBOARD.items():
        r = RECIPES[name]
        model, tok, info = hub.load(name, kind="BERT")
        _, tr, va = corpus_data(r["corpus"], False, r["model"]["block_size"])
        ev = evaluate_mlm(model, va, None)
        entries.append(Entry(label, bench, "val", ev["loss"] * ev["masked"], ev["masked"], model.num_params(),
                             info["train_seconds"], 7, info["command"], note="float16 weights"))
        logp = unigram_logprobs(tr)                                       # add-one smoothed training counts
        uni = evaluate_unigram(logp, va, None)
        entries.append(Entry("unigram frequencies (no context)", bench, "val", uni["loss"] * uni["masked"],
                             uni["masked"], int(logp.isfinite().sum()), 0.0, 7, command,
                             note="add-one smoothed training counts"))
    abl = hub.load("bert-ablations").obj
    for corpus, study in abl["studies"].items():
        b = study["budget"]
        budget = f"{b['max_docs']} articles, {b['steps']} steps" if b["max_docs"] else f"recipe {b['recipe']}"
        for row in study["runs"]:
            entries.append(Entry(f"ablation: {row['variant']}", ABLATION_BENCHMARKS[corpus], "val", row["mlm_nll"],
                                 row["masked"], row["params"], row["train_seconds"], 7, abl["command"], note=budget))
    return entries


# ---------------------------------------------------------------------- Chapter 7's fine-tuning tasks
def _data(tok, seqs, labels, max_len, groups=None) -> ClassificationData:
    return ClassificationData(seqs, labels, tok.special_id("[CLS]"), tok.special_id("[SEP]"), tok.special_id("[PAD]"),
                              max_len, groups)


def grammaticality(tok, distances=range(1, 8), n_train: int = 150, n_test: int = 100, seed: int = 0) -> Task:
    """TinyLang grammaticality from minimal pairs: ``n_train`` pairs per distance to train,
    ``n_test`` (val) and ``n_test`` (test) other pairs per distance, no sentence in two splits."""
    lang, seen = TinyLang(), set()
    splits = []
    for k, n in enumerate((n_train, n_test, n_test)):
        seqs, labels, groups = [], [], []
        for d in distances:
            pool = lang.minimal_pairs(d, 3 * n, seed=1000 * seed + 10 * k + 1)
            taken = 0
            for p in pool:
                key = " ".join(p.good)
                if key in seen or taken == n:
                    continue
                seen.add(key)
                taken += 1
                for words, label in ((p.good, 1), (p.bad, 0)):
                    seqs.append(tok.encode(" ".join(words)))
                    labels.append(label)
                    groups.append(d)
        splits.append(_data(tok, seqs, labels, 64, groups))
    return Task("TinyLang grammaticality", ["ungrammatical", "grammatical"], *splits, tok.vocab_size,
                {"distances": list(distances)})


def poets(tok, authors: tuple[str, str] = ("李白", "韋應物"), max_chars: int = 64, seed: int = 0) -> Task:
    """Which of two poets wrote a Tang poem (its first ``max_chars`` characters, line breaks removed)."""
    rng = random.Random(seed)
    parts: list[tuple[list, list]] = [([], []), ([], []), ([], [])]
    for label, author in enumerate(authors):
        poems = [p["text"].replace("\n", "") for p in corpora.tang_poems() if p["author"] == author]
        rng.shuffle(poems)
        a, b = int(0.7 * len(poems)), int(0.85 * len(poems))
        for part, chunk in zip(parts, (poems[:a], poems[a:b], poems[b:])):
            part[0].extend(tok.encode(p[:max_chars]) for p in chunk)
            part[1].extend([label] * len(chunk))
    splits = [_data(tok, s, l, max_chars + 2) for s, l in parts]
    return Task("Tang poets", list(authors), *splits, tok.vocab_size, {"max_chars": max_chars})


# ---------------------------------------------------------------------- RoBERTa and ALBERT ablations
# Changes to a recipe, each pretrained with the same budget and scored on the same masked
# validation tokens. On WikiText-2 (150 articles, 600 steps: several passes, so static masks
# repeat) all six; on TinyLang (the recipe "tinylang-bert", whose sentences are independent, so
# NSP has nothing to learn) the masking and ALBERT variants, each also fine-tuned on
# grammaticality with three seeds.
VARIANTS: dict[str, dict] = {
    "BERT: static masks + NSP": dict(masking="static", nsp=True),
    "BERT: static masks": dict(masking="static", nsp=False),
    "dynamic masks + NSP": dict(masking="dynamic", nsp=True),
    "RoBERTa: dynamic, no NSP": dict(masking="dynamic", nsp=False),
    "ALBERT: E = C/4": dict(masking="dynamic", nsp=False, embedding_size=4),
    "ALBERT: shared layers": dict(masking="dynamic", nsp=False, share_layers=True),
    "ALBERT: E = C/4 + shared": dict(masking="dynamic", nsp=False, embedding_size=4, share_layers=True),
}
ABLATION = {
    "wikitext-2": dict(recipe="wikitext2-bert", steps=600, max_docs=150, variants=list(VARIANTS),
                       train=dict(warmup=60, eval_every=100, eval_batches=10)),
    "tinylang": dict(recipe="tinylang-bert", steps=None, max_docs=None, seeds=(0, 1, 2),
                     variants=["BERT: static masks", "RoBERTa: dynamic, no NSP", "ALBERT: E = C/4",
                               "ALBERT: shared layers", "ALBERT: E = C/4 + shared"], train={}),
}


def ablations(progress: bool = False) -> dict:
    """Pretrain the variants of :data:`ABLATION` on each corpus; for each run: parameters, time,
    MLM validation loss / accuracy (NSP accuracy where trained) and, on TinyLang, test
    accuracy on grammaticality after fine-tuning (one value per seed). ``embedding_size``
    in :data:`VARIANTS` is a divisor of the width C."""
    out = {"command": "python -m textbook_lm.experiments.bert ablate", "studies": {}}
    for corpus, spec in ABLATION.items():
        recipe = RECIPES[spec["recipe"]]
        rows, task, cache = [], None, {}
        for name in spec["variants"]:
            v = dict(VARIANTS[name])
            nsp, masking = v.pop("nsp"), v.pop("masking")
            if "embedding_size" in v:
                v["embedding_size"] = recipe["model"]["n_embd"] // v["embedding_size"]
            if (nsp, masking) not in cache:
                cache[nsp, masking] = corpus_data(recipe["corpus"], nsp, recipe["model"]["block_size"], masking,
                                                      max_docs=spec["max_docs"])
            tok, tr, va = cache[nsp, masking]
            t0 = time.perf_counter()
            model, _, history, _ = pretrain(spec["recipe"], steps=spec["steps"], progress=progress,
                                                data=(tok, tr, va), train_overrides=spec["train"], nsp=nsp,
                                                masking=masking, **v)
            seconds = time.perf_counter() - t0
            ev = evaluate_mlm(model, va, None)
            nsp_acc = evaluate_mlm(model, nsp_validation(tok), None)["nsp_accuracy"] if nsp else None
            steps = history.step[-1]
            row = {"variant": name, "nsp": nsp, "masking": masking, **v, "params": model.num_params(),
                   "params_non_embedding": model.num_params(embeddings=False), "train_seconds": round(seconds, 1),
                   "steps": steps, "examples": len(tr),
                   "epochs": round(steps * recipe["train"]["batch_size"] / len(tr), 2),
                   "mlm_loss": round(ev["loss"], 4), "mlm_nll": ev["loss"] * ev["masked"],
                   "mlm_accuracy": round(ev["accuracy"], 4), "masked": ev["masked"], "nsp_accuracy": nsp_acc,
                   "val_curve": history.val_loss, "val_step": history.val_step}
            if "seeds" in spec:
                task = task or grammaticality(tok)
                row["grammar_accuracy"] = [round(accuracy(fine_tune(model, task, seed=s)[0], task.test), 4)
                                           for s in spec["seeds"]]
            rows.append(row)
            print(f"{corpus} / {name}: {row['params']:,} params, MLM {ev['loss']:.3f} / {ev['accuracy']:.3f}, "
                  f"grammar {row.get('grammar_accuracy')}, {seconds:.0f} s", flush=True)
        out["studies"][corpus] = {"budget": {k: spec[k] for k in ("recipe", "steps", "max_docs")}, "runs": rows}
    return out


# ---------------------------------------------------------------------- pretrained vs from scratch, over seeds
# The chapter's fine-tuning settings; the same for a pretrained body and a fresh one.
TASK_FINETUNE = {"grammaticality": dict(steps=200, eval_every=40), "poets": dict(steps=150, eval_every=30)}


def task_for(name: str, tok) -> Task:
    """Chapter 7's task ``"grammaticality"`` or ``"poets"`` for this tokenizer."""
    if name == "grammaticality":
        return grammaticality(tok)
    if name == "poets":
        return poets(tok)
    raise ValueError(f"task must be 'grammaticality' or 'poets', got {name!r}")


STUDY = [("grammaticality", "tinylang-bert"), ("grammaticality", "wikitext2-bert"), ("poets", "tang-bert")]


def seed_study(seeds=(0, 1, 2, 3, 4), progress: bool = False) -> dict:
    """For each (task, shipped BERT) of :data:`STUDY`: fine-tune the pretrained BERT and a
    same-shaped fresh one once per seed; test accuracies, validation curves, accuracy by
    group, and the majority and bag-of-words baselines. Results keyed ``"task/model"``."""
    out = {"command": "python -m textbook_lm.experiments.bert finetune", "seeds": list(seeds), "settings": TASK_FINETUNE}
    for name, shipped in STUDY:
        bert, tok, _ = hub.load(shipped, kind="BERT")
        task = task_for(name, tok)
        res = {"task": name, "model": shipped, "n_train": len(task.train), "n_test": len(task.test),
               "majority": majority_baseline(task), "bag_of_words": bag_of_words_baseline(task)}
        for kind, init in (("pretrained", bert), ("scratch", bert.cfg)):
            accs, curves, groups, t0 = [], [], [], time.perf_counter()
            for s in seeds:
                model, h = fine_tune(init, task, seed=s, progress=progress, **TASK_FINETUNE[name])
                accs.append(accuracy(model, task.test))
                curves.append(h.val_metric)
                if task.test.groups is not None:
                    groups.append(group_accuracy(model, task.test))
            res[kind] = {"accuracy": accs, "val_step": h.val_step, "val_accuracy": curves, "by_group": groups,
                         "seconds_per_run": round((time.perf_counter() - t0) / len(seeds), 1)}
            m, hw = mean_ci(accs)
            print(f"{name} / {shipped} / {kind}: {m:.3f} +- {hw:.3f}", flush=True)
        out[f"{name}/{shipped}"] = res
    return out


# ---------------------------------------------------------------------- what pretraining put into the features
# A linear probe on the frozen mean hidden state of the Tang BERT, against the same network with
# random weights and a bag of words, as the number of labelled poems shrinks.
PROBE = dict(task="poets", model="tang-bert", fractions=(0.05, 0.1, 0.25, 1.0), seeds=(0, 1, 2, 3, 4))


def probe_study(spec: dict = PROBE) -> dict:
    """For each fraction of the training labels (a stratified subset per seed; the full set once):
    test accuracy of a linear probe on the pretrained BERT's frozen features, of one on a
    same-shaped BERT with random weights (seed 0), of the bag of words, and the majority class."""
    bert, tok, _ = hub.load(spec["model"], kind="BERT")
    task = task_for(spec["task"], tok)
    seed_all(0)
    bodies = {"pretrained": bert, "random weights": BERT(bert.cfg).eval()}
    feats = {k: {split: features(m, getattr(task, split)) for split in ("train", "val", "test")}
             for k, m in bodies.items()}
    out = {"command": "python -m textbook_lm.experiments.bert probe", **spec, "n_train": len(task.train),
           "majority": majority_baseline(task), "rows": []}
    t0 = time.perf_counter()
    for frac in spec["fractions"]:
        seeds = spec["seeds"] if frac < 1 else spec["seeds"][:1]        # all the labels: the same for every seed
        row = {"fraction": frac, "n_labels": [], "bag_of_words": [], **{k: [] for k in bodies}}
        for s in seeds:
            keep = task.train.subset_indices(frac, seed=s)
            row["n_labels"].append(len(keep))
            sub = Task(task.name, task.classes, task.train.subset(frac, seed=s), task.val, task.test, task.vocab_size)
            row["bag_of_words"].append(bag_of_words_baseline(sub)["accuracy"])
            for k in bodies:
                row[k].append(linear_probe(feats[k], task, train=keep)["accuracy"])
        out["rows"].append(row)
        print(f"{frac:.2f}: " + ", ".join(f"{k} {sum(row[k]) / len(row[k]):.3f}"
                                          for k in ("bag_of_words", *bodies)), flush=True)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m textbook_lm.experiments.bert",
                                 description="Pretrain the book's BERTs, run the ablations or the seed study (Chapter 7).")
    ap.add_argument("command", choices=["train", "ablate", "finetune", "probe"])
    ap.add_argument("name", nargs="?", default="wikitext2-bert", choices=sorted(RECIPES))
    add_output_args(ap)
    args = ap.parse_args(argv)
    if args.command in ("ablate", "finetune", "probe"):
        result = {"ablate": ablations, "finetune": seed_study, "probe": probe_study}[args.command]()
        name = {"ablate": "bert-ablations", "finetune": "bert-finetune", "probe": "bert-probe"}[args.command]
        path = hub.save(result, output_dir(args, name), info={"command": result["command"]})
        print(f"wrote {path}")
        return 0
    t0 = time.perf_counter()
    model, tok, history, va = pretrain(args.name)
    ev = evaluate_mlm(model, va, None)
    command = f"python -m textbook_lm.experiments.bert train {args.name}"
    info = {"train_seconds": round(history.seconds, 1), "steps": history.step[-1], "val_loss": round(ev["loss"], 4),
            "val_accuracy": round(ev["accuracy"], 4), "val_masked": ev["masked"], "params": model.num_params(),
            "train_loss": history.train_loss[::10], "val_curve": history.val_loss, "val_step": history.val_step,
            "tokens_per_step": history.tokens_per_step, "command": command}
    path = model.save_pretrained(output_dir(args, args.name), tokenizer=tok, info=info, half=True)
    print(f"{args.name}: MLM val loss {ev['loss']:.4f} nats, accuracy {ev['accuracy']:.3f}, {history.step[-1]} steps, "
          f"{history.seconds:.0f} s training ({time.perf_counter() - t0:.0f} s in all) -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
