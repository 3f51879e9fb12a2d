"""From GPT to ChatGPT (Chapter 10): supervised fine-tuning, a reward model, PPO and DPO.

Every function here works on one layout. A batch is a tensor of token ids ``ids (B, T)``,
each row a prompt followed by a response and right-padded, and a boolean ``response (B, T)``
that is True at the response's tokens (those the policy wrote, up to and including its end
token). A causal model predicts token ``t`` from the tokens before it, so the
log-probability of token ``t`` is read from the logits at position ``t - 1``.

* SFT: next-token loss on the response only (``mask_prompt=False`` also trains on the prompt).
* Reward model: a GPT body with a scalar head on the last token, trained with the
  Bradley-Terry loss ``-log sigmoid(r(chosen) - r(rejected))`` (Ouyang et al., 2022).
* PPO (Schulman et al., 2017) as used for language models (Ziegler et al., 2019; Ouyang et
  al., 2022): the reward model's score at the last token, a per-token KL penalty to the frozen
  reference (SFT) model, a value head, GAE, the clipped objective.
* DPO (Rafailov et al., 2023): the same preferences without a reward model or sampling,
  ``-log sigmoid(beta * [(log pi - log ref)(chosen) - (log pi - log ref)(rejected)])``.
* Best-of-n: sample n responses and keep the one the reward model likes best.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from textbook_lm import hub
from textbook_lm.checks import check_int, check_number
from textbook_lm.generate import generate
from textbook_lm.gpt import GPT, GPTConfig
from textbook_lm.train import target_logprobs

__all__ = ["make_batch", "token_logprobs", "sequence_logprob", "sft_loss", "RewardModel", "bradley_terry_loss",
           "dpo_loss", "token_kl", "sample", "best_of_n", "PolicyValue", "gae", "ppo_loss", "PPOConfig", "ppo_round"]


def make_batch(prompts: Sequence[Sequence[int]], responses: Sequence[Sequence[int]], pad: int = 0,
               device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ``ids (B, T)`` of prompt + response and the ``response (B, T)`` mask."""
    if len(prompts) != len(responses) or not prompts:
        raise ValueError(f"need as many responses as prompts (>= 1), got {len(prompts)} and {len(responses)}")
    T = max(len(p) + len(r) for p, r in zip(prompts, responses))
    ids = torch.full((len(prompts), T), pad, dtype=torch.long)
    resp = torch.zeros(len(prompts), T, dtype=torch.bool)
    for b, (p, r) in enumerate(zip(prompts, responses)):
        if not p:
            raise ValueError(f"prompt {b} is empty: the first token is never predicted, so a prompt needs >= 1")
        ids[b, :len(p) + len(r)] = torch.tensor([*p, *r])
        resp[b, len(p):len(p) + len(r)] = True
    return ids.to(device), resp.to(device)


def token_logprobs(model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """``lp (B, T)``: ``lp[:, t] = log p(ids[:, t] | ids[:, :t])`` for t >= 1; ``lp[:, 0] = 0``."""
    return F.pad(target_logprobs(model, ids[:, :-1], ids[:, 1:]), (1, 0))  # (B, T)


def _logprobs_of(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """:func:`token_logprobs` from logits already computed on ``ids[:, :-1]``."""
    return F.pad(F.log_softmax(logits.float(), -1).gather(-1, ids[:, 1:, None]).squeeze(-1), (1, 0))


def sequence_logprob(model: nn.Module, ids: torch.Tensor, response: torch.Tensor) -> torch.Tensor:
    """``log pi(response | prompt)`` per row ``(B,)``, in nats: the sum over response tokens."""
    return (token_logprobs(model, ids) * response).sum(1)


def sft_loss(model: nn.Module, ids: torch.Tensor, response: torch.Tensor, mask_prompt: bool = True,
             pad: int = 0) -> torch.Tensor:
    """Mean next-token loss (nats per token) over the response tokens, or with
    ``mask_prompt=False`` over every non-padding token after the first (prompt included)."""
    counted = response if mask_prompt else (ids != pad)
    counted = counted.clone()
    counted[:, 0] = False                                                   # nothing predicts token 0
    if not counted.any():
        raise ValueError("no token to train on: the response mask is empty")
    return -(token_logprobs(model, ids) * counted).sum() / counted.sum()


class RewardModel(nn.Module):
    """A GPT body with a scalar head: ``forward(ids (B, T), lengths (B,)) -> rewards (B,)``,
    read at each row's last real token. Built from a copy of a trained GPT (InstructGPT
    starts from the SFT model) or, to load one, from a ``GPTConfig``."""

    def __init__(self, body: GPT | GPTConfig):
        super().__init__()
        self.body = GPT(body) if isinstance(body, GPTConfig) else copy.deepcopy(body)
        self.cfg = self.body.cfg
        self.head = nn.Linear(self.cfg.n_embd, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        h = self.body.features(ids)                                         # (B, T, C)
        last = h[torch.arange(len(ids), device=ids.device), lengths - 1]    # (B, C)
        return self.head(last).squeeze(-1)                                  # (B,)


hub.register_model(RewardModel, GPTConfig)


def bradley_terry_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor) -> torch.Tensor:
    """``-log sigmoid(r_chosen - r_rejected)``, averaged: the negative log-likelihood of the
    preferences under the Bradley-Terry model ``P(a > b) = sigmoid(r(a) - r(b))``."""
    return -F.logsigmoid(r_chosen - r_rejected).mean()


def dpo_loss(pi_chosen: torch.Tensor, pi_rejected: torch.Tensor, ref_chosen: torch.Tensor,
             ref_rejected: torch.Tensor, beta: float = 0.1) -> tuple[torch.Tensor, dict[str, float]]:
    """DPO's loss from sequence log-probabilities ``(B,)`` under the policy and the frozen
    reference. Returns the mean loss and what is logged: the implicit rewards
    ``beta * (log pi - log ref)`` of chosen and rejected responses, their margin and the share
    of pairs where the chosen one's is higher. With ``pi == ref`` the loss is ``ln 2``."""
    check_number("beta", beta, lambda v: v > 0, "> 0")
    chosen, rejected = beta * (pi_chosen - ref_chosen), beta * (pi_rejected - ref_rejected)
    loss = -F.logsigmoid(chosen - rejected).mean()
    margin = (chosen - rejected).detach()
    return loss, {"loss": loss.item(), "chosen_reward": chosen.mean().item(),
                  "rejected_reward": rejected.mean().item(), "margin": margin.mean().item(),
                  "accuracy": (margin > 0).float().mean().item()}


def token_kl(logits: torch.Tensor, ref_logits: torch.Tensor) -> torch.Tensor:
    """Exact ``KL(pi || ref)`` of the next-token distributions at every position ``(B, T)``
    from logits ``(B, T, V)``: always >= 0, and 0 where the two agree."""
    lp, lr = F.log_softmax(logits.float(), -1), F.log_softmax(ref_logits.float(), -1)
    return (lp.exp() * (lp - lr)).sum(-1).clamp(min=0)


@torch.no_grad()
def sample(model: nn.Module, prompts: Sequence[Sequence[int]], max_new_tokens: int, eos: int,
           temperature: float = 1.0, seed: int | None = None) -> list[list[int]]:
    """One response per prompt (token ids, ending in ``eos`` unless ``max_new_tokens`` ran
    out). Prompts of the same length are generated together, so no padding is needed."""
    out: list[list[int] | None] = [None] * len(prompts)
    by_len: dict[int, list[int]] = {}
    for i, p in enumerate(prompts):
        by_len.setdefault(len(p), []).append(i)
    for k, (n, rows) in enumerate(sorted(by_len.items())):
        x = torch.tensor([list(prompts[i]) for i in rows])
        y = generate(model, x, max_new_tokens, temperature=temperature, stop_tokens=[eos],
                     seed=None if seed is None else seed + k)[:, n:].tolist()
        for i, r in zip(rows, y):
            out[i] = r[:r.index(eos) + 1] if eos in r else r
    return out


@torch.no_grad()
def best_of_n(model: nn.Module, score: Callable[[list[list[int]], list[list[int]]], torch.Tensor],
              prompts: Sequence[Sequence[int]], n: int, max_new_tokens: int, eos: int,
              temperature: float = 1.0, seed: int = 0) -> list[list[int]]:
    """For each prompt, the one of ``n`` sampled responses with the highest ``score(prompts,
    responses)`` (e.g. a reward model's)."""
    check_int("n", n, 1)
    cands = [sample(model, prompts, max_new_tokens, eos, temperature, seed=seed + 1000 * j) for j in range(n)]
    scores = torch.stack([torch.as_tensor(score(list(prompts), c), dtype=torch.float) for c in cands])  # (n, B)
    best = scores.argmax(0)
    return [cands[int(j)][b] for b, j in enumerate(best)]


class PolicyValue(nn.Module):
    """The PPO actor-critic: a GPT policy and a value head reading the same hidden states,
    ``forward(ids) -> (logits (B, T, V), values (B, T))``."""

    def __init__(self, policy: nn.Module):
        super().__init__()
        self.policy = policy
        self.value = nn.Linear(policy.cfg.n_embd, 1)
        nn.init.zeros_(self.value.weight)
        nn.init.zeros_(self.value.bias)

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.policy.features(ids)                                       # (B, T, C)
        return self.policy.lm_head(h), self.value(h).squeeze(-1)


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0,
        lam: float = 0.95) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation (Schulman et al., 2016) over the masked steps of each
    row ``(B, T)``: ``delta_t = r_t + gamma V_{t+1} - V_t`` (``V`` after the last step is 0),
    ``A_t = delta_t + gamma lam A_{t+1}``. Returns advantages and returns ``A + V`` (0 off the mask)."""
    m = mask.float()
    adv = torch.zeros_like(rewards)
    nxt_a, nxt_v = torch.zeros_like(rewards[:, 0]), torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.size(1))):
        delta = rewards[:, t] + gamma * nxt_v - values[:, t]
        a = delta + gamma * lam * nxt_a
        adv[:, t] = a * m[:, t]
        nxt_a = torch.where(mask[:, t], a, nxt_a)                           # skip unmasked steps
        nxt_v = torch.where(mask[:, t], values[:, t], nxt_v)
    return adv, (adv + values) * m


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (x * mask).sum() / mask.sum().clamp(min=1)


def ppo_loss(logp: torch.Tensor, old_logp: torch.Tensor, adv: torch.Tensor, values: torch.Tensor,
             old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor, clip: float = 0.2,
             vf_clip: float = 0.2, vf_coef: float = 0.5) -> tuple[torch.Tensor, dict[str, float]]:
    """PPO's clipped loss over the masked tokens ``(B, T)``: the policy term
    ``max(-A r, -A clip(r, 1 - eps, 1 + eps))`` with ``r = exp(logp - old_logp)``, plus
    ``vf_coef`` times the clipped value loss. Logged: both terms, the share of tokens whose
    ratio was clipped, the mean ratio and the approximate KL to the old policy."""
    m = mask.float()
    ratio = torch.exp(logp - old_logp)
    pg = torch.max(-adv * ratio, -adv * ratio.clamp(1 - clip, 1 + clip))
    v_clipped = old_values + (values - old_values).clamp(-vf_clip, vf_clip)
    vf = 0.5 * torch.max((values - returns) ** 2, (v_clipped - returns) ** 2)
    policy_loss, value_loss = _masked_mean(pg, m), _masked_mean(vf, m)
    with torch.no_grad():
        stats = {"policy_loss": policy_loss.item(), "value_loss": value_loss.item(),
                 "clip_fraction": _masked_mean(((ratio - 1).abs() > clip).float(), m).item(),
                 "ratio": _masked_mean(ratio, m).item(),
                 "approx_kl": _masked_mean((ratio - 1) - torch.log(ratio), m).item()}
    return policy_loss + vf_coef * value_loss, stats


@dataclass
class PPOConfig:
    """Settings of :func:`ppo_round`."""

    kl_coef: float = 0.1            # beta of the per-token KL penalty to the reference
    clip: float = 0.2               # epsilon of the clipped ratio
    vf_coef: float = 0.5            # weight of the value loss
    gamma: float = 1.0
    lam: float = 0.95
    epochs: int = 2                 # passes over each batch of rollouts
    minibatch: int = 32
    max_new_tokens: int = 12
    temperature: float = 1.0

    def __post_init__(self):
        for name in ("kl_coef", "clip", "vf_coef"):
            check_number(name, getattr(self, name), lambda v: v >= 0, ">= 0")
        for name in ("epochs", "minibatch", "max_new_tokens"):
            check_int(name, getattr(self, name), 1)


def ppo_round(model: PolicyValue, ref: nn.Module, score: Callable[[list[list[int]], list[list[int]]], torch.Tensor],
              prompts: Sequence[Sequence[int]], opt: torch.optim.Optimizer, cfg: PPOConfig, eos: int,
              seed: int = 0) -> dict[str, float]:
    """One PPO iteration: sample a response to every prompt, score it (``score(prompts,
    responses) -> (B,)``, e.g. the reward model), add the per-token KL penalty to ``ref``,
    estimate advantages with GAE, then ``cfg.epochs`` passes of clipped updates in minibatches.
    Returns the mean score, the KL to the reference (nats per response), the PPO statistics
    averaged over minibatches, and the first minibatch's ratio and clip fraction (1 and 0:
    it is scored by the very policy that sampled it)."""
    dev = next(model.parameters()).device
    model.eval()
    responses = sample(model.policy, prompts, cfg.max_new_tokens, eos, cfg.temperature, seed=seed)
    ids, resp = make_batch(prompts, responses, device=dev)
    with torch.no_grad():
        logits, values = model(ids[:, :-1])
        ref_logits = ref(ids[:, :-1])
        old_logp, ref_logp = _logprobs_of(logits, ids), _logprobs_of(ref_logits, ids)
        kl = (F.pad(token_kl(logits, ref_logits), (1, 0)) * resp).sum(1)  # exact KL per response
        values = F.pad(values, (1, 0))                                     # V at t: value before token t
        scores = torch.as_tensor(score(list(prompts), responses), dtype=torch.float, device=dev)
        rewards = -cfg.kl_coef * (old_logp - ref_logp) * resp                # (B, T) per-token penalty
        last = resp.long().cumsum(1).argmax(1)                              # each row's last response token
        rewards[torch.arange(len(ids)), last] += scores
        adv, returns = gae(rewards, values, resp, cfg.gamma, cfg.lam)
        mean, std = adv[resp].mean(), adv[resp].std().clamp(min=1e-8)
        adv = (adv - mean) / std * resp                                      # whitened over the batch
    model.train()
    logs: list[dict[str, float]] = []
    g = torch.Generator().manual_seed(seed)
    for _ in range(cfg.epochs):
        for idx in torch.randperm(len(ids), generator=g).split(cfg.minibatch):
            idx = idx.to(dev)
            lg, v = model(ids[idx, :-1])
            lp = _logprobs_of(lg, ids[idx])
            loss, st = ppo_loss(lp, old_logp[idx], adv[idx], F.pad(v, (1, 0)), values[idx], returns[idx],
                                resp[idx], cfg.clip, cfg.clip, cfg.vf_coef)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            logs.append(st)
    model.eval()
    out = {k: sum(d[k] for d in logs) / len(logs) for k in logs[0]}
    out.update(score=scores.mean().item(), kl=kl.mean().item(),
               length=resp.sum(1).float().mean().item(), first_ratio=logs[0]["ratio"],
               first_clip_fraction=logs[0]["clip_fraction"])
    return out
