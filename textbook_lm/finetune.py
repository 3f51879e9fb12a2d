"""Fine-tuning a BERT for sequence classification: data, the loop, baselines and confidence
intervals over seeds (Chapter 7).

Fine-tuning reuses ``train.train``: a :class:`ClassificationData` serves batches the way a
token stream does, and ``BertClassifier.loss`` is cross-entropy over the classes. A
:class:`Task` bundles train / validation / test data; the chapter's two tasks (TinyLang
grammaticality, 李白 vs 韋應物) and its seed study are built in
:mod:`textbook_lm.experiments.bert`. Two baselines say what fine-tuning has to beat: always
answering the majority class, and logistic regression on bags of words. A linear probe
(logistic regression on a frozen encoder's mean hidden state) measures what pretraining put
into the features without changing them.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from textbook_lm import seed as seed_all
from textbook_lm.bert import BERT, BertClassifier, BertConfig
from textbook_lm.train import TrainConfig, train
from textbook_lm.utils import cross_entropy, eval_mode

__all__ = ["ClassificationData", "Task", "predict", "probabilities", "accuracy", "group_accuracy", "FINETUNE", "fine_tune",
           "majority_baseline", "logistic_regression", "bag_of_words_baseline", "features", "linear_probe",
           "mean_ci"]


class ClassificationData:
    """Token-id sequences with class labels, as ``[CLS] seq [SEP]`` (cut to ``max_len``).
    ``batch()`` gives ``((ids, segments), labels)`` with ids (B, T) and labels (B,)."""

    def __init__(self, seqs: list[list[int]], labels: list[int], cls_id: int, sep_id: int, pad_id: int,
                 max_len: int = 128, groups: list[int] | None = None):
        if len(seqs) != len(labels) or not seqs:
            raise ValueError(f"need as many labels as sequences (and at least one), got {len(seqs)} and {len(labels)}")
        if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 3:
            raise ValueError(f"max_len must be an int >= 3 ([CLS], a token, [SEP]), got {max_len!r}")
        if any(isinstance(s, str) for s in seqs):
            raise TypeError("seqs must be lists of token ids, not strings: encode the text first")
        if groups is not None and len(groups) != len(seqs):
            raise ValueError(f"need one group per sequence, got {len(groups)} for {len(seqs)}")
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

    def subset_indices(self, fraction: float, seed: int = 0) -> torch.Tensor:
        """Sorted indices of a random ``fraction`` of the examples of each class (at least one each)."""
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
        g = torch.Generator().manual_seed(seed)
        keep = []
        for c in self.labels.unique():
            idx = (self.labels == c).nonzero().squeeze(1)
            keep.append(idx[torch.randperm(len(idx), generator=g)[: max(1, round(fraction * len(idx)))]])
        return torch.cat(keep).sort().values

    def subset(self, fraction: float, seed: int = 0) -> "ClassificationData":
        """A random ``fraction`` of the examples of each class (at least one each)."""
        keep = self.subset_indices(fraction, seed)
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


@torch.no_grad()
def predict(model: nn.Module, data: ClassificationData) -> torch.Tensor:
    """Predicted class of every example, in order (model in eval mode)."""
    dev = next(model.parameters()).device
    with eval_mode(model):
        return torch.cat([model(x.to(dev), s.to(dev)).argmax(-1).cpu() for (x, s), _ in data.windows()])


@torch.no_grad()
def probabilities(model: nn.Module, data: ClassificationData) -> torch.Tensor:
    """``(N, classes)``: the predicted distribution over classes of every example, in order."""
    dev = next(model.parameters()).device
    with eval_mode(model):
        return torch.cat([model(x.to(dev), s.to(dev)).softmax(-1).cpu() for (x, s), _ in data.windows()])


def accuracy(model: nn.Module, data: ClassificationData) -> float:
    return (predict(model, data) == data.labels).float().mean().item()


FINETUNE = dict(steps=300, batch_size=32, lr=1e-3, warmup=30, min_lr_ratio=0.0, weight_decay=0.01,
                betas=(0.9, 0.999), grad_clip=1.0, eval_every=25)


def fine_tune(bert: BERT | BertConfig, task: Task, seed: int = 0, device: torch.device | None = None,
              progress: bool = False, **overrides):
    """Fine-tune a copy of a pretrained ``bert`` (or a fresh one from a ``BertConfig``: "from
    scratch") on ``task``; returns (classifier, history with validation accuracy in ``val_metric``).
    ``overrides`` change :data:`FINETUNE` (steps, lr, ...)."""
    if not isinstance(bert, (BERT, BertConfig)):
        raise TypeError(f"fine_tune needs a BERT or a BertConfig, got {type(bert).__name__}")
    unknown = set(overrides) - set(TrainConfig.__dataclass_fields__)
    if unknown:
        raise TypeError(f"unknown fine-tuning settings {sorted(unknown)}; TrainConfig has "
                        f"{sorted(TrainConfig.__dataclass_fields__)}")
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


def logistic_regression(xs: dict[str, torch.Tensor], labels: dict[str, torch.Tensor], n_classes: int,
                        weight_decays=(1e-4, 1e-3, 1e-2, 1e-1), steps: int = 300, return_probs: bool = False) -> dict:
    """Multinomial logistic regression on features ``xs["train"]`` (N, D), fit by L-BFGS with an
    L2 penalty whose strength is chosen on ``xs["val"]``; returns test accuracy (on ``xs["test"]``),
    the chosen strength and its validation accuracy (with ``return_probs``, also ``"probs"``: the
    test examples' predicted class distributions, ``(N, classes)``)."""
    best = None
    for wd in weight_decays:
        torch.manual_seed(0)
        lin = nn.Linear(xs["train"].shape[1], n_classes)
        opt = torch.optim.LBFGS(lin.parameters(), max_iter=steps, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = cross_entropy(lin(xs["train"]), labels["train"]) + wd * lin.weight.pow(2).sum()
            loss.backward()
            return loss

        opt.step(closure)
        with torch.no_grad():
            val = (lin(xs["val"]).argmax(-1) == labels["val"]).float().mean().item()
            probs = lin(xs["test"]).softmax(-1)
            test = (probs.argmax(-1) == labels["test"]).float().mean().item()
        if best is None or val > best["val_accuracy"]:
            best = {"accuracy": test, "weight_decay": wd, "val_accuracy": val, **({"probs": probs} if return_probs else {})}
    return best


def _labels(task: Task, train: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    return {"train": task.train.labels if train is None else task.train.labels[train],
            "val": task.val.labels, "test": task.test.labels}


def bag_of_words_baseline(task: Task, weight_decays=(1e-4, 1e-3, 1e-2, 1e-1), steps: int = 300,
                          return_probs: bool = False) -> dict:
    """Logistic regression on log(1 + token counts), order ignored. The L2 strength is chosen
    on the validation split; returns test accuracy, the chosen strength, validation accuracy."""
    V = task.vocab_size
    xs = {k: _counts(getattr(task, k), V) for k in ("train", "val", "test")}
    used = xs["train"].sum(0) > 0                                        # tokens never seen in training carry no weight
    xs = {k: x[:, used] for k, x in xs.items()}
    return logistic_regression(xs, _labels(task), len(task.classes), weight_decays, steps, return_probs)


@torch.no_grad()
def features(bert: BERT, data: ClassificationData) -> torch.Tensor:
    """Frozen features of every example, in order: the mean of the encoder's final hidden
    states over the example's positions ([CLS] and [SEP] included, padding left out). (N, C)."""
    dev = next(bert.parameters()).device
    out = []
    with eval_mode(bert):
        for (x, s), _ in data.windows():
            x, s = x.to(dev), s.to(dev)
            keep = (x != bert.cfg.pad_id).unsqueeze(-1).float()          # (B, T, 1)
            out.append(((bert(x, s) * keep).sum(1) / keep.sum(1)).cpu())  # (B, C)
    return torch.cat(out)


def linear_probe(feats: dict[str, torch.Tensor], task: Task, train: torch.Tensor | None = None,
                 weight_decays=(1e-4, 1e-3, 1e-2, 1e-1), steps: int = 300) -> dict:
    """A *linear probe*: logistic regression on frozen features ``feats`` (split -> (N, C), e.g.
    from :func:`features`), standardised with the training rows' mean and spread. ``train``
    (indices) keeps only some training rows, e.g. ``task.train.subset_indices(0.1)``."""
    xs = dict(feats)
    if train is not None:
        xs["train"] = xs["train"][train]
    mu, sd = xs["train"].mean(0), xs["train"].std(0) + 1e-6
    xs = {k: (x - mu) / sd for k, x in xs.items()}
    return logistic_regression(xs, _labels(task, train), len(task.classes), weight_decays, steps)


# two-sided 95% quantiles of Student's t for 1..10 degrees of freedom
_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228]


def mean_ci(values) -> tuple[float, float]:
    """Mean and half-width of its 95% confidence interval (Student's t, n - 1 degrees of freedom)."""
    v = [float(x) for x in values]
    n = len(v)
    if n < 2:
        raise ValueError("a confidence interval needs at least two values")
    if not all(math.isfinite(x) for x in v):
        raise ValueError(f"values must be finite numbers, got {v}")
    m = sum(v) / n
    sd = math.sqrt(sum((x - m) ** 2 for x in v) / (n - 1))
    t = _T975[n - 2] if n - 1 <= len(_T975) else 1.96 + 2.4 / (n - 1)   # within about 1% for df > 10
    return m, t * sd / math.sqrt(n)


def group_accuracy(model: nn.Module, data: ClassificationData) -> dict[int, float]:
    """Accuracy within each group (e.g. each subject-verb distance)."""
    if data.groups is None:
        raise ValueError("these data have no groups (pass groups= to ClassificationData)")
    right = predict(model, data) == data.labels
    return {int(g): right[data.groups == g].float().mean().item() for g in data.groups.unique()}
