"""One small training loop for every neural language model in the book.

A model maps token ids ``(B, T)`` to next-token logits ``(B, T, V)``; if it has a method
``loss(x, y)`` (e.g. an adaptive softmax), that is used instead of cross-entropy on the
logits. The loop draws batches from a token stream, uses AdamW with linear warmup and
cosine decay, clips the gradient norm, evaluates on held-out data every ``eval_every``
steps, records a :class:`History`, shows a ``tqdm`` progress bar, stops at a step or
wall-clock budget, and saves/resumes checkpoints (loaded with ``weights_only=True``).
Given a seed it is deterministic on the CPU: resuming from a checkpoint continues exactly
as if training had never stopped.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from textbook_lm import plot

__all__ = ["TrainConfig", "TokenStream", "History", "lr_at", "train", "evaluate", "save_checkpoint", "score_sequences",
           "sequence_logprobs", "target_logprobs",
           "load_checkpoint"]


@dataclass
class TrainConfig:
    steps: int = 1000
    batch_size: int = 32
    seq_len: int = 64
    sampling: str = "random"        # "random" windows, or "contiguous" (the stream read in order)
    lr: float = 3e-3
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.99)
    warmup: int = 100               # steps of linear warmup from lr / warmup to lr
    min_lr_ratio: float = 0.1       # cosine decay ends at lr * min_lr_ratio
    grad_clip: float | None = 1.0   # max global gradient norm (None: no clipping)
    eval_every: int = 100
    eval_batches: int = 20
    max_seconds: float | None = None
    seed: int = 0

    def __post_init__(self):
        if self.sampling not in ("random", "contiguous"):
            raise ValueError(f"sampling must be 'random' or 'contiguous', got {self.sampling!r}")
        if self.steps < 1 or self.batch_size < 1 or self.seq_len < 1:
            raise ValueError("steps, batch_size and seq_len must be >= 1")


class TokenStream:
    """A 1-D tensor of token ids, cut into (input, target) batches; targets are inputs shifted by one."""

    def __init__(self, ids, name: str = ""):
        self.ids = torch.as_tensor(ids, dtype=torch.long).flatten()
        self.name = name
        if len(self.ids) < 2:
            raise ValueError("a token stream needs at least 2 tokens")
        self._cursor = 0

    def __len__(self) -> int:
        return len(self.ids)

    def batch(self, batch_size: int, seq_len: int, mode: str = "random",
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, y)`` of shape (B, T). Random: windows at random offsets. Contiguous: the stream
        split into ``batch_size`` equal lanes, read ``seq_len`` tokens at a time, wrapping around."""
        T = min(seq_len, len(self.ids) - 1)
        if mode == "random":
            starts = torch.randint(0, len(self.ids) - T, (batch_size,), generator=generator)
        else:
            lane = (len(self.ids) - 1) // batch_size
            if lane < T:
                raise ValueError(f"stream of {len(self.ids)} tokens too short for {batch_size} lanes of {T}")
            if self._cursor + T > lane:
                self._cursor = 0
            starts = torch.arange(batch_size) * lane + self._cursor
            self._cursor += T
        idx = starts[:, None] + torch.arange(T)
        return self.ids[idx], self.ids[idx + 1]

    def windows(self, seq_len: int, max_windows: int | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Non-overlapping (x, y) windows covering the stream in order (for deterministic evaluation)."""
        out = []
        for s in range(0, len(self.ids) - 1, seq_len):
            e = min(s + seq_len, len(self.ids) - 1)
            out.append((self.ids[s:e][None], self.ids[s + 1:e + 1][None]))
            if max_windows and len(out) >= max_windows:
                break
        return out


@dataclass
class History:
    """What happened during training; ``plot()`` draws the curves with a tokens-seen axis."""

    tokens_per_step: int = 0
    step: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    val_step: list[int] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_metric: list[float] = field(default_factory=list)   # from train(..., metric=f), at the same steps
    seconds: float = 0.0

    def plot(self, title: str = "", smooth: int = 10):
        """Train (moving average over ``smooth`` steps) and validation loss, nats/token."""
        k = max(1, min(smooth, len(self.train_loss)))
        t = torch.tensor(self.train_loss, dtype=torch.float64)
        avg = (t.cumsum(0)[k - 1:] - torch.cat([torch.zeros(1, dtype=torch.float64), t.cumsum(0)[:-k]])) / k
        return plot.training_curves(self.step[k - 1:], avg.tolist(), self.val_loss or None,
                                    val_steps=self.val_step or None, tokens_per_step=self.tokens_per_step or None,
                                    title=title)

    def state(self) -> dict:
        return asdict(self)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate at ``step`` (0-based): linear warmup, then cosine decay to ``lr * min_lr_ratio``."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def _to(x, dev):
    """Move a tensor, or a tuple of tensors (e.g. ``(src, tgt_in)`` of a seq2seq batch), to ``dev``."""
    return tuple(t.to(dev) for t in x) if isinstance(x, (tuple, list)) else x.to(dev)


def _n_targets(y) -> int:
    """Scored targets in a batch: entries of ``y`` (or of its first tensor) that are not -100."""
    return int(((y[0] if isinstance(y, (tuple, list)) else y) != -100).sum())


def _loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood per token, nats (targets equal to -100 are ignored)."""
    if hasattr(model, "loss"):
        return model.loss(x, y)
    logits = model(x)
    logits = logits[0] if isinstance(logits, tuple) else logits
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))


@torch.no_grad()
def evaluate(model: nn.Module, data: TokenStream, seq_len: int = 64, max_windows: int | None = None) -> float:
    """Mean loss in nats per token over non-overlapping windows of ``data`` (deterministic).

    ``data`` is a :class:`TokenStream` or anything with the same ``windows`` method (e.g.
    ``seq2seq.PairData``); target positions equal to -100 are not counted.
    """
    was_training = model.training
    model.eval()
    dev = next(model.parameters()).device
    total, count = 0.0, 0
    for x, y in data.windows(seq_len, max_windows):
        n = _n_targets(y)
        total += _loss(model, _to(x, dev), _to(y, dev)).item() * n
        count += n
    model.train(was_training)
    return total / count


def save_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    history: History | None = None, step: int = 0, config: dict | None = None,
                    generator: torch.Generator | None = None) -> None:
    """Save state dicts, history and config (plain types only, so ``weights_only=True`` can load it)."""
    state = {"model": model.state_dict(), "step": step, "config": config or {},
             "history": history.state() if history else None}
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    if generator is not None:
        state["rng"] = generator.get_state()
    state["torch_rng"] = torch.get_rng_state()     # dropout and other global draws
    tmp = Path(str(path) + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def load_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint into ``model`` (and ``optimizer``) with ``weights_only=True``; returns the raw state."""
    state = torch.load(path, map_location=map_location, weights_only=True)
    model.load_state_dict(state["model"])
    if optimizer is not None and "optimizer" in state:
        optimizer.load_state_dict(state["optimizer"])
    return state


def train(model: nn.Module, train_data: TokenStream, val_data: TokenStream | None = None,
          cfg: TrainConfig | None = None, checkpoint: str | Path | None = None, resume: bool = True,
          progress: bool = True, metric: Callable[[nn.Module], float] | None = None) -> History:
    """Train ``model`` in place and return its :class:`History`.

    ``metric(model)``, if given, is called at every evaluation (model in eval mode, no
    gradients) and recorded in ``history.val_metric`` (e.g. a fine-tuned classifier's accuracy).

    With ``checkpoint``, the state is saved there at every evaluation and at the end, and if
    the file exists (and ``resume``) training continues from it.
    """
    cfg = cfg or TrainConfig()
    dev = next(model.parameters()).device
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=cfg.betas)
    gen = torch.Generator().manual_seed(cfg.seed)
    history, start = History(tokens_per_step=cfg.batch_size * cfg.seq_len), 0
    if checkpoint is not None and resume and Path(checkpoint).is_file():
        state = load_checkpoint(checkpoint, model, opt, map_location=dev)
        start = state["step"]
        if state.get("history"):
            history = History(**state["history"])
        if "rng" in state:
            gen.set_state(state["rng"])
        if "torch_rng" in state:
            torch.set_rng_state(state["torch_rng"])
        if cfg.sampling == "contiguous":      # put the reading position where it was
            T = min(cfg.seq_len, len(train_data) - 1)
            per_pass = max(1, ((len(train_data) - 1) // cfg.batch_size) // T)
            train_data._cursor = (start % per_pass) * T
        if start >= cfg.steps:
            return history

    def snapshot(step):
        if checkpoint is not None:
            save_checkpoint(checkpoint, model, opt, history, step, asdict(cfg), gen)

    model.train()
    t0, elapsed0 = time.perf_counter(), history.seconds
    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, disable=not progress, desc="train")
    step = start
    for step in bar:
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        x, y = train_data.batch(cfg.batch_size, cfg.seq_len, cfg.sampling, gen)
        loss = _loss(model, _to(x, dev), _to(y, dev))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip if cfg.grad_clip else float("inf"))
        opt.step()
        history.step.append(step + 1)
        history.train_loss.append(loss.item())
        history.lr.append(opt.param_groups[0]["lr"])
        history.grad_norm.append(float(norm))
        history.seconds = elapsed0 + time.perf_counter() - t0
        last = step + 1 == cfg.steps or (cfg.max_seconds is not None and history.seconds >= cfg.max_seconds)
        if val_data is not None and ((step + 1) % cfg.eval_every == 0 or last):
            history.val_step.append(step + 1)
            history.val_loss.append(evaluate(model, val_data, cfg.seq_len, cfg.eval_batches))
            if metric is not None:
                model.eval()
                with torch.no_grad():
                    history.val_metric.append(float(metric(model)))
                model.train()
            bar.set_postfix(train=f"{loss.item():.3f}", val=f"{history.val_loss[-1]:.3f}")
            snapshot(step + 1)
        if last:
            break
    snapshot(step + 1)
    bar.close()
    return history


def target_logprobs(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """log p(y[b, t] | x[b, :t+1]) for every position, shape (B, T), for any model of the book."""
    if hasattr(model, "target_logprobs"):
        return model.target_logprobs(x, y)
    out = model(x)
    logits = out[0] if isinstance(out, tuple) else out
    return F.log_softmax(logits.float(), -1).gather(-1, y[..., None]).squeeze(-1)


@torch.no_grad()
def sequence_logprobs(model: nn.Module, sequences: list[list[int]], start_id: int, batch_size: int = 64):
    """Total natural-log probability of each token-id sequence under the book's convention
    (:mod:`textbook_lm.metrics`): each sequence is read from a fresh state that starts with
    ``start_id`` (the end-of-sequence token doubles as the start), and every token plus one
    final ``start_id`` is predicted. Returns a float64 NumPy array, one value per sequence."""
    import numpy as np

    was_training = model.training
    model.eval()
    dev = next(model.parameters()).device
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    out = np.zeros(len(sequences))
    for k in range(0, len(order), batch_size):
        rows = order[k:k + batch_size]
        group = [sequences[i] for i in rows]
        T = max(len(s) for s in group) + 1
        x = torch.full((len(group), T), start_id, dtype=torch.long)
        y = torch.full((len(group), T), start_id, dtype=torch.long)
        mask = torch.zeros(len(group), T, dtype=torch.bool)
        for r, s in enumerate(group):
            x[r, 1:len(s) + 1] = torch.as_tensor(s, dtype=torch.long)
            y[r, :len(s)] = torch.as_tensor(s, dtype=torch.long)
            mask[r, :len(s) + 1] = True
        lp = target_logprobs(model, x.to(dev), y.to(dev)).double().cpu()
        out[rows] = (lp * mask).sum(1).numpy()
    model.train(was_training)
    return out


def score_sequences(model: nn.Module, sequences: list[list[int]], start_id: int, batch_size: int = 64):
    """:func:`sequence_logprobs` summed into a ``metrics.Score`` (tokens = lengths + 1 each)."""
    from textbook_lm import metrics

    lp = sequence_logprobs(model, sequences, start_id, batch_size)
    return metrics.Score(float(-lp.sum()), sum(len(s) + 1 for s in sequences))
