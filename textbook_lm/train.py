"""One small training loop for every neural language model in the book.

A model maps token ids ``(B, T)`` to next-token logits ``(B, T, V)``; if it has a method
``loss(x, y)`` (e.g. an adaptive softmax), that is used instead of cross-entropy on the
logits. The loop draws batches from a token stream, uses AdamW with linear warmup and
cosine decay, clips the gradient norm, evaluates on held-out data every ``eval_every``
steps, records a :class:`History`, shows a ``tqdm`` progress bar, stops at a step or
wall-clock budget, and saves/resumes checkpoints (loaded with ``weights_only=True``). It is
deterministic on the CPU given a seed: a resumed run continues as if it had never stopped.
"""
from __future__ import annotations

import math
import pickle
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from textbook_lm.checks import check_int, check_number
from textbook_lm.utils import cross_entropy, eval_mode

__all__ = ["TrainConfig", "TokenStream", "History", "lr_at", "train", "evaluate", "save_checkpoint",
           "load_checkpoint", "target_logprobs", "sequence_logprobs", "score_sequences"]

SAMPLING = ("random", "contiguous")


@dataclass
class TrainConfig:
    """Settings of :func:`train`; every field is checked when the config is made."""

    steps: int = 1000               # optimizer steps, >= 1
    batch_size: int = 32            # >= 1
    seq_len: int = 64               # tokens per training window, >= 1
    sampling: str = "random"        # "random" windows, or "contiguous" (the stream read in order)
    lr: float = 3e-3                # peak learning rate, > 0
    weight_decay: float = 0.01      # AdamW decoupled weight decay, >= 0
    betas: tuple[float, float] = (0.9, 0.99)   # AdamW betas, each in [0, 1)
    warmup: int = 100               # steps of linear warmup from lr / warmup to lr, >= 0
    min_lr_ratio: float = 0.1       # cosine decay ends at lr * min_lr_ratio, in [0, 1]
    grad_clip: float | None = 1.0   # max global gradient norm, > 0 (None: no clipping)
    eval_every: int = 100           # evaluate (and checkpoint) every this many steps, >= 1
    eval_batches: int | None = 20   # at most this many validation windows (0 or None: all)
    max_seconds: float | None = None   # wall-clock budget, >= 0 (None: none)
    stop_after: int | None = None   # stop after this many steps, keeping the schedule of ``steps``
    seed: int = 0                   # of the batch sampler, >= 0

    def __post_init__(self):
        if self.sampling not in SAMPLING:
            raise ValueError(f"sampling must be 'random' or 'contiguous', got {self.sampling!r}")
        for name in ("steps", "batch_size", "seq_len", "eval_every") + (("stop_after",) if self.stop_after is not None else ()):
            check_int(name, getattr(self, name), 1)
        for name in ("warmup", "seed") + (("eval_batches",) if self.eval_batches is not None else ()):
            check_int(name, getattr(self, name), 0)
        check_number("lr", self.lr, lambda v: 0 < v < math.inf, "a finite number > 0")
        check_number("weight_decay", self.weight_decay, lambda v: 0 <= v < math.inf, "a finite number >= 0")
        check_number("min_lr_ratio", self.min_lr_ratio, lambda v: 0 <= v <= 1, "in [0, 1] (1: constant after warmup)")
        if self.grad_clip is not None:
            check_number("grad_clip", self.grad_clip, lambda v: v > 0, "> 0 (or None: no clipping)")
        if self.max_seconds is not None:
            check_number("max_seconds", self.max_seconds, lambda v: v >= 0, ">= 0 (or None: no budget)")
        if isinstance(self.betas, (str, bytes)) or len(self.betas) != 2:
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas!r}")
        self.betas = tuple(check_number("betas", b, lambda v: 0 <= v < 1, "in [0, 1)") for b in self.betas)


def _as_ids(ids, what: str = "ids") -> torch.Tensor:
    """Token ids as a long tensor; floats, booleans and strings are refused, not cast."""
    if isinstance(ids, (str, bytes)):
        raise TypeError(f"{what} must be token ids, not a string: encode it with a tokenizer first")
    try:
        t = torch.as_tensor(ids) if len(ids) else torch.zeros(0, dtype=torch.long)
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(f"{what} must be a sequence of integer token ids: {err}") from None
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise TypeError(f"{what} must be integer token ids, got dtype {t.dtype}")
    t = t.long()
    if t.numel() and t.min() < 0:
        raise ValueError(f"{what} must be token ids >= 0, got {t.min().item()}")
    return t


class TokenStream:
    """A 1-D tensor of token ids (ints >= 0, at least 2), cut into (input, target) batches;
    targets are inputs shifted by one."""

    def __init__(self, ids, name: str = ""):
        self.ids = _as_ids(ids, "a token stream").flatten()
        self.name = name
        if len(self.ids) < 2:
            raise ValueError(f"a token stream needs at least 2 tokens, got {len(self.ids)}")
        self._cursor = 0

    def __len__(self) -> int:
        return len(self.ids)

    def batch(self, batch_size: int, seq_len: int, mode: str = "random",
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, y)`` of shape (B, T). Random: windows at random offsets. Contiguous: the stream
        split into ``batch_size`` equal lanes, read ``seq_len`` tokens at a time, wrapping around.
        A window longer than the stream is shortened to ``len(stream) - 1``."""
        check_int("batch_size", batch_size, 1)
        check_int("seq_len", seq_len, 1)
        if mode not in SAMPLING:
            raise ValueError(f"mode must be 'random' or 'contiguous', got {mode!r}")
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
        """Non-overlapping (x, y) windows of ``seq_len`` (>= 1) covering the stream in order (for
        deterministic evaluation); at most ``max_windows`` of them (0 or None: all)."""
        check_int("seq_len", seq_len, 1)
        if max_windows is not None:
            check_int("max_windows", max_windows, 0)
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
        """Train (moving average over ``smooth`` >= 1 steps) and validation loss, nats/token."""
        from textbook_lm import plot       # here, so that importing train does not import matplotlib

        check_int("smooth", smooth, 1)
        if not self.train_loss:
            raise ValueError("nothing to plot: this history has no training steps yet")
        k = min(smooth, len(self.train_loss))
        avg = np.convolve(self.train_loss, np.ones(k) / k, mode="valid")           # moving average
        return plot.training_curves(self.step[k - 1:], avg.tolist(), self.val_loss or None,
                                    val_steps=self.val_step or None, tokens_per_step=self.tokens_per_step or None,
                                    title=title)

    def state(self) -> dict:
        return asdict(self)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate at ``step`` (0-based): linear warmup, then cosine decay to ``lr * min_lr_ratio``."""
    if not isinstance(cfg, TrainConfig):
        raise TypeError(f"cfg must be a TrainConfig, got {type(cfg).__name__}")
    check_int("step", step, 0)
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
    return cross_entropy(logits[0] if isinstance(logits, tuple) else logits, y)


def _device(model: nn.Module, data=None, method: str = "") -> torch.device:
    """The device of ``model``'s parameters; checks that ``data`` has the ``method`` it needs."""
    if not isinstance(model, nn.Module) or next(model.parameters(), None) is None:
        raise TypeError(f"model must be a torch.nn.Module with parameters, got {type(model).__name__}")
    if method and not callable(getattr(data, method, None)):
        raise TypeError(f"data must be a TokenStream (or have {method}() like seq2seq.PairData), got "
                        f"{type(data).__name__}")
    return next(model.parameters()).device


@torch.no_grad()
def evaluate(model: nn.Module, data: TokenStream, seq_len: int = 64, max_windows: int | None = None) -> float:
    """Mean loss in nats per token over non-overlapping windows of ``data`` (deterministic).

    ``data`` is a :class:`TokenStream` or anything with the same ``windows`` method (e.g.
    ``seq2seq.PairData``); target positions equal to -100 are not counted.
    """
    dev, total, count = _device(model, data, "windows"), 0.0, 0
    with eval_mode(model):
        for x, y in data.windows(seq_len, max_windows):
            n = _n_targets(y)
            total += _loss(model, _to(x, dev), _to(y, dev)).item() * n
            count += n
    if count == 0:
        raise ValueError("no target to score: every target position is -100 (or there is no window)")
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
    state["torch_rng"] = torch.get_rng_state()     # dropout and other global draws (CPU)
    if (dev := _device(model)).type == "cuda":      # dropout on a GPU draws from the device's generator
        state["cuda_rng"] = torch.cuda.get_rng_state(dev)
    tmp = Path(str(path) + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def load_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint into ``model`` (and ``optimizer``) with ``weights_only=True``; returns the raw state.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` for one that is not a
    checkpoint written by :func:`save_checkpoint`.
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, ValueError) as err:
        raise ValueError(f"{path} is not a readable checkpoint (truncated or corrupted?): {err}") from None
    if not isinstance(state, dict) or "model" not in state:
        raise ValueError(f"{path} is not a checkpoint written by save_checkpoint: it has no 'model' state")
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
    cfg = TrainConfig() if cfg is None else cfg
    if not isinstance(cfg, TrainConfig):
        raise TypeError(f"cfg must be a TrainConfig, got {type(cfg).__name__}")
    dev = _device(model, train_data, "batch")
    if val_data is not None:
        _device(model, val_data, "windows")
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=cfg.betas)
    gen = torch.Generator().manual_seed(cfg.seed)
    history, start = History(tokens_per_step=cfg.batch_size * cfg.seq_len), 0
    if checkpoint is not None and resume and Path(checkpoint).is_file():
        # Loaded on the CPU: the RNG states must be CPU tensors (the batch generator is a CPU
        # generator); load_state_dict copies weights and optimizer state to the model's device.
        state = load_checkpoint(checkpoint, model, opt, map_location="cpu")
        start = state["step"]
        if state.get("history"):
            history = History(**state["history"])
        for key, restore in (("rng", gen.set_state), ("torch_rng", torch.set_rng_state)):
            if key in state:
                restore(state[key].cpu())
        if "cuda_rng" in state and dev.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"].cpu(), dev)
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
        out_of_time = cfg.max_seconds is not None and history.seconds >= cfg.max_seconds
        last = step + 1 in (cfg.steps, cfg.stop_after) or out_of_time
        if val_data is not None and ((step + 1) % cfg.eval_every == 0 or last):
            history.val_step.append(step + 1)
            history.val_loss.append(evaluate(model, val_data, cfg.seq_len, cfg.eval_batches))
            if metric is not None:
                with eval_mode(model), torch.no_grad():
                    history.val_metric.append(float(metric(model)))
            bar.set_postfix(train=f"{loss.item():.3f}", val=f"{history.val_loss[-1]:.3f}")
            snapshot(step + 1)
        if last:
            break
    snapshot(step + 1)
    bar.close()
    return history


def target_logprobs(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """log p(y[b, t] | x[b, :t+1]) for every position, shape (B, T), for any model of the book.
    ``x`` and ``y`` are integer token ids of the same shape (B, T); ``y`` in ``[0, V)``."""
    if x.shape != y.shape:
        raise ValueError(f"x {tuple(x.shape)} and y {tuple(y.shape)} must have the same shape (B, T)")
    if hasattr(model, "target_logprobs"):
        return model.target_logprobs(x, y)
    out = model(x)
    logits = out[0] if isinstance(out, tuple) else out
    if y.numel() and (y.min() < 0 or y.max() >= logits.size(-1)):
        raise ValueError(f"targets must be token ids in [0, {logits.size(-1)}), got {y.min().item()}..{y.max().item()}")
    return F.log_softmax(logits.float(), -1).gather(-1, y[..., None]).squeeze(-1)


@torch.no_grad()
def sequence_logprobs(model: nn.Module, sequences: list[list[int]], start_id: int, batch_size: int = 64):
    """Total natural-log probability of each token-id sequence under the book's convention
    (:mod:`textbook_lm.metrics`): each sequence is read from a fresh state that starts with
    ``start_id`` (the end-of-sequence token doubles as the start), and every token plus one
    final ``start_id`` is predicted. Returns a float64 NumPy array, one value per sequence.

    ``sequences`` is a non-empty list of lists of token ids (ints >= 0; a string is refused).
    """
    dev, start_id, batch_size = _device(model), check_int("start_id", start_id, 0), check_int("batch_size", batch_size, 1)
    if not isinstance(sequences, (list, tuple)):
        raise TypeError(f"sequences must be a list of token-id lists, got {type(sequences).__name__}")
    if not sequences:
        raise ValueError("sequences is empty: there is nothing to score")
    seqs = [_as_ids(s, f"sequences[{i}]").flatten() for i, s in enumerate(sequences)]
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    out = np.zeros(len(seqs))
    with eval_mode(model):
        for k in range(0, len(order), batch_size):
            rows = order[k:k + batch_size]
            T = max(len(seqs[i]) for i in rows) + 1
            x = torch.full((len(rows), T), start_id, dtype=torch.long)
            y, mask = x.clone(), torch.zeros(len(rows), T, dtype=torch.bool)
            for r, i in enumerate(rows):
                n = len(seqs[i])
                x[r, 1:n + 1], y[r, :n], mask[r, :n + 1] = seqs[i], seqs[i], True
            lp = target_logprobs(model, x.to(dev), y.to(dev)).cpu().double()   # float64 on the CPU (not on MPS)
            out[rows] = (lp * mask).sum(1).numpy()
    return out


def score_sequences(model: nn.Module, sequences: list[list[int]], start_id: int, batch_size: int = 64):
    """:func:`sequence_logprobs` summed into a ``metrics.Score`` (tokens = lengths + 1 each)."""
    from textbook_lm import metrics

    lp = sequence_logprobs(model, sequences, start_id, batch_size)       # Score refuses a NaN total
    return metrics.Score(float(-lp.sum()), sum(len(s) + 1 for s in sequences))
