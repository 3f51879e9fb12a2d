"""Chapter 9's experiments: the in-context-learning models, their training histories, and the
chain-of-thought pair.

Commands (each writes into ``--out DIR``, default ``./artefacts``, or with ``--into-package``
into the package's shipped artefacts):

* ``python -m textbook_lm.experiments.icl train icl-2layer``: a 2-layer GPT on demonstration
  sequences with fresh mappings (plus repeated runs), with its history of label loss, ICL
  score, best induction and previous-token scores and 8-shot accuracy every 50 steps.
* ``... train icl-1layer``: the same recipe with one layer (the control).
* ``... train icl-fixed``: two layers, one fixed mapping for every sequence (Chan et al.'s
  in-weights control).
* ``... train cot-steps`` and ``... train cot-direct``: the shipped icl-2layer fine-tuned on
  "where does the chain end?", writing the walk or only the answer (about 30 s each).
* ``python -m textbook_lm.experiments.icl seeds``: the icl-2layer recipe trained with seeds 0-4,
  each with its heads switched off one at a time (the result ``icl-seeds``, about 10 min).
"""
from __future__ import annotations

import argparse
import random
import time

import torch

from textbook_lm import heads, hub, prompting
from textbook_lm import seed as seed_all
from textbook_lm import train as tr
from textbook_lm.data import icl
from textbook_lm.experiments import add_output_args, output_dir
from textbook_lm.generate import generate
from textbook_lm.gpt import GPT, GPTConfig
from textbook_lm.leaderboard import Entry

__all__ = ["MODEL", "RECIPES", "COT", "data_for", "probe", "train_recipe", "train_chains", "chain_accuracy",
           "accuracy_by_shots", "ablation_study", "top_heads", "seed_study", "SEED", "format_study", "order_study", "instruction", "instruction_study",
           "OLSSON", "PUBLISHED", "BENCHMARK",
           "leaderboard_entries", "main"]

# Two layers of two 32-dimensional heads, width 64: the smallest shape in which an induction
# head can form (it needs a previous-token head in an earlier layer) and, in layer 1, an
# induction head can be compared with another head of its own layer. (With four heads per
# layer, all four heads of layer 1 became induction heads, each dispensable on its own.)
MODEL = dict(vocab_size=len(icl.VOCAB), block_size=72, n_layer=2, n_head=2, n_embd=64, dropout=0.0, bias=False,
             activation="gelu")
TRAIN = dict(steps=4000, batch_size=32, seq_len=63, lr=1e-3, warmup=100, min_lr_ratio=0.1, weight_decay=0.1,
             eval_every=50, eval_batches=128)
# The shipped runs use seed 1. How much of the work the top induction head does varies with
# the seed (``seed_study``, shipped as the result ``icl-seeds``, measures seeds 0-4).
SEED = 1
RECIPES: dict[str, dict] = {
    "icl-2layer": dict(model=MODEL, train=TRAIN, data=dict(n_items=4, n_labels=2, repeats=0.5)),
    "icl-1layer": dict(model={**MODEL, "n_layer": 1}, train=TRAIN, data=dict(n_items=4, n_labels=2, repeats=0.5)),
    "icl-fixed": dict(model=MODEL, train=TRAIN, data=dict(n_items=4, n_labels=2, repeats=0.5, mapping="fixed")),
}
# Chain of thought: both models start from the shipped icl-2layer (which has its induction
# heads) and are fine-tuned on chains (3/4 of each batch) and demonstration data (1/4).
COT = dict(base="icl-2layer", train={**TRAIN, "steps": 1000, "seq_len": 72, "warmup": 50, "eval_every": 250,
                                     "eval_batches": 16}, max_hops=4, chains_share=0.75)
# Published figures the chapter prints beside ours, each checked against the paper's text.
OLSSON = {  # Olsson et al. (2022), "In-context Learning and Induction Heads", arXiv 2209.11895
    "icl_score": "the loss of the 500th token minus the average loss of the 50th token of a 512-token "
                 "context, averaged over dataset examples",
    "prefix_matching": "attention back to the token that followed the same token earlier, on 25 random "
                       "tokens repeated 4 times",
    "copying": "how much the head raises the logit of the token it attends to, rescaled to [-1, 1]",
    "phase_change": "induction heads form in a narrow window roughly 2.5 to 5 billion tokens into "
                    "training, when the in-context learning score jumps",
    "one_layer": "in one-layer attention-only models induction heads never form and no such change occurs",
    "two_layers": "induction heads need a composition of attention heads, only possible with two or "
                  "more layers (Elhage et al., 2021: a previous-token head feeding an induction head)",
}
PUBLISHED = {
    # Brown et al. (2020), GPT-3 175B, Table 3.2 and 3.3; few-shot K = 15 (LAMBADA), 64 (TriviaQA)
    "gpt3": {"LAMBADA": {"zero-shot": 76.2, "one-shot": 72.5, "few-shot": 86.4, "K": 15},
             "TriviaQA (closed book)": {"zero-shot": 64.3, "one-shot": 68.0, "few-shot": 71.2, "K": 64}},
    # Zhao et al. (2021): contextual calibration raises GPT-3's average accuracy by up to 30.0
    # points; content-free inputs "N/A", "[MASK]" and ""; reordering 4 SST-2 examples alone
    # moves GPT-3 2.7B from 54.3% to 93.4%
    "zhao2021": {"calibration_gain_points": 30.0, "order_sst2_2.7b": (54.3, 93.4)},
    # Lu et al. (2022): order alone spans "near state-of-the-art and random guess performance"
    # Sclar et al. (2023): formatting alone, up to 76 accuracy points for LLaMA-2-13B (few-shot)
    "sclar2023": {"format_spread_points": 76, "model": "LLaMA-2-13B"},
    # Wei et al. (2022): PaLM 540B on GSM8K, 8 exemplars: standard 17.9%, chain of thought 56.9%
    "wei2022": {"GSM8K, PaLM 540B": {"standard": 17.9, "chain of thought": 56.9}},
}
EVAL_PROBE = icl.repeated_random(64, 20, seed=1)          # 64 runs of 20 items, repeated once


def data_for(name: str, seed: int = 0) -> icl.Episodes:
    return icl.Episodes(**RECIPES[name]["data"], seed=seed)


@torch.no_grad()
def probe(model: GPT, data: icl.Episodes, shots: int = 8, n: int = 200) -> dict:
    """What the chapter plots along training: the loss on the first two and the last four
    labels of the validation sequences (and their difference, the ICL score), the best
    prefix-matching (induction) and previous-token scores with their heads, every head's
    prefix-matching score (``prefix_by_head``, layer x head), and ``shots``-shot
    accuracy on fresh mappings (also for a model trained on a fixed one)."""
    windows = data.windows(TRAIN["seq_len"])
    x, y = torch.cat([w[0] for w in windows]), torch.cat([w[1] for w in windows])
    dev = next(model.parameters()).device
    lp = tr.target_logprobs(model.eval(), x.to(dev), y.clamp(min=0).to(dev)).cpu()
    k = int((y != -100).sum(1).min())                       # labels in the shortest window
    per_label = torch.stack([-lp[r, y[r] != -100][:k] for r in range(len(y))]).mean(0)   # (k,)
    maps = heads.attention_maps(model, EVAL_PROBE)
    pm, pt = heads.prefix_matching(maps, 20), heads.previous_token(maps)
    fresh = icl.Episodes(data.n_items, data.n_labels)      # new mappings, whatever the training data
    ev = prompting.evaluate(model, lambda r: fresh.prompt(r, shots), n=n, seed=1, encode=icl.encode)
    best = lambda s: [int(i) for i in divmod(int(s.argmax()), s.shape[1])]
    return {"early_loss": round(float(per_label[:2].mean()), 4), "late_loss": round(float(per_label[-4:].mean()), 4),
            "icl_score": round(heads.icl_score(per_label, slice(0, 2), slice(-4, None)), 4),
            "induction": round(float(pm.max()), 4), "induction_head": best(pm),
            "prefix_by_head": [[round(float(v), 4) for v in row] for row in pm],
            "previous": round(float(pt.max()), 4), "previous_head": best(pt),
            f"accuracy_{shots}shot": round(ev.accuracy, 4)}


def train_recipe(name: str, steps: int | None = None, seed: int = SEED, progress: bool = False,
                 device: str | torch.device | None = None, stop_after: int | None = None,
                 eval_every: int | None = None) -> tuple[GPT, tr.History, list[dict]]:
    """Train recipe ``name`` from scratch; returns the model, its history and the
    :func:`probe` measurements at every evaluation. ``stop_after`` ends the run early on the
    recipe's own learning-rate schedule (the first steps of the shipped run)."""
    r = RECIPES[name]
    seed_all(seed)
    model = GPT(GPTConfig(**r["model"])).to(device or "cpu")
    data = data_for(name, seed)
    cfg = tr.TrainConfig(**{**r["train"], "seed": seed, "stop_after": stop_after,
                            **({"steps": steps} if steps else {}),
                            **({"eval_every": eval_every} if eval_every else {})})
    probes: list[dict] = []

    def metric(m):
        probes.append(probe(m, data))
        return probes[-1]["accuracy_8shot"]

    history = tr.train(model, data, data, cfg, progress=progress, metric=metric)
    return model.eval(), history, probes


def train_chains(steps_written: bool, base: GPT | None = None, steps: int | None = None, seed: int = 0,
                 progress: bool = False, device: str | torch.device | None = None) -> tuple[GPT, tr.History]:
    """Fine-tune a copy of ``base`` (default: the shipped ``icl-2layer``) to answer "where does
    the chain end?", writing the walk (``steps_written``) or only the answer."""
    seed_all(seed)
    if base is None:
        base = hub.load(COT["base"])[0]
    model = GPT(base.cfg).to(device or "cpu")
    model.load_state_dict(base.state_dict())
    share = COT["chains_share"]
    data = icl.Mixture((icl.Chains(steps=steps_written, max_hops=COT["max_hops"]), share),
                       (icl.Episodes(**RECIPES[COT["base"]]["data"]), 1 - share))
    cfg = tr.TrainConfig(**{**COT["train"], "seed": seed, **({"steps": steps} if steps else {})})
    return model, tr.train(model, data, data, cfg, progress=progress)


@torch.no_grad()
def chain_accuracy(model: GPT, steps_written: bool, hops: int, n: int = 100, n_arrows: int = 10,
                   seed: int = 0) -> float:
    """Share of ``n`` chains of ``hops`` hops whose end the model names (greedy decoding; with
    written steps, the item before ``end`` in what it writes)."""
    task, rng, right = icl.Chains(steps=steps_written), random.Random(seed), 0
    for _ in range(n):
        words, start, answer = task.words(rng, hops, n_arrows)
        prompt = torch.tensor(icl.encode(words[:start]))
        new = hops + 2 if steps_written else 1
        out = icl.decode(generate(model, prompt, new, temperature=0)[0, start:].tolist())
        if steps_written:
            got = out[out.index("end") - 1] if "end" in out[1:] else None
        else:
            got = out[0]
        right += got == answer
    return right / n


def accuracy_by_shots(model: GPT, shots: list[int], n: int = 200, n_items: int = 4, n_labels: int = 2,
                      seed: int = 1) -> dict[int, float]:
    """k-shot accuracy on fresh mappings for every k in ``shots`` (the same prompts for
    every model: the prompt generator is seeded)."""
    data = icl.Episodes(n_items, n_labels)
    return {k: prompting.evaluate(model, lambda r: data.prompt(r, k), n=n, seed=seed,
                                  encode=icl.encode).accuracy for k in shots}


def ablation_study(model: GPT, shots: int = 8, n: int = 200, seed: int = 1) -> dict[tuple[int, int], float]:
    """k-shot accuracy with each head zero-ablated in turn, and with none (key ``(-1, -1)``)."""
    data = icl.Episodes()
    run = lambda: prompting.evaluate(model, lambda r: data.prompt(r, shots), n=n, seed=seed,
                                     encode=icl.encode).accuracy
    out = {(-1, -1): run()}
    for layer, m in enumerate(heads.attention_modules(model)):
        for h in range(m.n_heads):
            with heads.ablate(model, [(layer, h)]):
                out[(layer, h)] = run()
    return out


def top_heads(model: GPT) -> dict[str, tuple[int, int]]:
    """The strongest previous-token head of layer 0 and the two layer-1 heads ranked by
    prefix matching on ``EVAL_PROBE`` (``"induction"`` first, ``"other"`` second)."""
    maps = heads.attention_maps(model, EVAL_PROBE)
    pm, pt = heads.prefix_matching(maps, 20), heads.previous_token(maps)
    order = [int(h) for h in pm[1].argsort(descending=True)]
    return {"previous": (0, int(pt[0].argmax())), "induction": (1, order[0]), "other": (1, order[1])}


def seed_study(seeds: tuple[int, ...] = (0, 1, 2, 3, 4), shots: int = 8, n: int = 200,
               progress: bool = False) -> list[dict]:
    """Train ``icl-2layer`` once per seed (its full recipe) and measure ``shots``-shot accuracy
    with nothing, the top induction head, the other layer-1 head, both, and the previous-token
    head switched off (zero ablation)."""
    rows = []
    for seed in seeds:
        model, history, _ = train_recipe("icl-2layer", seed=seed, eval_every=TRAIN["steps"])
        top = top_heads(model)
        data = icl.Episodes()

        def run(hs):
            with heads.ablate(model, hs):
                return prompting.evaluate(model, lambda r: data.prompt(r, shots), n=n, seed=1,
                                          encode=icl.encode).accuracy

        row = {"seed": seed, "train_seconds": round(history.seconds, 1),
               "heads": {k: list(v) for k, v in top.items()}, "nothing": run([]),
               "top induction head": run([top["induction"]]), "other layer-1 head": run([top["other"]]),
               "both layer-1 heads": run([top["induction"], top["other"]]),
               "previous-token head": run([top["previous"]])}
        rows.append(row)
        if progress:
            print(row, flush=True)
    return rows


def format_study(model: GPT, shots: int = 8, n: int = 100, seed: int = 2) -> list[dict]:
    """Accuracy, raw and calibrated, for every template (separator x delimiter), with the
    training label words and with held-out ones (``yes``/``no``, ``A``/``B``, ...)."""
    rows = []
    for template in icl.TEMPLATES:
        for words in ("training labels", "held-out labels"):
            labels = None if words == "training labels" else icl.HELD_OUT_LABELS
            data = icl.Episodes()
            make = lambda r: data.prompt(r, shots, template=template, labels=labels)
            raw = prompting.evaluate(model, make, n=n, seed=seed, encode=icl.encode)
            cal = prompting.evaluate(model, make, n=n, seed=seed, encode=icl.encode, calibrated=True)
            rows.append({"template": str(template), "seen": template in icl.TRAIN_TEMPLATES, "labels": words,
                         "accuracy": raw.accuracy, "calibrated": cal.accuracy})
    return rows


def order_study(model: GPT, shots: int = 4, n_sets: int = 20, seed: int = 3) -> list[list[float]]:
    """For ``n_sets`` sets of ``shots`` random demonstrations of a mapping, the accuracy over
    the mapping's queries of every order of the same demonstrations (Lu et al.'s experiment
    in small; a query the demonstrations do not show is where order can matter)."""
    import itertools

    rng, data, out = random.Random(seed), icl.Episodes(), []
    for _ in range(n_sets):
        mapping = data.draw(rng)
        demos = [(x, mapping[x]) for x in (rng.choice(list(mapping)) for _ in range(shots))]
        labels = sorted(set(mapping.values()))
        accs = []
        for order in itertools.permutations(range(shots)):
            right = 0
            for q in mapping:
                words = prompting.build(demos, q, sep="", delim=",", order=order)
                s = prompting.score(model, icl.encode(words), [icl.encode([lab]) for lab in labels])
                right += labels[int(s.argmax())] == mapping[q]
            accs.append(right / len(mapping))
        out.append(accs)
    return out


def instruction(mapping: dict[str, str], query: str) -> list[str]:
    """The mapping and the question written as an instruction, in words the models' vocabulary
    has but their training never used: "please answer the question : the label of bal is red ,
    ... what is the label of kin ?"."""
    words = ["<bos>", "please", "answer", "the", "question", ":"]
    for item, label in mapping.items():
        words += ["the", "label", "of", item, "is", label, ","]
    return words + ["what", "is", "the", "label", "of", query, "?"]


@torch.no_grad()
def instruction_study(model: GPT, n: int = 200, seed: int = 7) -> dict[str, float]:
    """Accuracy on the same mappings and queries, asked as an instruction and as eight
    demonstrations (each item twice, shuffled)."""
    rng, right, ep = random.Random(seed), {"instruction": 0, "8 demonstrations": 0}, icl.Episodes()
    for _ in range(n):
        mapping = ep.draw(rng)
        query = rng.choice(list(mapping))
        cands = sorted(set(mapping.values()))
        demos = [(x, mapping[x]) for x in list(mapping) * 2]
        rng.shuffle(demos)
        for name, words in (("instruction", instruction(mapping, query)),
                            ("8 demonstrations", prompting.build(demos, query, sep=""))):
            s = prompting.score(model, icl.encode(words), [icl.encode([c]) for c in cands])
            right[name] += cands[int(s.argmax())] == mapping[query]
    return {k: v / n for k, v in right.items()}


BENCHMARK = "icl-labels"
LEADERBOARD_COMMAND = "python -m textbook_lm.experiments.leaderboard reproduce icl"


@torch.no_grad()
def leaderboard_entries() -> list[Entry]:
    """Cross-entropy on the labels of the validation demonstration sequences (fresh mappings,
    256 sequences of 21 labels) for the shipped models, and the floor: what the true process
    gives (0 for an item already shown; a new item's chance otherwise)."""
    data = data_for("icl-2layer")
    windows = data.windows(TRAIN["seq_len"])
    floor = -sum(sum(data.best_logprobs(x[0].tolist(), y[0].tolist())) for x, y in windows)
    n = sum(int((y != -100).sum()) for _, y in windows)
    entries = [Entry("true process (floor)", BENCHMARK, "val", floor, n, 0, 0.0, 9, LEADERBOARD_COMMAND,
                     kind="floor")]
    x, y = torch.cat([w[0] for w in windows]), torch.cat([w[1] for w in windows])
    for name, label in (("icl-1layer", "GPT, 1 layer"), ("icl-2layer", "GPT, 2 layers"),
                        ("icl-fixed", "GPT, 2 layers, fixed mapping")):
        model, _, info = hub.load(name)
        lp = tr.target_logprobs(model, x, y.clamp(min=0))
        entries.append(Entry(label, BENCHMARK, "val", float(-lp[y != -100].sum()), n, model.num_params(True),
                             info["train_seconds"], 9, LEADERBOARD_COMMAND))
    return entries


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m textbook_lm.experiments.icl",
                                 description="Train Chapter 9's in-context-learning and chain-of-thought models.")
    ap.add_argument("command", choices=["train", "seeds"])
    ap.add_argument("name", nargs="?", choices=[*RECIPES, "cot-steps", "cot-direct"])
    add_output_args(ap)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    if args.command == "seeds":
        command = "python -m textbook_lm.experiments.icl seeds"
        rows = seed_study(progress=True)
        path = hub.save({"command": command, "recipe": RECIPES["icl-2layer"], "runs": rows},
                        output_dir(args, "icl-seeds"), info={"command": command})
        print(f"icl-seeds: {len(rows)} runs, {time.perf_counter() - t0:.0f} s -> {path}")
        return 0
    if args.name is None:
        ap.error("train needs a recipe name")
    command = f"python -m textbook_lm.experiments.icl train {args.name}"
    if args.name in RECIPES:
        model, history, probes = train_recipe(args.name, progress=True)
        info = {"recipe": RECIPES[args.name], "train_seconds": round(history.seconds, 1), "steps": history.step[-1],
                "train_loss": [round(v, 4) for v in history.train_loss], "val_step": history.val_step,
                "val_loss": [round(v, 4) for v in history.val_loss], "probes": probes}
    else:
        written = args.name == "cot-steps"
        model, history = train_chains(written, progress=True)
        acc = {h: chain_accuracy(model, written, h) for h in range(1, 9)}
        info = {"recipe": COT, "steps_written": written, "train_seconds": round(history.seconds, 1),
                "steps": history.step[-1], "val_step": history.val_step,
                "val_loss": [round(v, 4) for v in history.val_loss], "accuracy_by_hops": acc}
    info.update(command=command)
    path = hub.save(model, output_dir(args, args.name), tokenizer=list(icl.VOCAB), info=info)
    print(f"{args.name}: {info['steps']} steps, {time.perf_counter() - t0:.0f} s -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
