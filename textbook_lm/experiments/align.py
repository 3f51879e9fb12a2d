"""Chapter 10's experiments: a base model, SFT, a reward model, PPO, DPO and best-of-n in the
instruction world (``textbook_lm.data.instruct``), every response scored by its gold judge.

The stages, each a function here (and the shipped models, made by the CLI):

* :func:`pretrain`: a 4-layer GPT on plain documents (facts and tasks as sentences).
* :func:`sft`: the base model fine-tuned on demonstrations, the prompt masked in the loss
  (``mask_prompt=False`` for the ablation). Colour questions in SFT ask about 16 of the 24
  names; the other 8 test whether the answers come from pretraining.
* :func:`preference_pairs` and :func:`train_reward_model`: two SFT samples per prompt, labelled
  by the simulated annotator; the reward model starts from the SFT model.
* :func:`run_ppo`, :func:`run_dpo`, :func:`best_of`: three ways to use the preferences.
"""
from __future__ import annotations

import argparse
import copy
import random
import time

import torch

from textbook_lm import align, hub, prompting
from textbook_lm import seed as seed_all
from textbook_lm import train as tr
from textbook_lm.data import instruct as w
from textbook_lm.experiments import add_output_args, output_dir
from textbook_lm.gpt import GPT, GPTConfig

__all__ = ["MODEL", "PRETRAIN", "SFT", "SFT_NAMES", "HELD_OUT_NAMES", "MAX_NEW", "corpus", "SFTData", "pretrain",
           "sft", "respond", "gold", "bootstrap_interval", "pair_batch", "evaluate", "kl_to", "win_rate",
           "knowledge", "preference_pairs", "train_reward_model",
           "rm_score", "pair_accuracy", "run_dpo", "run_ppo", "best_of", "PAIRS", "HELD_PAIRS", "FEW_PAIRS", "RM_TRAIN",
           "PPO_TRAIN", "DPO_TRAIN", "EVAL", "FRONTIER", "OVEROPT", "held_out", "frontier", "overoptimisation",
           "STAGES", "STUDIES", "PUBLISHED", "BENCHMARK", "demonstrations", "leaderboard_entries", "main"]

MODEL = dict(vocab_size=len(w.VOCAB), block_size=40, n_layer=4, n_head=4, n_embd=64, dropout=0.0, bias=False,
             activation="gelu")
PRETRAIN = dict(steps=3000, batch_size=32, seq_len=40, lr=2e-3, warmup=100, min_lr_ratio=0.1, weight_decay=0.1,
                eval_every=250, eval_batches=64)
SFT = dict(steps=500, batch_size=32, seq_len=40, lr=5e-4, warmup=50, min_lr_ratio=0.1, weight_decay=0.0,
           eval_every=100, eval_batches=128)
SFT_NAMES, HELD_OUT_NAMES = w.NAMES[:16], w.NAMES[16:]
MAX_NEW = 16                 # the longest response: 4 filler words, 5 letters, ".", a closing, <eos> = 15
PAIRS = dict(n=24_000, seed=1, noise=0.2)        # prompts for preference pairs (reward model and DPO)
FEW_PAIRS = dict(n=400, seed=2, noise=0.2)       # a small budget: the over-optimisation study
RM_TRAIN = dict(epochs=2, lr=3e-4, batch=32)
HELD_PAIRS = dict(n=2000, seed=101, noise=0.2)   # held-out pairs: the reward model's accuracy
PPO_TRAIN = dict(rounds=100, kl_coef=0.2, lr=1e-4, prompts_per_round=64)
DPO_TRAIN = dict(beta=1.0, epochs=1, lr=1e-5, batch=32)
EVAL = dict(n=400, seed=99)                      # held-out prompts (all 24 names) for the gold judge
FRONTIER = dict(kl_coefs=(0.02, 0.05, 0.2, 0.5), betas=(0.1, 0.3, 1.0, 3.0))
OVEROPT = dict(rounds=200, kl_coef=0.0, lr=3e-5, track=200, track_every=5, rm_epochs=4, n_max=64)


def corpus(n_docs: int = 60_000, seed: int = 0) -> tuple[tr.TokenStream, tr.TokenStream]:
    """The pretraining text, one long stream of sentences, 95% for training and 5% held out."""
    words = " ".join(w.documents(random.Random(seed), n_docs)).split()
    ids = torch.tensor(w.encode(words))
    cut = int(0.95 * len(ids))
    return tr.TokenStream(ids[:cut], "documents"), tr.TokenStream(ids[cut:], "documents (val)")


class SFTData:
    """Demonstrations as ``(x, y)`` batches for :func:`textbook_lm.train.train`: ``y`` is the
    next token, -100 at the prompt (``mask_prompt``) and at padding, so the loop's loss is
    :func:`textbook_lm.align.sft_loss`."""

    def __init__(self, names: list[str] = SFT_NAMES, mask_prompt: bool = True, seed: int = 0):
        self.names, self.mask_prompt, self.seed = names, mask_prompt, seed

    def _rows(self, rng: random.Random, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        exs = [w.task(rng, names=self.names) for _ in range(n)]
        ids, resp = align.make_batch([w.encode(e.prompt) for e in exs],
                                     [w.encode(w.demonstration(rng, e)) for e in exs], pad=w.PAD)
        keep = resp if self.mask_prompt else ids != w.PAD
        y = torch.where(keep[:, 1:], ids[:, 1:], torch.full_like(ids[:, 1:], -100))
        return ids[:, :-1], y

    def batch(self, batch_size: int, seq_len: int, mode: str = "random",
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self._rows(random.Random(int(torch.randint(0, 2**62, (1,), generator=generator))), batch_size)

    def windows(self, seq_len: int, max_windows: int | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
        x, y = self._rows(random.Random(10_000 + self.seed), max_windows or 256)
        return [(x[i:i + 1], y[i:i + 1]) for i in range(len(x))]


def pretrain(steps: int | None = None, seed: int = 0, progress: bool = False,
             device: str | torch.device | None = None, stop_after: int | None = None) -> tuple[GPT, tr.History]:
    """The base model: next-token prediction on :func:`corpus` (``stop_after``: stop early on
    the full run's schedule, so the first steps are the shipped run's)."""
    seed_all(seed)
    model = GPT(GPTConfig(**MODEL)).to(device or "cpu")
    data, val = corpus(seed=seed)
    cfg = tr.TrainConfig(**{**PRETRAIN, "seed": seed, "stop_after": stop_after, **({"steps": steps} if steps else {})})
    return model.eval(), tr.train(model, data, val, cfg, progress=progress)


def sft(base: GPT, mask_prompt: bool = True, steps: int | None = None, seed: int = 0,
        progress: bool = False) -> tuple[GPT, tr.History]:
    """A copy of ``base`` fine-tuned on demonstrations (:class:`SFTData`)."""
    seed_all(seed)
    model = copy.deepcopy(base)
    data = SFTData(mask_prompt=mask_prompt, seed=seed)
    val = SFTData(mask_prompt=True, seed=seed)          # always scored on the responses only
    cfg = tr.TrainConfig(**{**SFT, "seed": seed, **({"steps": steps} if steps else {})})
    return model.eval(), tr.train(model, data, val, cfg, progress=progress)


def respond(model: GPT, examples: list[w.Example], temperature: float = 1.0, seed: int = 0) -> list[list[str]]:
    """The model's response (words, ``<eos>`` included when it ended) to every example."""
    out = align.sample(model, [w.encode(e.prompt) for e in examples], MAX_NEW, w.EOS, temperature, seed)
    return [w.decode(r) for r in out]


def gold(examples: list[w.Example], responses: list[list[str]]) -> list[w.Score]:
    return [w.judge(e, r) for e, r in zip(examples, responses)]


def bootstrap_interval(values: list[float], n: int = 1000, seed: int = 0) -> tuple[float, float]:
    """A 95% percentile-bootstrap interval for the mean."""
    rng, k = random.Random(seed), len(values)
    means = sorted(sum(rng.choices(values, k=k)) / k for _ in range(n))
    return means[int(0.025 * n)], means[int(0.975 * n) - 1]


def evaluate(model: GPT, examples: list[w.Example], temperature: float = 1.0, seed: int = 0) -> dict:
    """Mean gold score (with a 95% bootstrap interval) and each of its terms, on sampled responses."""
    responses = respond(model, examples, temperature, seed)
    scores = gold(examples, responses)
    totals = [s.total for s in scores]
    out = {k: sum(getattr(s, k) for s in scores) / len(scores) for k in ("correct", "polite", "verbose", "repeat")}
    out.update(gold=sum(totals) / len(totals), interval=bootstrap_interval(totals), responses=responses)
    return out


@torch.no_grad()
def kl_to(policy: GPT, ref: GPT, examples: list[w.Example], responses: list[list[str]]) -> float:
    """Mean KL(policy || ref) per response, in nats: the exact next-token KL summed over the
    response's tokens (``responses`` sampled from ``policy``)."""
    dev = next(policy.parameters()).device
    ids, resp = align.make_batch([w.encode(e.prompt) for e in examples], [w.encode(r) for r in responses],
                                 pad=w.PAD, device=dev)
    kl = align.token_kl(policy(ids[:, :-1]), ref(ids[:, :-1]))            # (B, T-1): for tokens 1..T-1
    return float((kl * resp[:, 1:]).sum(1).mean())


def win_rate(examples: list[w.Example], a: list[list[str]], b: list[list[str]]) -> tuple[float, tuple[float, float]]:
    """Share of examples where the gold judge prefers ``a``'s response to ``b``'s (ties count
    half), with a 95% bootstrap interval."""
    wins = [1.0 if sa > sb else 0.5 if sa == sb else 0.0
            for sa, sb in ((w.judge(e, x).total, w.judge(e, y).total) for e, x, y in zip(examples, a, b))]
    return sum(wins) / len(wins), bootstrap_interval(wins)


@torch.no_grad()
def knowledge(model: GPT, names: list[str], chat: bool = False) -> float:
    """Share of ``names`` whose colour the model gives: as a document (``the colour of bal
    is`` -> most likely next word among the colours) or, with ``chat``, asked as a user."""
    right = 0
    for name in names:
        words = ["<user>", "colour", "of", name, "?", "<bot>"] if chat else ["the", "colour", "of", name, "is"]
        s = prompting.score(model, w.encode(words), [[w.STOI[c]] for c in w.COLOURS])
        right += w.COLOURS[int(s.argmax())] == w.FACTS[name]
    return right / len(names)


def preference_pairs(policy: GPT, n: int, seed: int = 0, noise: float = 0.2) -> list[tuple[w.Example, list[str], list[str]]]:
    """Pairs ``(example, chosen, rejected)`` from ``n`` prompts: two samples of ``policy`` per
    prompt, ordered by the simulated annotator (Bradley-Terry noise ``noise``). A prompt whose
    two samples are the same response gives no pair: there is nothing to compare."""
    exs = w.prompts(n, seed=seed, names=SFT_NAMES)
    a, b = respond(policy, exs, 1.0, seed), respond(policy, exs, 1.0, seed + 1)
    rng = random.Random(seed)
    return [(e, x, y) if w.annotate(rng, e, x, y, noise) else (e, y, x) for e, x, y in zip(exs, a, b) if x != y]


def _minibatches(pairs: list, epochs: int, batch: int, seed: int):
    """``epochs`` passes over ``pairs`` in a fresh random order each, ``batch`` at a time."""
    rng = random.Random(seed)
    for _ in range(epochs):
        order = list(range(len(pairs)))
        rng.shuffle(order)
        for k in range(0, len(order), batch):
            yield [pairs[i] for i in order[k:k + batch]]


def pair_batch(pairs, which: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ids, response mask)`` of the pairs' prompts with their chosen (``which=1``) or
    rejected (``which=2``) responses, right-padded, on ``device``."""
    return align.make_batch([w.encode(p[0].prompt) for p in pairs], [w.encode(p[which]) for p in pairs],
                            pad=w.PAD, device=device)


def rm_score(rm: align.RewardModel, examples: list[w.Example], responses: list[list[str]]) -> torch.Tensor:
    """The reward model's score of every response ``(B,)``."""
    dev = next(rm.parameters()).device
    ids, resp = align.make_batch([w.encode(e.prompt) for e in examples], [w.encode(r) for r in responses],
                                 pad=w.PAD, device=dev)
    with torch.no_grad():
        return rm(ids, (ids != w.PAD).sum(1)).cpu()


def _scorer(rm: align.RewardModel):
    """``rm`` as the ``score(prompts, responses) -> (B,)`` of token ids that ``align`` takes."""
    return lambda ps, rs: rm_score(rm, [w.from_prompt(w.decode(p)) for p in ps], [w.decode(r) for r in rs])


def pair_accuracy(rm: align.RewardModel, pairs) -> float:
    """Share of pairs where the reward model scores the annotator's choice higher (a tie
    counts half, as in :func:`textbook_lm.data.instruct.agreement_ceiling`)."""
    exs = [p[0] for p in pairs]
    a, b = rm_score(rm, exs, [p[1] for p in pairs]), rm_score(rm, exs, [p[2] for p in pairs])
    return float(((a > b).float() + 0.5 * (a == b).float()).mean())


def train_reward_model(init: GPT, pairs, epochs: int = 2, lr: float = 3e-4, batch: int = 32,
                       seed: int = 0) -> tuple[align.RewardModel, list[float]]:
    """A reward model started from ``init`` (the SFT model), trained with the Bradley-Terry
    loss on ``pairs``; returns it and its loss at every step."""
    seed_all(seed)
    rm = align.RewardModel(init)
    dev = next(rm.parameters()).device
    opt = torch.optim.AdamW(rm.parameters(), lr=lr, weight_decay=0.0)
    losses = []
    rm.train()
    for chunk in _minibatches(pairs, epochs, batch, seed):
        (ci, _), (ri, _) = pair_batch(chunk, 1, dev), pair_batch(chunk, 2, dev)
        loss = align.bradley_terry_loss(rm(ci, (ci != w.PAD).sum(1)), rm(ri, (ri != w.PAD).sum(1)))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return rm.eval(), losses


def run_dpo(init: GPT, pairs, beta: float = 1.0, epochs: int = 1, lr: float = 1e-5, batch: int = 32,
            seed: int = 0, reference_free: bool = False) -> tuple[GPT, list[dict]]:
    """DPO from ``init`` (policy and frozen reference both start as it) on ``pairs``. With
    ``reference_free`` the reference's log-probabilities are replaced by 0, as if the
    reference were a uniform distribution: nothing ties the policy to ``init`` any more."""
    seed_all(seed)
    policy, ref = copy.deepcopy(init), copy.deepcopy(init).eval()
    dev = next(policy.parameters()).device
    opt = torch.optim.AdamW(policy.parameters(), lr=lr, weight_decay=0.0)
    logs = []
    for chunk in _minibatches(pairs, epochs, batch, seed):
        (ci, cm), (ri, rmask) = pair_batch(chunk, 1, dev), pair_batch(chunk, 2, dev)
        with torch.no_grad():
            ref_c, ref_r = align.sequence_logprob(ref, ci, cm), align.sequence_logprob(ref, ri, rmask)
            if reference_free:
                ref_c, ref_r = torch.zeros_like(ref_c), torch.zeros_like(ref_r)
        policy.train()
        loss, st = align.dpo_loss(align.sequence_logprob(policy, ci, cm), align.sequence_logprob(policy, ri, rmask),
                                  ref_c, ref_r, beta)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        logs.append(st)
    return policy.eval(), logs


def run_ppo(init: GPT, rm: align.RewardModel, rounds: int = 100, kl_coef: float = 0.2, lr: float = 1e-4,
            prompts_per_round: int = 64, seed: int = 0, track: list[w.Example] | None = None,
            track_every: int = 10) -> tuple[GPT, list[dict]]:
    """PPO from ``init`` against the reward model ``rm``, with a KL penalty (``kl_coef``) to
    ``init``. Every round logs :func:`textbook_lm.align.ppo_round`'s statistics; with
    ``track``, every ``track_every`` rounds also the mean gold score and reward-model score
    of fresh samples on those examples (the over-optimisation curve)."""
    seed_all(seed)
    model, ref = align.PolicyValue(copy.deepcopy(init)), copy.deepcopy(init).eval()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    cfg = align.PPOConfig(kl_coef=kl_coef, max_new_tokens=MAX_NEW)
    rng, logs = random.Random(seed), []
    score = _scorer(rm)
    for r in range(rounds):
        exs = [w.task(rng, names=SFT_NAMES) for _ in range(prompts_per_round)]
        st = align.ppo_round(model, ref, score, [w.encode(e.prompt) for e in exs], opt, cfg, w.EOS, seed=seed + r)
        st["round"] = r + 1
        if track is not None and ((r + 1) % track_every == 0 or r == 0):
            resp = respond(model.policy, track, 1.0, seed=10_000 + r)
            st["gold"] = sum(s.total for s in gold(track, resp)) / len(track)
            st["proxy"] = float(rm_score(rm, track, resp).mean())
            st["samples"] = [" ".join(r) for r in resp[:4]]
        logs.append(st)
    return model.policy.eval(), logs


def best_of(policy: GPT, rm: align.RewardModel, examples: list[w.Example], n: int, seed: int = 0) -> list[list[str]]:
    """Best-of-n: for each example, the one of ``n`` samples of ``policy`` the reward model scores highest."""
    score = _scorer(rm)
    out = align.best_of_n(policy, score, [w.encode(e.prompt) for e in examples], n, MAX_NEW, w.EOS, seed=seed)
    return [w.decode(r) for r in out]


def held_out() -> list[w.Example]:
    """The evaluation prompts: every task, colour questions about all 24 names."""
    return w.prompts(EVAL["n"], seed=EVAL["seed"])


def frontier(init: GPT, rm: align.RewardModel, pairs, examples: list[w.Example], seed: int = 0,
             progress: bool = False) -> list[dict]:
    """Gold score and KL to ``init`` for PPO across KL coefficients and DPO across betas."""
    rows = []
    runs = [("PPO", c, lambda c=c: run_ppo(init, rm, **{**PPO_TRAIN, "kl_coef": c}, seed=seed)[0])
            for c in FRONTIER["kl_coefs"]]
    runs += [("DPO", b, lambda b=b: run_dpo(init, pairs, **{**DPO_TRAIN, "beta": b}, seed=seed)[0])
             for b in FRONTIER["betas"]]
    for method, coef, make in runs:
        policy = make()
        ev = evaluate(policy, examples, seed=1)
        rows.append({"method": method, "coef": coef, "gold": ev["gold"], "interval": ev["interval"],
                     "kl": kl_to(policy, init, examples, ev["responses"])})
        if progress:
            print(rows[-1], flush=True)
    return rows


def overoptimisation(init: GPT, rm: align.RewardModel, seed: int = 0) -> dict:
    """Optimising against a reward model, measured by the gold judge on ``track`` held-out prompts:

    * best-of-n for n = 1, 2, 4, ..., ``n_max`` with the full reward model ``rm`` and with one
      trained on only ``FEW_PAIRS`` pairs (gold and proxy scores of the chosen responses);
    * PPO against ``rm`` with no KL penalty, tracking gold and proxy every ``track_every`` rounds."""
    pairs = preference_pairs(init, FEW_PAIRS["n"], FEW_PAIRS["seed"], FEW_PAIRS["noise"])
    few, _ = train_reward_model(init, pairs, **{**RM_TRAIN, "epochs": OVEROPT["rm_epochs"]}, seed=seed)
    track = w.prompts(OVEROPT["track"], seed=EVAL["seed"] + 1)
    prompts = [w.encode(e.prompt) for e in track]
    samples = [[w.decode(r) for r in align.sample(init, prompts, MAX_NEW, w.EOS, 1.0, seed=seed + k)]
               for k in range(OVEROPT["n_max"])]
    gold_ = torch.tensor([[w.judge(e, r).total for e, r in zip(track, rs)] for rs in samples])    # (n_max, P)
    ns = [2 ** k for k in range(OVEROPT["n_max"].bit_length())]
    bon = {"n": ns}
    for name, model in (("few pairs", few), ("all pairs", rm)):
        proxy = torch.stack([rm_score(model, track, rs) for rs in samples])                    # (n_max, P)
        best = [proxy[:n].argmax(0) for n in ns]
        cols = torch.arange(len(track))
        bon[name] = {"gold": [float(gold_[i, cols].mean()) for i in best],
                     "proxy": [float(proxy[i, cols].mean()) for i in best]}
    _, logs = run_ppo(init, rm, rounds=OVEROPT["rounds"], kl_coef=OVEROPT["kl_coef"], lr=OVEROPT["lr"],
                      prompts_per_round=PPO_TRAIN["prompts_per_round"], seed=seed, track=track,
                      track_every=OVEROPT["track_every"])
    held = preference_pairs(init, **HELD_PAIRS)
    return {"pairs": len(pairs), "pair_accuracy": pair_accuracy(few, pairs),
            "held_out_accuracy": pair_accuracy(few, held), "best_of_n": bon, "ppo": logs}


# Published figures printed beside ours (checked against the papers; section numbers given)
PUBLISHED = {
    "instructgpt": {  # Ouyang et al. 2022
        "prompts (SFT / RM / PPO)": "about 13k / 33k / 31k (Sec. 3.2)",
        "1.3B InstructGPT vs 175B GPT-3": "1.3B preferred, with over 100x fewer parameters (Sec. 1)",
        "175B InstructGPT preferred to 175B GPT-3": "85 +- 3% (95% interval; 71 +- 4% vs few-shot GPT-3)",
        "labeller agreement (training / held-out labellers)": "72.6 +- 1.5% / 77.3 +- 1.3% (Sec. 3.4)",
        "reward model accuracy (training / held-out labellers)": "72.4 +- 0.4% / 69.6 +- 0.9% (Sec. 4.1)",
        "KL coefficient beta": "0.02 (App. C.4)",
    },
    "dpo": {  # Rafailov et al. 2023
        "TL;DR win rate vs reference summaries (GPT-4 judge, temperature 0)": "DPO about 61%, PPO 57% (Sec. 6.2)",
        "beta": "0.1 by default, 0.5 for TL;DR (App. B)",
        "IMDb reward-vs-KL frontier": "DPO's frontier dominates PPO's (Fig. 2, left)",
    },
    "stiennon": {"1.3B RLHF vs supervised model ~10x its size (vs reference summaries)": "61% vs 43% (Sec. 4.1)"},
    "gao": {"functional forms, d = sqrt(KL)": "R_bon(d) = d (alpha - beta d); R_RL(d) = d (alpha - beta log d)"},
}

BENCHMARK = "instruct-demos"
LEADERBOARD_COMMAND = "python -m textbook_lm.experiments.leaderboard reproduce align"


def demonstrations(n: int | None = None, seed: int = 7) -> tuple[list[w.Example], list[list[str]]]:
    """The held-out prompts (:func:`held_out`) with one demonstrator response each."""
    exs = held_out()[:n]
    rng = random.Random(seed)
    return exs, [w.demonstration(rng, e) for e in exs]


def leaderboard_entries() -> list:
    """Cross-entropy on the response tokens of demonstrations of the 400 held-out prompts, for
    every shipped stage, and the floor: the demonstrator's own entropy
    (:func:`textbook_lm.data.instruct.demonstration_logprob`). A model that moves away from
    the demonstrator to please the judge scores worse here: the benchmark measures imitation."""
    from textbook_lm.leaderboard import Entry
    exs, demos = demonstrations()
    ids, resp = align.make_batch([w.encode(e.prompt) for e in exs], [w.encode(d) for d in demos], pad=w.PAD)
    n = int(resp[:, 1:].sum())
    floor = -sum(w.demonstration_logprob(e, d) for e, d in zip(exs, demos))
    entries = [Entry("demonstrator (floor)", BENCHMARK, "val", floor, n, 0, 0.0, 10, LEADERBOARD_COMMAND, kind="floor")]
    for name, label in (("instruct-base", "GPT 4x64, pretrained only"), ("instruct-sft", "GPT 4x64, SFT"),
                        ("instruct-ppo", "GPT 4x64, SFT + PPO"), ("instruct-dpo", "GPT 4x64, SFT + DPO")):
        model, _, info = hub.load(name)
        with torch.no_grad():
            nll = -float((align.token_logprobs(model.float(), ids) * resp).sum())
        entries.append(Entry(label, BENCHMARK, "val", nll, n, model.num_params(True), info["train_seconds"], 10,
                             LEADERBOARD_COMMAND))
    return entries


STAGES = ["base", "sft", "rm", "ppo", "dpo"]
STUDIES = ["frontier", "overoptimisation"]


def _load(args: argparse.Namespace, name: str):
    """A stage's model: from the command's output folder when it is there, else shipped."""
    path = output_dir(args, name)
    return hub.load(path if path.is_dir() else name)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m textbook_lm.experiments.align",
                                 description="Train Chapter 10's models (each stage starts from the previous "
                                             "one) or run its studies.")
    ap.add_argument("command", choices=["train", "study"])
    ap.add_argument("name", choices=STAGES + STUDIES)
    add_output_args(ap)
    args = ap.parse_args(argv)
    if (args.command == "train") != (args.name in STAGES):
        ap.error(f"train takes one of {STAGES}; study one of {STUDIES}")
    command = f"python -m textbook_lm.experiments.align {args.command} {args.name}"
    t0 = time.perf_counter()
    tok = list(w.VOCAB)
    exs = held_out()
    info: dict = {"command": command}
    if args.name == "base":
        model, h = pretrain(progress=True)
        info.update(recipe={"model": MODEL, "train": PRETRAIN}, steps=h.step[-1], val_step=h.val_step,
                    val_loss=[round(v, 4) for v in h.val_loss], train_loss=[round(v, 4) for v in h.train_loss])
    elif args.name == "sft":
        base = _load(args, "instruct-base").obj
        model, h = sft(base, progress=True)
        plain, h2 = sft(base, mask_prompt=False)
        ev, ev2 = evaluate(model, exs, seed=1), evaluate(plain, exs, seed=1)
        info.update(recipe=SFT, steps=h.step[-1], val_step=h.val_step, val_loss=[round(v, 4) for v in h.val_loss],
                    unmasked={"val_loss": [round(v, 4) for v in h2.val_loss], "gold": ev2["gold"],
                              "interval": ev2["interval"]}, gold=ev["gold"], interval=ev["interval"])
    elif args.name == "rm":
        init = _load(args, "instruct-sft").obj
        pairs = preference_pairs(init, **PAIRS)
        held = preference_pairs(init, **HELD_PAIRS)
        model, losses = train_reward_model(init, pairs, **RM_TRAIN)
        ceiling = sum(w.agreement_ceiling(*p, noise=PAIRS["noise"]) for p in held) / len(held)
        info.update(recipe={"pairs": PAIRS, "train": RM_TRAIN}, losses=[round(v, 4) for v in losses],
                    pairs=len(pairs), held_pairs=len(held),
                    train_accuracy=pair_accuracy(model, pairs), held_out_accuracy=pair_accuracy(model, held),
                    ceiling=ceiling)
    elif args.name in ("ppo", "dpo"):
        init = _load(args, "instruct-sft").obj
        if args.name == "ppo":
            rm = _load(args, "instruct-rm").obj
            model, logs = run_ppo(init, rm, **PPO_TRAIN, track=exs[:200], track_every=10)
            info.update(recipe=PPO_TRAIN)
        else:
            model, logs = run_dpo(init, preference_pairs(init, **PAIRS), **DPO_TRAIN)
            info.update(recipe={"pairs": PAIRS, "train": DPO_TRAIN})
        info.update(logs=logs)
    else:
        init = _load(args, "instruct-sft").obj
        if args.name == "frontier":
            rm = _load(args, "instruct-rm").obj
            result = {"rows": frontier(init, rm, preference_pairs(init, **PAIRS), exs, progress=True)}
        else:
            result = overoptimisation(init, _load(args, "instruct-rm").obj)
        result.update(command=command, seconds=round(time.perf_counter() - t0, 1))
        path = hub.save(result, output_dir(args, f"instruct-{args.name}"), info={"command": command})
        print(f"instruct-{args.name}: {time.perf_counter() - t0:.0f} s -> {path}")
        return 0
    info["train_seconds"] = round(time.perf_counter() - t0, 1)
    path = hub.save(model, output_dir(args, f"instruct-{args.name}"), tokenizer=tok, info=info, half=True)
    print(f"instruct-{args.name}: {info['train_seconds']:.0f} s -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
