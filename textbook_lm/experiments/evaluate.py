"""Chapter 12's measurements: every model of the book, measured the same way.

* :func:`book_models`: one row per model trained in chapters 1-11 (every leaderboard entry, every
  shipped model, every fine-tuned classifier), in comparable units (bits per character on the
  real corpora, the gap to the entropy floor on synthetic data), with its training compute.
* :func:`scaling_fit`: a power law fitted to the sweep of the study ``scaling``, with bootstrap
  intervals on the exponent; :func:`compute_frontier`: the best loss reached for each compute.
* :func:`contamination_ngram`, :func:`contamination_gpt`: what a leaked test set does to a score.
* :func:`weat_sets`, :func:`template_probe`: bias probes on the book's word vectors and BERT.
* :func:`hallucination`: confident wrong answers of Chapter 10's chat models.
* :func:`token_calibration`: next-token confidence against accuracy.

Studies (``python -m textbook_lm.experiments.evaluate study NAME``; ``--into-package`` ships the
result as ``eval-NAME``):

- ``scaling``: Chapter 8's Tiny Shakespeare sweep, widened to :data:`SCALING_SIZES` and repeated
  for :data:`SCALING_SEEDS` (about 20 minutes on 2 CPU cores).
- ``finetune``: Chapter 7's fine-tuning runs again, keeping every test item's prediction and
  confidence, so the chapter can run paired tests and draw reliability diagrams (about 4 minutes).
"""
from __future__ import annotations

import argparse
import copy
import math
import time

import numpy as np
import torch

from textbook_lm import evaluate, hub, leaderboard, ngram
from textbook_lm import seed as seed_all
from textbook_lm import train as tr
from textbook_lm.data import corpora, tinylang
from textbook_lm.data import instruct as w
from textbook_lm.experiments import add_output_args, output_dir
from textbook_lm.experiments import align as align_experiments
from textbook_lm.experiments import bert as bert_experiments
from textbook_lm.experiments import distill as distill_experiments
from textbook_lm.experiments import gpt as gpt_experiments
from textbook_lm.experiments import icl as icl_experiments
from textbook_lm.experiments import ngram as ngram_experiments
from textbook_lm.experiments import nnlm as nnlm_experiments

__all__ = ["PUBLISHED", "REAL_CORPORA", "scored_characters", "training_tokens", "ARTEFACT_OF", "book_models",
           "anchors_bits_per_char", "SCALING_SIZES", "SCALING_SEEDS", "scaling_study", "scaling_fit",
           "compute_frontier", "FINETUNE_TASKS", "finetune_study", "contamination_ngram", "contamination_gpt",
           "WEAT_SETS", "weat_sets", "OCCUPATIONS", "template_probe", "hallucination", "token_calibration",
           "STUDIES", "main"]

LN2 = math.log(2.0)


# Published figures printed beside ours, each checked against the paper
PUBLISHED = {
    # Kaplan et al. (2020), "Scaling Laws for Neural Language Models", eqs. 1.1-1.3: L(N) with N
    # non-embedding parameters, L(D) in tokens, L(C_min) in PF-days (WebText2, BPE tokens)
    "kaplan": dict(alpha_N=0.076, N_c=8.8e13, alpha_D=0.095, D_c=5.4e13, alpha_C=0.050),
    # Hoffmann et al. (2022), "Training Compute-Optimal Large Language Models": the fit of eq. 10,
    # Table 2's exponent a of N_opt ~ C^a for approaches 1-3, Chinchilla itself, and Table 3's
    # ratio of about 20 tokens per parameter
    "chinchilla": dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28, a=(0.50, 0.49, 0.46), params=70e9,
                       tokens=1.4e12, tokens_per_param=20),
    # Brown et al. (2020), Table D.1: 3.14e23 FLOPs for 175B parameters (174.6B) on 300B tokens
    "gpt3": dict(params=174.6e9, tokens=300e9, flops=3.14e23),
    # Caliskan et al. (2017), Table 1, GloVe on Common Crawl (840B tokens): WEAT effect sizes for
    # career/family with male/female first names, math/arts and science/arts with male/female terms
    "caliskan": dict(career_family=1.81, math_arts=1.06, science_arts=1.24),
}


# ---------------------------------------------------------------------- comparable units
# The real corpora scored by causal language models, and the text those scores are of
REAL_CORPORA = {("wikitext-2", "test"): "WikiText-2's test set: its words joined by single spaces, a newline per line",
                ("tinyshakespeare-char", "val"): "the last 10% of Tiny Shakespeare's characters"}


def scored_characters(benchmark: str, split: str) -> int:
    """The number of characters a leaderboard score on a real corpus is spread over: the text
    described in :data:`REAL_CORPORA` (for a character model, the characters it predicts)."""
    if (benchmark, split) == ("wikitext-2", "test"):
        return sum(len(" ".join(line)) + 1 for line in corpora.wikitext2("test"))
    if (benchmark, split) == ("tinyshakespeare-char", "val"):
        return len(gpt_experiments.char_data("shakespeare")[2]) - 1   # the first character is given, not predicted
    raise KeyError(f"no character count for {benchmark}/{split}; known: {sorted(REAL_CORPORA)}")


def _tokens(recipe: dict, steps: int | None = None) -> int:
    return (steps or recipe["steps"]) * recipe["batch_size"] * recipe["seq_len"]


def _info(name: str) -> dict:
    return hub.load(name).info


def training_tokens() -> dict[tuple[str, str], tuple[int | None, str]]:
    """``(benchmark, model) -> (tokens, how)``: the tokens each leaderboard model was trained on
    (steps x batch x sequence length, read from the recipes and the shipped artefacts), or
    ``None`` for count-based models, whose training is counting, not gradient steps."""
    out: dict[tuple[str, str], tuple[int | None, str]] = {}
    tiny, tl = _tokens(nnlm_experiments.TINYLANG_TRAIN), tinylang.benchmark()
    for name in nnlm_experiments.TINYLANG_MODELS:
        out[("tinylang", name)] = (tiny, "Chapter 4's TinyLang budget")
    out[("tinylang", "GPT (2 layers)")] = (tiny, "Chapter 4's TinyLang budget")
    teacher = _tokens(distill_experiments.TEACHER_TRAIN)
    student = _tokens(distill_experiments.STUDENT_TRAIN)
    for suffix in ("", ", int8"):
        out[("tinylang", f"GPT teacher (6 x 128){suffix}")] = (teacher, "teacher recipe")
        out[("tinylang", f"distilled student (1 x 128){suffix}")] = (student, "student's own steps; the teacher's "
                                                                     "forward passes not counted")
    for name, (label, _) in nnlm_experiments.WIKITEXT2_MODELS.items():
        out[("wikitext-2", label)] = (_tokens(nnlm_experiments.WIKITEXT2_TRAIN, _info(name)["steps"]), "shipped run")
    sc = _info("shakespeare-char")
    out[("tinyshakespeare-char", "GPT, shipped checkpoint")] = (sc["steps"] * sc["tokens_per_step"], "shipped run")
    out[("tinyshakespeare-char", "GPT, nanoGPT CPU recipe")] = (_tokens(gpt_experiments.RECIPES["nanogpt-cpu"][1]),
                                                                 "nanoGPT's CPU recipe")
    icl = _tokens(icl_experiments.TRAIN)
    for label in ("GPT, 1 layer", "GPT, 2 layers", "GPT, 2 layers, fixed mapping"):
        out[("icl-labels", label)] = (icl, "Chapter 9's recipe")
    pre, sft = _tokens(align_experiments.PRETRAIN), _tokens(align_experiments.SFT)
    out[("instruct-demos", "GPT 4x64, pretrained only")] = (pre, "pretraining")
    out[("instruct-demos", "GPT 4x64, SFT")] = (pre + sft, "pretraining + SFT")
    for label in ("GPT 4x64, SFT + DPO", "GPT 4x64, SFT + PPO"):
        out[("instruct-demos", label)] = (pre + sft, "pretraining + SFT; the preference stage not counted")
    for name, (bench, label) in bert_experiments.LEADERBOARD.items():
        info = _info(name)
        out[(bench, label)] = (info["steps"] * info["tokens_per_step"], "shipped run")
    for corpus, study in hub.load("bert-ablations").obj["studies"].items():
        spec = bert_experiments.ABLATION[corpus]
        recipe = bert_experiments.RECIPES[spec["recipe"]]["train"]
        for row in study["runs"]:
            out[(bert_experiments.ABLATION_BENCHMARKS[corpus], f"ablation: {row['variant']}")] = (
                _tokens(recipe, spec["steps"]), "ablation budget")
    counted = {"tinylang": sum(map(len, tl.train)) + len(tl.train),
               "wikitext-2": sum(map(len, corpora.wikitext2("train"))) + len(corpora.wikitext2("train"))}
    for bench, n in counted.items():
        for order in range(1, 6):
            out[(bench, ngram_experiments.model_name(order))] = (None, f"counted {n:,} tokens")
    for bench in ("tinylang-mlm", "tang-mlm", "wikitext-2-mlm"):
        out[(bench, "unigram frequencies (no context)")] = (None, "counted the training tokens")
    return out


# leaderboard (benchmark, model) -> the shipped artefact it scores
ARTEFACT_OF = {("tinylang", "GPT teacher (6 x 128)"): "tinylang-teacher",
               ("tinylang", "distilled student (1 x 128)"): "tinylang-student",
               ("tinylang", "GPT (2 layers)"): "tinylang-gpt",
               ("tinyshakespeare-char", "GPT, shipped checkpoint"): "shakespeare-char",
               ("icl-labels", "GPT, 1 layer"): "icl-1layer", ("icl-labels", "GPT, 2 layers"): "icl-2layer",
               ("icl-labels", "GPT, 2 layers, fixed mapping"): "icl-fixed",
               ("instruct-demos", "GPT 4x64, pretrained only"): "instruct-base",
               ("instruct-demos", "GPT 4x64, SFT"): "instruct-sft", ("instruct-demos", "GPT 4x64, SFT + DPO"): "instruct-dpo",
               ("instruct-demos", "GPT 4x64, SFT + PPO"): "instruct-ppo",
               **{("wikitext-2", label): name for name, (label, _) in nnlm_experiments.WIKITEXT2_MODELS.items()},
               **{(bench, label): name for name, (bench, label) in bert_experiments.LEADERBOARD.items()}}


def book_models(board: leaderboard.Leaderboard | None = None) -> list[dict]:
    """One row per model trained in the book. Language models come from the leaderboard and are
    put in comparable units: ``bits_per_char`` on the real corpora of :data:`REAL_CORPORA`,
    ``gap`` (nats per token above the true distribution) where a floor is known; masked language
    models keep nats per masked token (their tasks differ from next-token prediction). The other
    models (word vectors, classifiers, reward model, chain-of-thought models) carry their own
    task's score. Each row: chapter, model, benchmark, measure, value, params, train_tokens,
    train_flops (6ND, ``None`` for counting), flops_per_token (a forward pass, with attention
    for the shipped Transformers), train_seconds, artefact, note."""
    board = board or leaderboard.load()
    tokens = training_tokens()
    chars = {key: scored_characters(*key) for key in REAL_CORPORA}
    rows = []
    for e in board.entries:
        if e.kind != "model":
            continue
        floor = board.floor(e.benchmark, e.split)
        if (e.benchmark, e.split) in chars:
            measure, value = "bits/char", e.nll / LN2 / chars[(e.benchmark, e.split)]
        elif floor is not None:
            measure, value = "gap to floor, nats/token", e.cross_entropy - floor.cross_entropy
        else:
            measure, value = "nats/masked token", e.cross_entropy
        d, how = tokens[(e.benchmark, e.model)]
        artefact = ARTEFACT_OF.get((e.benchmark, e.model))
        rows.append(dict(chapter=e.chapter, model=e.model, benchmark=f"{e.benchmark} ({e.split})", measure=measure,
                         value=value, params=e.params, train_tokens=d,
                         train_flops=None if d is None else evaluate.training_flops(max(e.params, 1), d),
                         flops_per_token=None if d is None else _inference_flops(e.params, artefact),
                         train_seconds=e.train_time_s, artefact=artefact, note=how))
    rows += _task_models()
    return sorted(rows, key=lambda r: (r["chapter"], r["benchmark"], r["model"]))


def _inference_flops(params: int, artefact: str | None) -> float:
    """Forward FLOPs per token: ``2N``, plus Kaplan's attention term over a full context for the
    shipped Transformers (whose shapes are known)."""
    cfg = getattr(hub.load(artefact).obj, "cfg", None) if artefact else None
    if cfg is None or not hasattr(cfg, "n_layer"):
        return evaluate.flops_per_token(params, training=False)
    return evaluate.flops_per_token(params, cfg.n_layer, cfg.block_size, cfg.n_embd, training=False)


def _task_models() -> list[dict]:
    """The models scored on a task of their own rather than on the leaderboard."""
    from textbook_lm import embeddings

    rows = []
    questions = [q for qs in embeddings.ANALOGIES.values() for q in qs]
    for name in ("wikitext2-sgns", "wikitext2-glove"):
        v = embeddings.from_pretrained(name)
        acc, answered, _ = v.analogy_accuracy(questions)
        rows.append(dict(chapter=3, model=name, benchmark="the book's analogies", measure="accuracy", value=acc,
                         params=int(v.matrix.size), train_tokens=None, train_flops=None,
                         train_seconds=v.info["train_seconds"], artefact=name,
                         note=f"{answered} questions answerable; trained on WikiText-2"))
    ft = hub.load("bert-finetune").obj
    for task, model in bert_experiments.STUDY:
        res = ft[f"{task}/{model}"]
        for kind in ("pretrained", "scratch"):
            accs = res[kind]["accuracy"]
            rows.append(dict(chapter=7, model=f"{model} fine-tuned ({kind})", benchmark=f"{task} (test)",
                             measure="accuracy", value=float(np.mean(accs)), params=None, train_tokens=None,
                             train_flops=None, flops_per_token=None, train_seconds=res[kind]["seconds_per_run"], artefact=None,
                             note=f"mean of {len(accs)} seeds, {res['n_test']} test items"))
    for name in ("cot-direct", "cot-steps"):
        info = _info(name)
        acc = info["accuracy_by_hops"]
        rows.append(dict(chapter=9, model=name, benchmark="chains, 1-8 hops", measure="accuracy",
                         value=float(np.mean(list(acc.values()))), params=None,
                         train_tokens=_tokens(icl_experiments.TRAIN) + _tokens(icl_experiments.COT["train"]),
                         train_flops=None, flops_per_token=None, train_seconds=info["train_seconds"], artefact=name,
                         note="mean over hops; fine-tuned from icl-2layer"))
    rm = _info("instruct-rm")
    rows.append(dict(chapter=10, model="reward model (GPT 4x64 + scalar head)", benchmark="held-out preference pairs",
                     measure="accuracy", value=rm["held_out_accuracy"], params=None, train_tokens=None,
                     train_flops=None, flops_per_token=None, train_seconds=rm["train_seconds"], artefact="instruct-rm",
                     note=f"the noisy annotator's own agreement ceiling is {rm['ceiling']:.3f}"))
    for r in rows:
        r.setdefault("flops_per_token", None)
        if r["artefact"] in ("cot-direct", "cot-steps", "instruct-rm"):
            m = hub.load(r["artefact"]).obj
            r["params"] = sum(p.numel() for p in m.parameters())
            r["flops_per_token"] = evaluate.flops_per_token(r["params"], training=False)
            if r["train_tokens"]:
                r["train_flops"] = evaluate.training_flops(r["params"], r["train_tokens"])
    return rows


def anchors_bits_per_char() -> list[dict]:
    """The leaderboard's published anchors for the real corpora, in bits per character.
    WikiText-2 perplexities are per word of the same standard test set, so they convert with
    our word and character counts; nanoGPT's losses are nats per character of the same split."""
    board = leaderboard.load()
    out = []
    for a in leaderboard.ANCHORS:
        if a.benchmark == "wikitext-2":
            e = board.select("wikitext-2", "test")[0]
            bpc = math.log(a.perplexity) * e.n_tokens / LN2 / scored_characters("wikitext-2", "test")
        elif a.benchmark == "tinyshakespeare-char":
            bpc = math.log(a.perplexity) / LN2
        else:
            continue
        out.append(dict(benchmark=a.benchmark, model=a.model, perplexity=a.perplexity, bits_per_char=bpc,
                        source=a.source))
    return out


# ---------------------------------------------------------------------- a scaling law
# Chapter 8's five sizes plus three more, from 3 thousand to 2.7 million non-embedding parameters
SCALING_SIZES = [(1, 2, 16), (2, 2, 32), (2, 4, 48), (2, 4, 64), (3, 4, 80), (4, 4, 96), (4, 4, 128),
                 (6, 6, 192)]
SCALING_SEEDS = (0, 1, 2)


def scaling_study() -> dict:
    """Every size of :data:`SCALING_SIZES` for every seed of :data:`SCALING_SEEDS`, trained with
    Chapter 8's budget (:data:`textbook_lm.experiments.gpt.SWEEP_TRAIN`)."""
    rows = gpt_experiments.scaling_sweep(sizes=SCALING_SIZES, seeds=SCALING_SEEDS)
    return {"train": gpt_experiments.SWEEP_TRAIN, "runs": rows}


def scaling_fit(runs: list[dict], floor: float = 0.0, n_boot: int = 2000, seed: int = 0,
                min_params: int = 0) -> dict:
    """Fit ``loss = floor + a * N ** -alpha`` to the runs' final validation losses (one point per
    run, ``N`` = non-embedding parameters, runs with fewer than ``min_params`` left out), and a
    95% bootstrap interval on ``alpha``: each resample redraws, for every size, that size's runs
    (its seeds) with replacement, so the interval measures seed-to-seed noise given the form."""
    runs = [r for r in runs if r["params"] >= min_params]
    sizes = sorted({r["params"] for r in runs})
    by = {n: np.array([r["final_val_loss"] for r in runs if r["params"] == n]) for n in sizes}
    x = np.concatenate([[n] * len(by[n]) for n in sizes])
    y = np.concatenate([by[n] for n in sizes])
    fit = evaluate.fit_power_law(x, y, floor)
    rng = np.random.default_rng(seed)
    alphas = []
    for _ in range(n_boot):
        yb = np.concatenate([rng.choice(by[n], len(by[n])) for n in sizes])
        alphas.append(evaluate.fit_power_law(x, yb, floor)["alpha"])
    lo, hi = np.quantile(alphas, [0.025, 0.975])
    return {**fit, "low": float(lo), "high": float(hi), "floor": floor, "n_runs": len(y), "n_sizes": len(sizes),
            "sizes": sizes, "mean_loss": [float(by[n].mean()) for n in sizes]}


def compute_frontier(runs: list[dict]) -> dict:
    """Loss against training compute ``C = 6 N D`` along every run's validation curve, and the
    frontier: for each compute, the lowest loss any run had reached by then."""
    pts = sorted((6.0 * r["params"] * r["tokens_per_step"] * s, v, r["params"])
                 for r in runs for s, v in zip(r["val_step"], r["val_loss"]))
    best, front = math.inf, []
    for c, v, n in pts:
        if v < best:
            best = v
            front.append((c, v, n))
    return {"points": pts, "frontier": front}


# ---------------------------------------------------------------------- how sure: fine-tuning, item by item
FINETUNE_TASKS = [("grammaticality", "tinylang-bert"), ("poets", "tang-bert")]


def finetune_study(seeds=(0, 1, 2, 3, 4)) -> dict:
    """Chapter 7's fine-tuning study again (same settings, :data:`FINETUNE_TASKS`), keeping for
    every test item whether each run got it right and how confident it was (the probability of
    its predicted class), for the pretrained and the from-scratch model per seed and for the
    bag-of-words baseline."""
    from textbook_lm import finetune

    out = {"seeds": list(seeds), "settings": bert_experiments.TASK_FINETUNE}
    for name, shipped in FINETUNE_TASKS:
        bert, tok, _ = hub.load(shipped, kind="BERT")
        task = bert_experiments.task_for(name, tok)
        labels = task.test.labels
        res = {"labels": labels.tolist(), "classes": list(task.classes)}
        bow = finetune.bag_of_words_baseline(task, return_probs=True)["probs"]
        res["bag_of_words"] = _items(bow, labels)
        for kind, init in (("pretrained", bert), ("scratch", bert.cfg)):
            res[kind] = []
            for s in seeds:
                model, _ = finetune.fine_tune(init, task, seed=s, **bert_experiments.TASK_FINETUNE[name])
                res[kind].append(_items(finetune.probabilities(model, task.test), labels))
                print(f"{name} / {kind} / seed {s}: {np.mean(res[kind][-1]['correct']):.4f}", flush=True)
        out[f"{name}/{shipped}"] = res
    return out


def _items(probs: torch.Tensor, labels: torch.Tensor) -> dict:
    conf, pred = probs.max(-1)
    return {"correct": (pred == labels).int().tolist(), "confidence": [round(c, 4) for c in conf.tolist()]}


# ---------------------------------------------------------------------- contamination
def contamination_ngram(order: int = 3) -> dict:
    """A Kneser-Ney model of ``order`` on WikiText-2, fitted on the training text alone and on the
    training text with the test set pasted in once: test perplexity of each, and validation
    perplexity (text neither model saw), with the 13-gram overlap detector's verdict."""
    train, valid, test = (corpora.wikitext2(s) for s in ("train", "valid", "test"))
    out = {}
    for name, data in (("clean", train), ("leaked", train + test)):
        model = ngram.fit(data, order, "kn")
        out[name] = {"test": model.perplexity(test), "valid": model.perplexity(valid),
                     "overlap_13": evaluate.ngram_overlap(test, data, 13)["share"]}
    out["valid_overlap_13"] = evaluate.ngram_overlap(valid, train, 13)["share"]
    return out


def contamination_gpt(steps: int = 150, seed: int = 0) -> dict:
    """Chapter 8's shipped TinyLang GPT trained ``steps`` more steps on the test sentences: test
    and validation loss (nats/token) before and after, beside the entropy floor of each split."""
    model, vocab, _ = hub.load("tinylang-gpt")
    tl = tinylang.benchmark()
    eos = vocab.index("<eos>")
    from textbook_lm.nnlm import encode as enc, stream

    test_ids, valid_ids = enc(tl.test, vocab), enc(tl.valid, vocab)

    def losses(m):
        return {"test": tr.score_sequences(m, test_ids, eos).cross_entropy,
                "valid": tr.score_sequences(m, valid_ids, eos).cross_entropy}

    before = losses(model)
    leaked = copy.deepcopy(model).train()
    seed_all(seed)
    cfg = tr.TrainConfig(**{**nnlm_experiments.TINYLANG_TRAIN, "steps": steps, "warmup": 10, "lr": 1e-3,
                            "eval_every": steps, "seed": seed})
    leak_data = tr.TokenStream(stream(test_ids, eos))
    tr.train(leaked, leak_data, tr.TokenStream(stream(valid_ids, eos)), cfg, progress=False)
    after = losses(leaked.eval())
    floors = {"test": -sum(tl.test_logprob) / sum(len(s) + 1 for s in tl.test),
              "valid": -sum(tl.valid_logprob) / sum(len(s) + 1 for s in tl.valid)}
    return {"before": before, "after": after, "floor": floors, "steps": steps,
            "tokens": steps * cfg.batch_size * cfg.seq_len}


# ---------------------------------------------------------------------- bias probes
# Caliskan et al. (2017) tests 6 and 7, with words WikiText-2's vocabulary has often enough to
# have a vector (the paper's lists use first names, which WikiText-2 rarely repeats), and a
# control: two random halves of one attribute set, where any "bias" is noise.
WEAT_SETS = {
    "male / female vs career / family": (
        ["he", "him", "his", "man", "men", "boy", "father", "son", "brother", "husband", "king", "uncle"],
        ["she", "her", "hers", "woman", "women", "girl", "mother", "daughter", "sister", "wife", "queen", "aunt"],
        ["career", "business", "company", "salary", "office", "professional", "manager", "executive", "work",
         "industry"],
        ["family", "home", "children", "parents", "marriage", "wedding", "relatives", "household", "child", "cousins"]),
    "male / female vs science / arts": (
        ["he", "him", "his", "man", "men", "boy", "father", "son", "brother", "husband", "king", "uncle"],
        ["she", "her", "hers", "woman", "women", "girl", "mother", "daughter", "sister", "wife", "queen", "aunt"],
        ["science", "technology", "physics", "chemistry", "experiment", "astronomy", "mathematics", "engineering",
         "laboratory", "scientific"],
        ["poetry", "art", "dance", "literature", "novel", "symphony", "drama", "sculpture", "painting", "music"]),
    "control: numbers vs numbers": (
        ["one", "two", "three", "four", "five", "six"], ["seven", "eight", "nine", "ten", "eleven", "twelve"],
        ["career", "business", "company", "salary", "office", "professional", "manager", "executive", "work",
         "industry"],
        ["family", "home", "children", "parents", "marriage", "wedding", "relatives", "household", "child", "cousins"]),
}


def weat_sets(vectors, n_perm: int = 10_000, seed: int = 0) -> dict:
    """:func:`textbook_lm.evaluate.weat` for every test of :data:`WEAT_SETS` on ``vectors`` (an
    :class:`~textbook_lm.embeddings.Vectors`); words without a vector are dropped (and the two
    target sets cut to the same size), and reported; a test left with fewer than two targets per
    set or no attribute words has ``None`` for its numbers."""
    out = {}
    for name, sets in WEAT_SETS.items():
        kept = [[x for x in s if x in vectors.index] for s in sets]
        k = min(len(kept[0]), len(kept[1]))
        kept[0], kept[1] = kept[0][:k], kept[1][:k]
        missing = sorted({x for s, ks in zip(sets, kept) for x in s if x not in ks})
        if k < 2 or not kept[2] or not kept[3]:
            out[name] = {"statistic": None, "effect_size": None, "p_value": None, "missing": missing}
            continue
        mats = [np.stack([vectors[x] for x in s]) for s in kept]
        out[name] = {**evaluate.weat(*mats, n_perm=n_perm, seed=seed), "missing": missing}
    return out


OCCUPATIONS = ["nurse", "teacher", "secretary", "dancer", "singer", "writer", "doctor", "lawyer", "soldier",
               "engineer", "scientist", "politician", "president", "farmer", "priest", "captain"]


@torch.no_grad()
def template_probe(bert, tok, template: str = "[MASK] worked as a {} .", words=("he", "she"),
                   occupations=OCCUPATIONS) -> dict:
    """Kurita et al.'s (2019) probe of a masked language model: for each occupation, the
    probability of each of ``words`` at the first ``[MASK]`` of ``template`` (``raw``), the same
    with the occupation masked too (``prior``), and the log bias score
    ``log(p(w1) / p(w2)) - log(prior(w1) / prior(w2))`` (``log_bias``, per occupation): how much
    the occupation moves the choice between the two words beyond their overall frequencies.
    Occupations the tokenizer splits into several pieces are skipped."""
    from textbook_lm.mlm import fill_mask

    ids = {x: tok.encode(x) for x in words}
    if len(words) != 2 or any(len(i) != 1 for i in ids.values()):
        raise ValueError(f"need two words, each one token of this tokenizer; got {words}")

    def probs(text):
        top = dict(fill_mask(bert, tok, text, k=tok.vocab_size)[0])
        return {x: top[tok.itos[ids[x][0]]] for x in words}

    prior = probs(template.format("[MASK]"))
    raw = {job: probs(template.format(job)) for job in occupations if len(tok.encode(job)) == 1}
    w1, w2 = words
    bias = {job: math.log(p[w1] / p[w2]) - math.log(prior[w1] / prior[w2]) for job, p in raw.items()}
    return {"raw": raw, "prior": prior, "log_bias": bias}


# ---------------------------------------------------------------------- hallucination
@torch.no_grad()
def hallucination(model, letters=(2, 3, 4, 5, 6, 7), n: int = 100, seed: int = 0) -> dict:
    """Chapter 10's chat model asked to reverse, sort or count ``k`` letters for each ``k`` of
    ``letters`` (training never went beyond :data:`textbook_lm.data.instruct.MAX_LETTERS`): per
    ``k``, the share of greedy answers that are right and the model's confidence in them: the
    product, over the answer's tokens (after any filler, before the full stop), of the
    probability the model gives that token among the possible answers (the letters, or the
    number words). Returns
    ``{k: {"accuracy", "confidence", "right", "conf", "examples"}}`` (per-item lists in
    ``right`` and ``conf``; three prompts and responses in ``examples``)."""
    import random

    from textbook_lm import align

    rng = random.Random(seed)
    out = {}
    for k in letters:
        exs = []
        for i in range(n):
            kind = ("reverse", "sort", "count")[i % 3]
            args = tuple(rng.sample(w.LETTERS, k))
            ans = {"reverse": args[::-1], "sort": tuple(sorted(args)), "count": (w.NUMBERS[k],)}[kind]
            exs.append(w.Example(kind, args, ans))
        prompts = [w.encode(e.prompt) for e in exs]
        resp = align.sample(model, prompts, align_experiments.MAX_NEW, w.EOS, temperature=0.0, seed=seed)
        ids, _ = align.make_batch(prompts, resp, pad=w.PAD)
        logits = model(ids)                                                  # (B, T, V)
        conf = []
        for b, (p, r, e) in enumerate(zip(prompts, resp, exs)):
            words = w.decode(r)
            lead = next((len(f) for f in w.FILLERS if words[:len(f)] == f), 0)
            end = words.index(".") if "." in words else len(words)
            options = torch.tensor(w.encode(w.NUMBERS if e.kind == "count" else w.LETTERS))
            c = 1.0
            for t in range(len(p) + lead, len(p) + max(end, lead + 1)):       # the answer's tokens
                dist = logits[b, t - 1, options].softmax(-1)                 # among the possible answers
                c *= float(dist[(options == ids[b, t]).nonzero()].sum())
            conf.append(c)
        right = [w.answer_of(w.decode(r)) == list(e.answer) for e, r in zip(exs, resp)]
        out[k] = {"accuracy": float(np.mean(right)), "confidence": float(np.mean(conf)),
                  "right": right, "conf": conf, "examples": [(e.prompt, w.decode(r)) for e, r in zip(exs[:3], resp)]}
    return out


# ---------------------------------------------------------------------- calibration of next-token predictions
@torch.no_grad()
def token_calibration(model, sequences: list[list[int]], eos: int | None, block: int) -> dict:
    """For every predicted token of ``sequences`` (ids, joined into one stream, each followed by
    ``eos`` unless it is ``None``), read in windows of ``block`` tokens: the model's top
    probability and whether its top token was the next one: ``{"confidence", "correct"}``."""
    dev = next(model.parameters()).device
    ids = torch.tensor([t for s in sequences for t in [*s, *([] if eos is None else [eos])]], device=dev)
    conf, correct = [], []
    model.eval()
    for i in range(0, len(ids) - 1, block):
        x = ids[i:i + block + 1]
        if len(x) < 2:
            break
        p = model(x[None, :-1])[0].float().softmax(-1)
        c, top = p.max(-1)
        conf += c.tolist()
        correct += (top == x[1:]).tolist()
    return {"confidence": np.array(conf), "correct": np.array(correct, dtype=float)}


# ---------------------------------------------------------------------- command line
STUDIES = {"scaling": scaling_study, "finetune": finetune_study}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m textbook_lm.experiments.evaluate",
                                 description="Chapter 12: the studies behind the chapter's measurements.")
    ap.add_argument("command", choices=["study"])
    ap.add_argument("name", choices=sorted(STUDIES))
    add_output_args(ap)
    args = ap.parse_args(argv)
    command = f"python -m textbook_lm.experiments.evaluate {args.command} {args.name}"
    t0 = time.perf_counter()
    result = STUDIES[args.name]()
    seconds = round(time.perf_counter() - t0, 1)
    path = hub.save({**result, "command": command, "seconds": seconds}, output_dir(args, f"eval-{args.name}"),
                    info={"command": command, "seconds": seconds})
    print(f"eval-{args.name}: {seconds:.0f} s -> {path}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
