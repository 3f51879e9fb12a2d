"""Distillation (Chapter 11): a small student trained to match a large teacher.

* Soft targets (Hinton et al., 2015): the teacher's distribution softened by a temperature
  ``T``, ``softmax(z / T)``, carries how the teacher ranks the wrong answers ("dark
  knowledge"). The student matches it by minimising ``KL(p_teacher^T || p_student^T)``.
  Softening shrinks the gradient of that term by ``1 / T^2``, so the term is multiplied by
  ``T^2`` to keep its weight against the hard-label loss whatever ``T`` is
  (:func:`kd_loss`; the missing factor is a classic bug).
* Hidden-state matching: the student's hidden states pointed the same way as the teacher's
  (cosine, as DistilBERT) or, when the widths differ, mapped by a learnt projection and
  matched in squared error (as FitNets and TinyBERT) (:func:`hidden_cosine_loss`,
  :class:`HiddenProjector`).
* Initialisation from the teacher (DistilBERT takes every other layer):
  :func:`student_from_teacher`.
* One loop for students: :class:`Distiller` wraps student and frozen teacher so that
  :func:`textbook_lm.train.train` trains the student on the distillation loss and validates
  it on its own next-token loss; :class:`TeacherTargets` computes the teacher's logits on a
  transfer set once, so that each training step runs the student only.

Shapes: logits ``(..., V)``; targets ``(...)`` with -100 where nothing is predicted.
"""
from __future__ import annotations

import copy
import dataclasses
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from textbook_lm.checks import check_number

__all__ = ["soften", "soft_kl", "kd_loss", "hidden_cosine_loss", "HiddenProjector", "hidden_mse_loss",
           "student_from_teacher", "TeacherTargets", "Distiller", "BertDistiller", "LogitBias"]


def soften(logits: torch.Tensor, T: float = 1.0) -> torch.Tensor:
    """The distribution ``softmax(logits / T)`` over the last axis: ``T > 1`` flattens it,
    ``T < 1`` sharpens it, ``T = 1`` is the model's own distribution."""
    check_number("T", T, lambda v: v > 0, "> 0")
    return F.softmax(logits.float() / T, dim=-1)


def soft_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, T: float = 1.0,
            mask: torch.Tensor | None = None) -> torch.Tensor:
    """``KL(softmax(teacher / T) || softmax(student / T))`` in nats, summed over the classes
    and averaged over the positions (PyTorch's ``batchmean`` when every row is one position);
    ``mask (...)`` keeps only the positions where it is True."""
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student and teacher logits differ in shape: {tuple(student_logits.shape)} "
                         f"vs {tuple(teacher_logits.shape)}")
    check_number("T", T, lambda v: v > 0, "> 0")
    log_q = F.log_softmax(student_logits.float() / T, dim=-1)
    log_p = F.log_softmax(teacher_logits.float() / T, dim=-1)
    kl = (log_p.exp() * (log_p - log_q)).sum(-1)                    # (...) per position
    if mask is not None:
        if not mask.any():
            raise ValueError("the mask keeps no position")
        return kl[mask].mean()
    return kl.mean()


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor | None = None,
            T: float = 2.0, alpha: float = 0.5, scale: bool = True) -> torch.Tensor:
    """Hinton et al.'s distillation loss: ``alpha * T^2 * KL(teacher_T || student_T) +
    (1 - alpha) * cross_entropy(student, targets)``. ``targets`` may hold -100 (ignored in
    both terms); without targets, ``alpha`` must be 1. ``scale=False`` drops the ``T^2``, to
    show what it is for."""
    check_number("alpha", alpha, lambda v: 0 <= v <= 1, "in [0, 1]")
    if targets is None and alpha != 1:
        raise ValueError(f"alpha={alpha} mixes in the hard-label loss, which needs targets")
    mask = None if targets is None else targets != -100
    soft = soft_kl(student_logits, teacher_logits, T, mask) * (T * T if scale else 1.0)
    if alpha == 1:
        return soft
    hard = F.cross_entropy(student_logits.float().reshape(-1, student_logits.size(-1)), targets.reshape(-1),
                           ignore_index=-100)
    return alpha * soft + (1 - alpha) * hard


def hidden_cosine_loss(student_h: torch.Tensor, teacher_h: torch.Tensor,
                       mask: torch.Tensor | None = None) -> torch.Tensor:
    """``1 - cos(student_h, teacher_h)`` averaged over positions ``(..., C)`` (DistilBERT's
    cosine embedding loss); the widths must match. 0 when the two point the same way."""
    if student_h.shape != teacher_h.shape:
        raise ValueError(f"cosine matching needs equal shapes, got {tuple(student_h.shape)} and "
                         f"{tuple(teacher_h.shape)}: use a HiddenProjector and hidden_mse_loss")
    loss = 1 - F.cosine_similarity(student_h.float(), teacher_h.float(), dim=-1)
    return loss[mask].mean() if mask is not None else loss.mean()


class HiddenProjector(nn.Module):
    """A linear map from the student's width to the teacher's (trained with the student), so
    hidden states of different widths can be compared (FitNets' regressor)."""

    def __init__(self, student_width: int, teacher_width: int):
        super().__init__()
        self.proj = nn.Linear(student_width, teacher_width)

    def forward(self, student_h: torch.Tensor) -> torch.Tensor:
        return self.proj(student_h)


def hidden_mse_loss(student_h: torch.Tensor, teacher_h: torch.Tensor, projector: HiddenProjector | None = None,
                    mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error between the (projected) student hidden states and the teacher's,
    averaged over positions and features (TinyBERT's hidden-state loss)."""
    s = projector(student_h) if projector is not None else student_h
    if s.shape != teacher_h.shape:
        raise ValueError(f"after projection the student is {tuple(s.shape)}, the teacher {tuple(teacher_h.shape)}")
    err = ((s.float() - teacher_h.float()) ** 2).mean(-1)
    return err[mask].mean() if mask is not None else err.mean()


def student_from_teacher(teacher: nn.Module, layers: Sequence[int] | None = None) -> nn.Module:
    """A copy of ``teacher`` (a GPT or BERT: a ``cfg`` with ``n_layer`` and a ``blocks`` list)
    keeping only the blocks in ``layers`` (default: every other one, 0, 2, 4, ..., as
    DistilBERT), with every other weight (embeddings, final norm, heads) copied as is."""
    n = len(teacher.blocks)
    layers = list(range(0, n, 2)) if layers is None else list(layers)
    if not layers or any(not 0 <= i < n for i in layers) or len(set(layers)) != len(layers):
        raise ValueError(f"layers must be distinct block indices in [0, {n}), got {layers}")
    if getattr(teacher.cfg, "n_layer", n) != n:
        raise ValueError("the teacher shares blocks across layers (ALBERT): pick layers of an unshared model")
    student = copy.deepcopy(teacher)
    student.blocks = nn.ModuleList(student.blocks[i] for i in layers)
    student.cfg = dataclasses.replace(teacher.cfg, n_layer=len(layers))
    for p in student.parameters():                               # a frozen teacher gives a trainable student
        p.requires_grad_(True)
    return student.train()


class TeacherTargets:
    """A transfer set with the teacher's logits computed once ("offline" distillation): the
    token stream ``ids`` cut into non-overlapping windows of ``seq_len``, each stored with the
    teacher's logits (float16). ``batch`` draws random windows like a
    :class:`textbook_lm.train.TokenStream` and returns ``(x, (y, teacher_logits))``, which
    :class:`Distiller` reads instead of running the teacher at every step."""

    def __init__(self, ids, teacher: nn.Module, seq_len: int, batch_size: int = 64):
        ids = torch.as_tensor(ids, dtype=torch.long).flatten()
        n = (len(ids) - 1) // seq_len
        if n < 1:
            raise ValueError(f"a stream of {len(ids)} tokens holds no window of {seq_len} + 1 tokens")
        idx = torch.arange(n)[:, None] * seq_len + torch.arange(seq_len)
        self.x, self.y, self.seq_len = ids[idx], ids[idx + 1], seq_len
        dev = next(teacher.parameters()).device
        was_training = teacher.training
        teacher.eval()
        with torch.no_grad():
            self.logits = torch.cat([teacher(self.x[i:i + batch_size].to(dev)).half().cpu()
                                     for i in range(0, n, batch_size)])
        teacher.train(was_training)

    def __len__(self) -> int:
        return self.x.numel() + 1

    def batch(self, batch_size: int, seq_len: int, mode: str = "random", generator: torch.Generator | None = None):
        if seq_len != self.seq_len or mode != "random":
            raise ValueError(f"these targets are random windows of {self.seq_len} tokens; asked for "
                             f"{mode!r} windows of {seq_len}")
        i = torch.randint(0, len(self.x), (batch_size,), generator=generator)
        return self.x[i], (self.y[i], self.logits[i])


class Distiller(nn.Module):
    """The student, trained on :func:`kd_loss` against a frozen teacher. Its ``loss(x, y)``
    (what :func:`textbook_lm.train.train` calls) is the distillation loss in training mode and
    the student's own next-token loss in eval mode, so the loop's validation loss is the
    student's. The teacher is held outside the module tree: the optimiser never sees it."""

    def __init__(self, student: nn.Module, teacher: nn.Module, T: float = 2.0, alpha: float = 0.5,
                 scale: bool = True):
        super().__init__()
        check_number("T", T, lambda v: v > 0, "> 0")
        check_number("alpha", alpha, lambda v: 0 <= v <= 1, "in [0, 1]")
        self.student, self.T, self.alpha, self.scale = student, T, alpha, scale
        self._teacher = [teacher.eval()]                         # a list: not a registered submodule
        for p in teacher.parameters():
            p.requires_grad_(False)

    @property
    def teacher(self) -> nn.Module:
        return self._teacher[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.student(x)

    def loss(self, x: torch.Tensor, y) -> torch.Tensor:
        """``y``: the targets, or ``(targets, teacher logits)`` from :class:`TeacherTargets`."""
        y, teacher_logits = y if isinstance(y, (tuple, list)) else (y, None)
        logits = self.student(x)
        if not self.training or self.alpha == 0:          # the student's own next-token loss
            return F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1), ignore_index=-100)
        if teacher_logits is None:
            with torch.no_grad():
                teacher_logits = self.teacher(x)
        return kd_loss(logits, teacher_logits.float(), y, self.T, self.alpha, self.scale)


class BertDistiller(nn.Module):
    """DistilBERT's triple loss for a BERT student: soft targets on the masked positions
    (``w_soft * T^2 * KL``), the masked-LM loss on the same positions (``w_mlm``) and the
    cosine between the student's and the teacher's final hidden states at every token that is
    not padding (``w_cos``; the widths must match). A weight of 0 removes its term (the
    ablation). Batches are :class:`textbook_lm.mlm.MLMData`'s; in eval mode the loss is the
    student's own masked-LM loss."""

    def __init__(self, student: nn.Module, teacher: nn.Module, T: float = 2.0, w_soft: float = 1.0,
                 w_mlm: float = 1.0, w_cos: float = 1.0):
        super().__init__()
        check_number("T", T, lambda v: v > 0, "> 0")
        for name, w in (("w_soft", w_soft), ("w_mlm", w_mlm), ("w_cos", w_cos)):
            check_number(name, w, lambda v: v >= 0, ">= 0")
        if w_soft + w_mlm + w_cos == 0:
            raise ValueError("at least one of w_soft, w_mlm and w_cos must be > 0")
        self.student, self.T, self.w = student, T, (w_soft, w_mlm, w_cos)
        self._teacher = [teacher.eval()]
        for p in teacher.parameters():
            p.requires_grad_(False)

    @property
    def teacher(self) -> nn.Module:
        return self._teacher[0]

    def forward(self, ids: torch.Tensor, segments: torch.Tensor | None = None) -> torch.Tensor:
        return self.student(ids, segments)

    def loss(self, x, y) -> torch.Tensor:
        (ids, segments), (labels, _) = x, y
        h = self.student(ids, segments)
        sel = labels != -100                                       # the masked positions
        logits = self.student.mlm_logits(h[sel])                   # (N, V)
        mlm = F.cross_entropy(logits.float(), labels[sel])
        if not self.training:
            return mlm
        with torch.no_grad():
            h_t = self.teacher(ids, segments)
            teacher_logits = self.teacher.mlm_logits(h_t[sel])
        w_soft, w_mlm, w_cos = self.w
        loss = w_mlm * mlm
        if w_soft:
            loss = loss + w_soft * soft_kl(logits, teacher_logits, self.T) * self.T ** 2
        if w_cos:
            loss = loss + w_cos * hidden_cosine_loss(h, h_t, mask=ids != self.student.cfg.pad_id)
        return loss


class LogitBias(nn.Module):
    """``model`` with ``bias`` added to one token's logit: Hinton et al.'s correction for a
    class the transfer set never showed (the student learnt it from soft targets alone, and
    the hard labels pushed its prior down)."""

    def __init__(self, model: nn.Module, token: int, bias: float):
        super().__init__()
        self.model, self.token, self.bias = model, int(token), float(bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.model(x)
        shift = torch.zeros(logits.size(-1), device=logits.device, dtype=logits.dtype)
        shift[self.token] = self.bias
        return logits + shift
