"""Fine-tuning a BERT for sequence classification: data, the loop, Chapter 7's two tasks,
baselines and confidence intervals over seeds.

Tasks:

- **grammaticality** (TinyLang): is the sentence grammatical? Each minimal pair gives a
  grammatical sentence (label 1) and the same sentence with the main verb's number flipped
  (label 0); subject and verb are 1 to 7 words apart. Balanced, so chance is 50%.
- **poets** (Tang poems): which of two poets, 李白 (Li Bai) or 韋應物 (Wei Yingwu), wrote the
  poem? The first 64 characters of each poem; a fixed, stratified 70/15/15 split.

Each task is fine-tuned from a BERT pretrained on unlabelled text of the same kind
(TinyLang's own sentences; the other Tang poems) and, for comparison, from the WikiText-2
BERT and from random weights (see :func:`seed_study`). Fine-tuning reuses ``train.train``:
a :class:`ClassificationData` serves batches the way a token stream does, and
``BertClassifier.loss`` is cross-entropy over the classes.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from textbook_lm.bert import BERT, BertClassifier, BertConfig

__all__ = ["ClassificationData", "Task", "grammaticality", "poets", "predict", "accuracy", "fine_tune",
           "majority_baseline", "bag_of_words_baseline", "mean_ci", "ablations", "task_for", "group_accuracy",
           "seed_study", "VARIANTS", "ABLATION", "TASK_FINETUNE", "STUDY"]


class ClassificationData:
    """Token-id sequences with class labels, as ``[CLS] seq [SEP]`` (cut to ``max_len``).
    ``batch()`` gives ``((ids, segments), labels)`` with ids (B, T) and labels (B,)."""

    def __init__(self, seqs: list[list[int]], labels: list[int], cls_id: int, sep_id: int, pad_id: int,
                 max_len: int = 128, groups: list[int] | None = None):
        if len(seqs) != len(labels) or not seqs:
            raise ValueError(f"need as many labels as sequences (and at least one), got {len(seqs)} and {len(labels)}")
        rows = [[cls_id, *s[: max_len - 2], sep_id] for s in seqs]
        self.lengths = torch.tensor([len(r) for r in rows])
        self.ids = torch.full((len(rows), int(self.lengths.max())), pad_id, dtype=torch.long)
        for i, r in enumerate(rows):
            self.ids[i, :len(r)] = torch.tensor(r)
        self.labels = torch.tensor(labels)
        self.groups = torch.tensor(groups) if groups is not None else None   # e.g. subject-verb distance
        self.seqs = seqs

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, fraction: float, seed: int = 0) -> "ClassificationData":
        """A random ``fraction`` of the examples of each class (at least one each)."""
        g = torch.Generator().manual_seed(seed)
        keep = []
        for c in self.labels.unique():
            idx = (self.labels == c).nonzero().squeeze(1)
            keep.append(idx[torch.randperm(len(idx), generator=g)[: max(1, round(fraction * len(idx)))]])
        keep = torch.cat(keep).sort().values
        out = object.__new__(ClassificationData)
        out.ids, out.lengths, out.labels = self.ids[keep], self.lengths[keep], self.labels[keep]
        out.groups = None if self.groups is None else self.groups[keep]
        out.seqs = [self.seqs[i] for i in keep.tolist()]
        return out

    def _rows(self, idx: torch.Tensor):
        T = int(self.lengths[idx].max())
        return (self.ids[idx, :T], torch.zeros_like(self.ids[idx, :T])), self.labels[idx]

    def batch(self, batch_size: int, seq_len: int = 0, mode: str = "random", generator: torch.Generator | None = None):
        return self._rows(torch.randint(len(self), (batch_size,), generator=generator))

    def windows(self, seq_len: int = 0, max_windows: int | None = None, batch_size: int = 256):
        out = [self._rows(torch.arange(s, min(s + batch_size, len(self)))) for s in range(0, len(self), batch_size)]
        return out[:max_windows] if max_windows else out


@dataclass
class Task:
    name: str
    classes: list[str]
    train: ClassificationData
    val: ClassificationData
    test: ClassificationData
    vocab_size: int
    info: dict = field(default_factory=dict)


def _data(tok, seqs, labels, max_len, groups=None) -> ClassificationData:
    return ClassificationData(seqs, labels, tok.special_id("[CLS]"), tok.special_id("[SEP]"), tok.special_id("[PAD]"),
                              max_len, groups)


def grammaticality(tok, distances=range(1, 8), n_train: int = 150, n_test: int = 100, seed: int = 0) -> Task:
    """TinyLang grammaticality from minimal pairs: ``n_train`` pairs per distance to train,
    ``n_test`` (val) and ``n_test`` (test) other pairs per distance, no sentence in two splits."""
    from textbook_lm.data.tinylang import TinyLang

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
    from textbook_lm.data import corpora

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


@torch.no_grad()
def predict(model: nn.Module, data: ClassificationData) -> torch.Tensor:
    """Predicted class of every example, in order (model in eval mode)."""
    was = model.training
    model.eval()
    dev = next(model.parameters()).device
    out = torch.cat([model(x.to(dev), s.to(dev)).argmax(-1).cpu() for (x, s), _ in data.windows()])
    model.train(was)
    return out


def accuracy(model: nn.Module, data: ClassificationData) -> float:
    return (predict(model, data) == data.labels).float().mean().item()


FINETUNE = dict(steps=300, batch_size=32, lr=1e-3, warmup=30, min_lr_ratio=0.0, weight_decay=0.01,
                betas=(0.9, 0.999), grad_clip=1.0, eval_every=25)


def fine_tune(bert: BERT | BertConfig, task: Task, seed: int = 0, device: torch.device | None = None,
              progress: bool = False, **overrides):
    """Fine-tune a copy of a pretrained ``bert`` (or a fresh one from a ``BertConfig``: "from
    scratch") on ``task``; returns (classifier, history with validation accuracy in ``val_metric``).
    ``overrides`` change :data:`FINETUNE` (steps, lr, ...)."""
    import copy

    from textbook_lm import seed as seed_all
    from textbook_lm.train import TrainConfig, train

    seed_all(seed)
    body = BERT(bert) if isinstance(bert, BertConfig) else copy.deepcopy(bert)
    model = BertClassifier(body, len(task.classes)).to(device or next(body.parameters()).device)
    cfg = TrainConfig(seed=seed, seq_len=int(task.train.lengths.max()), eval_batches=0, **{**FINETUNE, **overrides})
    history = train(model, task.train, task.val, cfg, progress=progress, metric=lambda m: accuracy(m, task.val))
    return model.eval(), history


# ---------------------------------------------------------------------- baselines and statistics
def majority_baseline(task: Task) -> float:
    """Test accuracy of always answering the most frequent training class."""
    top = torch.bincount(task.train.labels).argmax()
    return (task.test.labels == top).float().mean().item()


def _counts(data: ClassificationData, V: int) -> torch.Tensor:
    x = torch.zeros(len(data), V)
    for i, s in enumerate(data.seqs):
        x[i].index_add_(0, torch.tensor(s, dtype=torch.long), torch.ones(len(s)))
    return torch.log1p(x)                                                # log(1 + count) of each token


def bag_of_words_baseline(task: Task, weight_decays=(1e-4, 1e-3, 1e-2, 1e-1), steps: int = 300) -> dict:
    """Logistic regression on log(1 + token counts), order ignored. The L2 strength is chosen
    on the validation split; returns test accuracy, the chosen strength, validation accuracy."""
    V, K = task.vocab_size, len(task.classes)
    xs = {k: _counts(getattr(task, k), V) for k in ("train", "val", "test")}
    used = xs["train"].sum(0) > 0                                        # tokens never seen in training carry no weight
    xs = {k: x[:, used] for k, x in xs.items()}
    V = int(used.sum())
    best = None
    for wd in weight_decays:
        torch.manual_seed(0)
        lin = nn.Linear(V, K)
        opt = torch.optim.LBFGS(lin.parameters(), max_iter=steps, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = F.cross_entropy(lin(xs["train"]), task.train.labels) + wd * lin.weight.pow(2).sum()
            loss.backward()
            return loss

        opt.step(closure)
        with torch.no_grad():
            val = (lin(xs["val"]).argmax(-1) == task.val.labels).float().mean().item()
            test = (lin(xs["test"]).argmax(-1) == task.test.labels).float().mean().item()
        if best is None or val > best["val_accuracy"]:
            best = {"accuracy": test, "weight_decay": wd, "val_accuracy": val}
    return best


# two-sided 95% quantiles of Student's t for 1..10 degrees of freedom
_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228]


def mean_ci(values) -> tuple[float, float]:
    """Mean and half-width of its 95% confidence interval (Student's t, n - 1 degrees of freedom)."""
    v = [float(x) for x in values]
    n = len(v)
    if n < 2:
        raise ValueError("a confidence interval needs at least two values")
    m = sum(v) / n
    sd = math.sqrt(sum((x - m) ** 2 for x in v) / (n - 1))
    t = _T975[n - 2] if n - 1 <= len(_T975) else 1.96 + 2.4 / (n - 1)   # within about 1% for df > 10
    return m, t * sd / math.sqrt(n)


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
    import time

    from textbook_lm import mlm

    out = {"command": "python -m textbook_lm.mlm ablate", "studies": {}}
    for corpus, spec in ABLATION.items():
        recipe = mlm.RECIPES[spec["recipe"]]
        rows, task, cache = [], None, {}
        for name in spec["variants"]:
            v = dict(VARIANTS[name])
            nsp, masking = v.pop("nsp"), v.pop("masking")
            if "embedding_size" in v:
                v["embedding_size"] = recipe["model"]["d_model"] // v["embedding_size"]
            if (nsp, masking) not in cache:
                cache[nsp, masking] = mlm.corpus_data(recipe["corpus"], nsp, recipe["model"]["max_len"], masking,
                                                      max_docs=spec["max_docs"])
            tok, tr, va = cache[nsp, masking]
            t0 = time.perf_counter()
            model, _, history, _ = mlm.pretrain(spec["recipe"], steps=spec["steps"], progress=progress,
                                                data=(tok, tr, va), train_overrides=spec["train"], nsp=nsp,
                                                masking=masking, **v)
            seconds = time.perf_counter() - t0
            ev = mlm.evaluate_mlm(model, va, None)
            nsp_acc = mlm.evaluate_mlm(model, mlm.nsp_validation(tok), None)["nsp_accuracy"] if nsp else None
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
STUDY_PATH = Path(__file__).with_name("results") / "bert_finetune.json"


def task_for(name: str, tok) -> Task:
    """Chapter 7's task ``"grammaticality"`` or ``"poets"`` for this tokenizer."""
    if name == "grammaticality":
        return grammaticality(tok)
    if name == "poets":
        return poets(tok)
    raise ValueError(f"task must be 'grammaticality' or 'poets', got {name!r}")


def group_accuracy(model: nn.Module, data: ClassificationData) -> dict[int, float]:
    """Accuracy within each group (e.g. each subject-verb distance)."""
    right = predict(model, data) == data.labels
    return {int(g): right[data.groups == g].float().mean().item() for g in data.groups.unique()}


STUDY = [("grammaticality", "tinylang-bert"), ("grammaticality", "wikitext2-bert"), ("poets", "tang-bert")]


def seed_study(seeds=(0, 1, 2, 3, 4), progress: bool = False) -> dict:
    """For each (task, shipped BERT) of :data:`STUDY`: fine-tune the pretrained BERT and a
    same-shaped fresh one once per seed; test accuracies, validation curves, accuracy by
    group, and the majority and bag-of-words baselines. Results keyed ``"task/model"``."""
    import time

    from textbook_lm import mlm

    out = {"command": "python -m textbook_lm.mlm finetune", "seeds": list(seeds), "settings": TASK_FINETUNE}
    for name, shipped in STUDY:
        bert, tok, _ = mlm.pretrained(shipped)
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
