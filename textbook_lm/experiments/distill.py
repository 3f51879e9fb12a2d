"""Chapter 11's experiments: students of the book's GPT and BERT, and the other roads to a
small model, each measured.

* :func:`train_teacher`: a 6-layer GPT on TinyLang, the chapter's teacher.
* :func:`student_study`: students of 1, 2 and 3 layers (the teacher's width), each trained
  alone, with the distillation loss, and with the distillation loss after initialisation
  from the teacher's own layers, at equal steps on the same transfer set, over seeds;
  :func:`transfer_study` repeats alone vs distilled with less transfer data, and
  :func:`temperature_study` sweeps the temperature and the soft/hard mix.
* :func:`bert_study`: a DistilBERT-style student of the TinyLang BERT with the triple loss,
  the ablation that removes each term, each student then fine-tuned on grammaticality.
* :func:`omitted_word`: Hinton et al.'s omitted-class experiment with one word of TinyLang.
* :func:`compression`: dynamic int8 quantisation and magnitude pruning of the teacher (and
  the quantised student), with sizes and speeds measured by :func:`speed` and
  :func:`file_size`.

``python -m textbook_lm.experiments.distill train teacher|student`` and ``... study NAME``
make the shipped artefacts (``--into-package``) or write to ``--out``.
"""
from __future__ import annotations

import argparse
import copy
import io
import math
import time
import warnings

import numpy as np
import torch
import torch.nn as nn

from textbook_lm import distill, hub, metrics
from textbook_lm import seed as seed_all
from textbook_lm import train as tr
from textbook_lm.data import tinylang
from textbook_lm.experiments import add_output_args, output_dir
from textbook_lm.experiments import nnlm as nnlm_experiments
from textbook_lm.gpt import GPT, GPTConfig
from textbook_lm.nnlm import encode, frequency_vocab, stream
from textbook_lm.utils import count_params

__all__ = ["TEACHER", "TEACHER_TRAIN", "STUDENT_TRAIN", "KD", "SIZES", "SEEDS", "HOW", "tinylang_data",
           "train_teacher", "teacher_layers", "make_student", "train_student", "evaluate_lm", "agreement",
           "student_study", "TRANSFER_SIZES", "transfer_study", "TEMPERATURES", "temperature_study",
           "BERT_STUDENT", "BERT_VARIANTS", "bert_study", "OMIT", "omitted_word", "file_size", "speed",
           "prune", "quantise", "PRUNE", "compression", "PUBLISHED", "leaderboard_entries", "main"]

TEACHER = dict(block_size=64, n_layer=6, n_head=4, n_embd=128, bias=False, activation="gelu")
TEACHER_TRAIN = dict(steps=2000, batch_size=32, seq_len=64, lr=2e-3, warmup=100, eval_every=250)
# every student: the same steps, batches and schedule; only the loss and the start differ
STUDENT_TRAIN = dict(steps=600, batch_size=32, seq_len=64, lr=2e-3, warmup=50, eval_every=100, eval_batches=None)
KD = dict(T=1.0, alpha=1.0)          # chosen by temperature_study (the best on validation)
SIZES = (1, 2, 3)                    # student layers, of the teacher's 6
SEEDS = (0, 1, 2)
HOW = ("alone", "distilled", "distilled + init")


# ---------------------------------------------------------------------- data and teacher
def tinylang_data(n_train: int | None = None):
    """(vocab, training stream ids of the first ``n_train`` sentences (all by default),
    validation TokenStream, test sentences as id lists) of the TinyLang benchmark."""
    tl = tinylang.benchmark()
    vocab = frequency_vocab(tl.train)
    eos = vocab.index("<eos>")
    return (vocab, stream(encode(tl.train[:n_train], vocab), eos),
            tr.TokenStream(stream(encode(tl.valid, vocab), eos)), encode(tl.test, vocab))


def train_teacher(progress: bool = False):
    """The chapter's teacher: a 6-layer, 128-wide GPT on TinyLang. Returns (model, vocab, history)."""
    return nnlm_experiments.train_tinylang("GPT", factory=lambda V: GPT(GPTConfig(V, **TEACHER)),
                                           progress=progress, train_overrides=TEACHER_TRAIN)


def load_teacher():
    """(teacher in eval mode, vocab, info) from the shipped ``tinylang-teacher``."""
    model, vocab, info = hub.load("tinylang-teacher")
    return model.eval(), vocab, info


# ---------------------------------------------------------------------- students
def teacher_layers(n_teacher: int, k: int) -> list[int]:
    """``k`` evenly spaced block indices of ``n_teacher``, from the first: every other one when
    ``k = n_teacher / 2`` (DistilBERT's choice)."""
    return [round(i * n_teacher / k) for i in range(k)]


def make_student(teacher: GPT, n_layer: int, init: bool, seed: int = 0) -> GPT:
    """A GPT of the teacher's width with ``n_layer`` blocks: a copy of the teacher's blocks
    :func:`teacher_layers` (and embeddings) if ``init``, else random weights."""
    seed_all(seed)
    if init:
        return distill.student_from_teacher(teacher, teacher_layers(teacher.cfg.n_layer, n_layer))
    cfg = teacher.cfg
    return GPT(GPTConfig(cfg.vocab_size, block_size=cfg.block_size, n_layer=n_layer, n_head=cfg.n_head,
                         n_embd=cfg.n_embd, bias=cfg.bias, activation=cfg.activation))


def train_student(teacher: GPT, targets: distill.TeacherTargets, val: tr.TokenStream, n_layer: int, how: str,
                  seed: int = 0, T: float | None = None, alpha: float | None = None, settings: dict | None = None,
                  progress: bool = False):
    """Train one student (``how`` in :data:`HOW`) on ``targets``; returns (student, history).
    "alone" is the same loop with the hard-label loss only (alpha = 0): same windows, same
    steps, same schedule."""
    if how not in HOW:
        raise ValueError(f"how must be one of {HOW}, got {how!r}")
    T, alpha = KD["T"] if T is None else T, KD["alpha"] if alpha is None else alpha
    student = make_student(teacher, n_layer, init=how == "distilled + init", seed=seed)
    student.to(next(teacher.parameters()).device)
    d = distill.Distiller(student, teacher, T=T, alpha=0.0 if how == "alone" else alpha)
    h = tr.train(d, targets, val, tr.TrainConfig(**{**STUDENT_TRAIN, **(settings or {})}, seed=seed),
                 progress=progress)
    return student.eval(), h


def evaluate_lm(model: nn.Module, sequences: list[list[int]], eos: int) -> float:
    """Nats per token on ``sequences`` (the book's convention: every token plus ``<eos>``)."""
    s = tr.score_sequences(model, sequences, eos)
    return s.nll / s.n_tokens


AGREEMENT = dict(distances=(1, 3, 5, 7, 9), n=200, seed=0)


def agreement(model: nn.Module, vocab: list[str], spec: dict = AGREEMENT) -> float:
    """Fraction of TinyLang minimal pairs (subject-verb agreement at the distances of ``spec``)
    in which ``model`` gives the grammatical sentence the higher probability."""
    lang, eos = tinylang.TinyLang(), vocab.index("<eos>")
    good, bad = [], []
    for d in spec["distances"]:
        for p in lang.minimal_pairs(d, spec["n"], seed=spec["seed"]):
            good.append(p.good)
            bad.append(p.bad)
    lp = lambda s: tr.sequence_logprobs(model, encode(s, vocab), eos)
    return metrics.pair_accuracy(lp(good), lp(bad))


def student_study(sizes=SIZES, seeds=SEEDS, how=HOW, progress: bool = False) -> dict:
    """Every (size, how, seed): validation curve, test nats/token, agreement accuracy,
    parameters and training seconds; the teacher's and a unigram model's numbers for scale."""
    teacher, vocab, _ = load_teacher()
    _, train_ids, val, test = tinylang_data()
    eos = vocab.index("<eos>")
    targets = distill.TeacherTargets(train_ids, teacher, STUDENT_TRAIN["seq_len"])
    counts = torch.bincount(torch.as_tensor(train_ids), minlength=len(vocab)).double() + 1
    unigram = -float(sum(torch.log(counts[t] / counts.sum()) for s in test for t in s + [eos])) / \
        sum(len(s) + 1 for s in test)
    out = {"teacher": {"params": count_params(teacher), "test": evaluate_lm(teacher, test, eos),
                       "val": tr.evaluate(teacher, val, 64), "agreement": agreement(teacher, vocab)},
           "unigram": {"test": unigram}, "kd": KD, "train": STUDENT_TRAIN, "runs": []}
    for n_layer in sizes:
        for h_ in how:
            for seed in seeds:
                t0 = time.perf_counter()
                student, h = train_student(teacher, targets, val, n_layer, h_, seed, progress=progress)
                row = {"layers": n_layer, "how": h_, "seed": seed, "params": count_params(student),
                       "val_step": h.val_step, "val_curve": h.val_loss, "test": evaluate_lm(student, test, eos),
                       "agreement": agreement(student, vocab), "seconds": round(time.perf_counter() - t0, 1)}
                out["runs"].append(row)
                print(f"{n_layer} layers, {h_:>16}, seed {seed}: test {row['test']:.4f}, agreement "
                      f"{row['agreement']:.3f}, {row['seconds']:.0f} s", flush=True)
    return out


TRANSFER_SIZES = (500, 2000, 20000)      # sentences of the transfer set (20,000: all of TinyLang's training split)


def transfer_study(sizes=TRANSFER_SIZES, seeds=SEEDS, n_layer: int = 1, progress: bool = False) -> dict:
    """The 1-layer student alone vs distilled on the first ``sizes`` training sentences, at
    equal steps; each run's best validation loss (early stopping, fair to the student that
    overfits) and final one."""
    teacher, vocab, _ = load_teacher()
    out = {"sizes": list(sizes), "layers": n_layer, "runs": []}
    for n in sizes:
        _, ids, val, _ = tinylang_data(n)
        targets = distill.TeacherTargets(ids, teacher, STUDENT_TRAIN["seq_len"])
        for h_ in ("alone", "distilled"):
            for seed in seeds:
                _, h = train_student(teacher, targets, val, n_layer, h_, seed, progress=progress)
                out["runs"].append({"sentences": n, "tokens": len(ids), "how": h_, "seed": seed,
                                    "best_val": min(h.val_loss), "final_val": h.val_loss[-1],
                                    "val_step": h.val_step, "val_curve": h.val_loss})
                print(f"{n} sentences, {h_}, seed {seed}: best val {min(h.val_loss):.4f}", flush=True)
    return out


TEMPERATURES = dict(T=(1.0, 2.0, 4.0), alpha=(0.5, 1.0))


def temperature_study(grid: dict = TEMPERATURES, seed: int = 0, n_layer: int = 1) -> dict:
    """The 1-layer student distilled with every (T, alpha) of ``grid`` (one seed): final
    validation loss; how :data:`KD` was chosen."""
    teacher, vocab, _ = load_teacher()
    _, ids, val, _ = tinylang_data()
    targets = distill.TeacherTargets(ids, teacher, STUDENT_TRAIN["seq_len"])
    rows = []
    for T in grid["T"]:
        for alpha in grid["alpha"]:
            _, h = train_student(teacher, targets, val, n_layer, "distilled", seed, T=T, alpha=alpha)
            rows.append({"T": T, "alpha": alpha, "val": h.val_loss[-1]})
            print(f"T {T}, alpha {alpha}: val {h.val_loss[-1]:.4f}", flush=True)
    return {"grid": {k: list(v) for k, v in grid.items()}, "seed": seed, "rows": rows}


# ---------------------------------------------------------------------- DistilBERT-style
BERT_STUDENT = dict(layers=[0], T=2.0, steps=1500, seeds=SEEDS)
# (name, w_soft, w_mlm, w_cos, init from the teacher): the shape of DistilBERT's Table 4
BERT_VARIANTS = [("triple loss + teacher init", 1, 1, 1, True),
                 ("without soft targets", 0, 1, 1, True),
                 ("without cosine", 1, 1, 0, True),
                 ("without MLM", 1, 0, 1, True),
                 ("triple loss, random init", 1, 1, 1, False),
                 ("MLM only, random init", 0, 1, 0, False)]


def bert_study(variants=BERT_VARIANTS, spec: dict = BERT_STUDENT, progress: bool = False) -> dict:
    """Students of the shipped ``tinylang-bert`` (2 x 64) with its first layer only, trained
    with each variant's loss on the teacher's corpus and schedule; masked-LM validation loss,
    then fine-tuned on Chapter 7's grammaticality task (test accuracy), per seed. The
    teacher is fine-tuned the same way for reference."""
    from textbook_lm.bert import BERT, BertConfig
    from textbook_lm.experiments import bert as bert_experiments
    from textbook_lm.finetune import accuracy, fine_tune
    from textbook_lm.mlm import evaluate_mlm

    teacher, tok, _ = hub.load("tinylang-bert", kind="BERT")
    teacher.eval()
    recipe = bert_experiments.RECIPES["tinylang-bert"]
    data = bert_experiments.corpus_data("tinylang", recipe["nsp"], recipe["model"]["block_size"], recipe["masking"])
    task = bert_experiments.task_for("grammaticality", tok)
    tune = bert_experiments.TASK_FINETUNE["grammaticality"]
    out = {"spec": spec, "teacher": {"params": count_params(teacher), "mlm": evaluate_mlm(teacher, data[2], None)["loss"],
                                     "accuracy": []}, "variants": []}
    for seed in spec["seeds"]:
        clf, _ = fine_tune(teacher, task, seed=seed, **tune)
        out["teacher"]["accuracy"].append(accuracy(clf, task.test))
    for name, w_soft, w_mlm, w_cos, init in variants:
        row = {"name": name, "w_soft": w_soft, "w_mlm": w_mlm, "w_cos": w_cos, "init": init, "mlm": [],
               "accuracy": [], "seconds": []}
        for seed in spec["seeds"]:
            seed_all(seed)
            if init:
                student = distill.student_from_teacher(teacher, spec["layers"])
            else:
                student = BERT(BertConfig(**{**teacher.cfg.__dict__, "n_layer": len(spec["layers"])}))
            d = distill.BertDistiller(student, teacher, spec["T"], w_soft, w_mlm, w_cos)
            t0 = time.perf_counter()
            tr.train(d, data[1], data[2], tr.TrainConfig(**{**recipe["train"], "steps": spec["steps"]}, seed=seed),
                     progress=progress)
            row["seconds"].append(round(time.perf_counter() - t0, 1))
            row["mlm"].append(evaluate_mlm(student.eval(), data[2], None)["loss"])
            clf, _ = fine_tune(student, task, seed=seed, **tune)
            row["accuracy"].append(accuracy(clf, task.test))
            print(f"{name}, seed {seed}: MLM {row['mlm'][-1]:.4f}, grammaticality {row['accuracy'][-1]:.3f}",
                  flush=True)
        row["params"] = count_params(student)
        out["variants"].append(row)
    return out


# ---------------------------------------------------------------------- Hinton's omitted class
OMIT = dict(word="horse", layers=1, seeds=SEEDS, hows=(("alone", 1.0, 0.0), ("distilled, T 2, alpha 0.5", 2.0, 0.5),
                                                       ("distilled, soft targets only", 2.0, 1.0)))


def _mean_prob(model: nn.Module, x: torch.Tensor, token: int, batch: int = 64) -> float:
    with torch.no_grad():
        return float(torch.cat([model(x[i:i + batch]).softmax(-1)[..., token].flatten()
                                for i in range(0, len(x), batch)]).mean())


def fit_logit_bias(student: nn.Module, teacher_prob: float, x: torch.Tensor, token: int) -> float:
    """The bias on ``token``'s logit that makes the student's mean probability of it over the
    transfer windows ``x`` equal the teacher's (bisection): it uses no example of the word."""
    lo, hi = -10.0, 20.0
    for _ in range(40):
        mid = (lo + hi) / 2
        if _mean_prob(distill.LogitBias(student, token, mid), x, token) < teacher_prob:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def omitted_word(spec: dict = OMIT, progress: bool = False) -> dict:
    """Students trained on TinyLang's training sentences *without* ``spec['word']``, alone or
    distilled; on the test sentences that contain the word: the log-probability of the word
    where it occurs and nats per token, with and without the bias correction, beside the teacher."""
    teacher, vocab, _ = load_teacher()
    tl = tinylang.benchmark()
    eos, token = vocab.index("<eos>"), vocab.index(spec["word"])
    kept = [s for s in tl.train if spec["word"] not in s]
    ids = stream(encode(kept, vocab), eos)
    _, _, val, _ = tinylang_data()
    targets = distill.TeacherTargets(ids, teacher, STUDENT_TRAIN["seq_len"])
    with_word = [s for s in tl.test if spec["word"] in s]
    seqs = encode(with_word, vocab)

    def word_logprob(model):            # mean log-probability of the word where it is the next token
        x = torch.full((len(seqs), max(map(len, seqs)) + 1), eos)
        for r, s in enumerate(seqs):
            x[r, 1:len(s) + 1] = torch.tensor(s)
        with torch.no_grad():
            lp = model(x[:, :-1]).log_softmax(-1)
        y = x[:, 1:]
        return float(lp[..., token][y == token].mean())

    def measure(model):
        return {"word_logprob": word_logprob(model), "nats": evaluate_lm(model, seqs, eos),
                "agreement": agreement(model, vocab)}

    teacher_prob = _mean_prob(teacher, targets.x, token)
    out = {"word": spec["word"], "removed_sentences": len(tl.train) - len(kept), "kept_sentences": len(kept),
           "test_sentences": len(with_word), "word_in_transfer_set": int((torch.as_tensor(ids) == token).sum()),
           "teacher": measure(teacher.eval()), "teacher_mean_prob": teacher_prob, "runs": []}
    for name, T, alpha in spec["hows"]:
        for seed in spec["seeds"]:
            how = "alone" if alpha == 0 else "distilled"
            student, _ = train_student(teacher, targets, val, spec["layers"], how, seed, T=T, alpha=alpha,
                                       progress=progress)
            b = fit_logit_bias(student, teacher_prob, targets.x, token)
            row = {"how": name, "seed": seed, "T": T, "alpha": alpha, **measure(student), "bias": b,
                   "corrected": measure(distill.LogitBias(student, token, b).eval())}
            out["runs"].append(row)
            print(f"{name}, seed {seed}: log p(word) {row['word_logprob']:.2f} -> {row['corrected']['word_logprob']:.2f} "
                  f"with bias {b:+.2f}; nats {row['nats']:.3f} -> {row['corrected']['nats']:.3f}", flush=True)
    return out


# ---------------------------------------------------------------------- compression, measured as a user would
def file_size(model: nn.Module, half: bool = False) -> int:
    """Bytes of ``torch.save(model.state_dict())`` (float16 copies of float tensors if ``half``)."""
    sd = model.state_dict()
    if half:
        sd = {k: v.half() if torch.is_tensor(v) and v.is_floating_point() else v for k, v in sd.items()}
    buf = io.BytesIO()
    torch.save(sd, buf)
    return buf.getbuffer().nbytes


def speed(model: nn.Module, batch_size: int, seq_len: int = 64, repeats: int = 50, vocab_size: int | None = None) -> dict:
    """Median seconds of one forward pass over ``(batch_size, seq_len)`` tokens on the model's
    device (after warm-up), and tokens per second."""
    dev = next(model.parameters(), torch.empty(0)).device
    V = vocab_size or model.cfg.vocab_size
    x = torch.randint(0, V, (batch_size, seq_len), generator=torch.Generator().manual_seed(0)).to(dev)
    times = []
    with torch.no_grad():
        for i in range(repeats + 3):
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            model(x)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            if i >= 3:
                times.append(time.perf_counter() - t0)
    t = float(np.median(times))
    return {"seconds": t, "tokens_per_s": batch_size * seq_len / t}


def quantise(model: nn.Module) -> nn.Module:
    """A copy with every ``nn.Linear`` dynamically quantised to int8 (weights stored in int8,
    activations quantised on the fly), for the CPU."""
    with warnings.catch_warnings():          # torch >= 2.13 warns that this API will move to the torchao package
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*torch.ao.quantization is deprecated.*")
        return torch.ao.quantization.quantize_dynamic(copy.deepcopy(model).cpu().eval(), {nn.Linear},
                                                      dtype=torch.qint8)


def prune(model: nn.Module, amount: float) -> nn.Module:
    """A copy with the smallest-magnitude ``amount`` of the weights of every ``nn.Linear`` in
    the blocks set to zero (per layer). The tensors stay dense: same size, same speed."""
    pruned = copy.deepcopy(model).eval()
    with torch.no_grad():
        for m in pruned.blocks.modules():                      # not the (tied) embedding
            if isinstance(m, nn.Linear):
                w = m.weight
                k = int(amount * w.numel())
                if k:
                    cut = w.abs().flatten().kthvalue(k).values
                    w[w.abs() <= cut] = 0.0
    return pruned


PRUNE = (0.5, 0.7, 0.9)


def compression(progress: bool = False) -> dict:
    """Teacher, shipped student, their int8 versions and pruned teachers: parameters, bytes
    (float32 state dict; float16 for the shipped files), test nats/token, agreement, and
    speed at batch 1 and 32 on this machine's CPU."""
    teacher, vocab, _ = load_teacher()
    student, _, _ = hub.load("tinylang-student")
    _, _, _, test = tinylang_data()
    eos = vocab.index("<eos>")
    student.eval()
    models = {"teacher (6 layers)": (teacher, teacher), "student (1 layer, distilled + init)": (student, student),
              "teacher, int8": (quantise(teacher), teacher), "student, int8": (quantise(student), student)}
    for amount in PRUNE:
        models[f"teacher, {amount:.0%} pruned"] = (prune(teacher, amount), teacher)
    for k in (2, 3):                    # speed and size depend on the shape only; their quality is in student_study
        shape = make_student(teacher, k, init=True).eval()
        models[f"student ({k} layers), shape only"] = (shape, shape)
    rows = []
    for name, (m, source) in models.items():
        s1, s32 = speed(m, 1, vocab_size=len(vocab)), speed(m, 32, vocab_size=len(vocab))
        nonzero = sum(int((p != 0).sum()) for p in m.parameters()) if "pruned" in name else None
        quality = "shape only" not in name
        rows.append({"name": name, "params": count_params(source), "nonzero": nonzero, "bytes": file_size(m),
                     "test": evaluate_lm(m, test, eos) if quality else None,
                     "agreement": agreement(m, vocab) if quality else None,
                     "ms_batch1": 1000 * s1["seconds"], "ms_batch32": 1000 * s32["seconds"],
                     "tokens_per_s_batch1": s1["tokens_per_s"], "tokens_per_s_batch32": s32["tokens_per_s"]})
        print(f"{name}: test {rows[-1]['test'] or float('nan'):.4f}, {rows[-1]['bytes'] / 1e6:.2f} MB, "
              f"{rows[-1]['ms_batch1']:.1f} ms (1), {rows[-1]['ms_batch32']:.1f} ms (32)", flush=True)
    return {"torch": torch.__version__, "threads": torch.get_num_threads(), "rows": rows}


# ---------------------------------------------------------------------- published anchors
# Checked against the papers (section or table given); printed beside the chapter's numbers.
PUBLISHED = {
    "hinton_mnist": dict(source="Hinton, Vinyals and Dean (2015), section 3", teacher_errors=67, small_alone_errors=146,
                         small_distilled_errors=74, T=20,
                         note="784-1200-1200-10 with dropout vs 784-800-800-10; 10,000 test digits"),
    "hinton_omitted_3": dict(source="Hinton, Vinyals and Dean (2015), section 3", errors=206, errors_on_3=133,
                             threes=1010, bias_shift=3.5, errors_after=109, errors_on_3_after=14),
    "hinton_speech_3pct": dict(source="Hinton, Vinyals and Dean (2015), section 6, Table 5",
                               hard_100pct=58.9, hard_3pct=44.5, soft_3pct=57.0,
                               note="test frame accuracy, %; the 3% hard-target model needed early stopping"),
    "distilbert": dict(source="Sanh et al. (2019), Tables 1 and 3", glue_bert=79.5, glue_distilbert=77.0,
                       params_bert=110e6, params_distilbert=66e6, seconds_bert=668, seconds_distilbert=410,
                       note="GLUE dev macro-score; CPU, batch 1, one pass over STS-B dev"),
    "distilbert_ablation": dict(source="Sanh et al. (2019), Table 4",
                                rows={"without soft targets (L_ce)": -2.96, "without cosine (L_cos)": -1.46,
                                      "without MLM (L_mlm)": -0.31, "random init instead of teacher's layers": -3.69},
                                note="change in GLUE macro-score from the triple loss with teacher initialisation"),
    "tinybert": dict(source="Jiao et al. (2020), abstract", share_of_teacher=0.968, smaller=7.5, faster=9.4,
                     note="TinyBERT-4 vs BERT-base on GLUE ('more than 96.8%')"),
    "minilm": dict(source="Wang et al. (2020), abstract", share_of_teacher=0.99, share_of_parameters=0.5,
                   note="'more than 99% accuracy on SQuAD 2.0 and several GLUE tasks' with half the parameters "
                        "and computation"),
    "han_pruning": dict(source="Han et al. (2015), abstract", alexnet=9, vgg16=13,
                        note="times fewer parameters without accuracy loss, after pruning and retraining"),
}


# ---------------------------------------------------------------------- leaderboard
LEADERBOARD_COMMAND = "python -m textbook_lm.experiments.leaderboard reproduce distill"


def leaderboard_entries() -> list:
    """The teacher and the shipped student on TinyLang's test set, each also in int8."""
    from textbook_lm.leaderboard import Entry
    teacher, vocab, t_info = load_teacher()
    student, _, s_info = hub.load("tinylang-student")
    _, _, _, test = tinylang_data()
    eos = vocab.index("<eos>")
    entries = []
    for label, model, info in (("GPT teacher (6 x 128)", teacher, t_info),
                               ("distilled student (1 x 128)", student.eval(), s_info)):
        for suffix, m in (("", model), (", int8", quantise(model))):
            s = tr.score_sequences(m, test, eos)
            entries.append(Entry(label + suffix, "tinylang", "test", s.nll, s.n_tokens, count_params(model),
                                 info["train_seconds"], 11, LEADERBOARD_COMMAND,
                                 note="float16 weights" if not suffix else "dynamic int8 quantisation of the Linear layers"))
    return entries


# ---------------------------------------------------------------------- CLI
STUDIES = {"students": student_study, "transfer": transfer_study, "temperature": temperature_study,
           "bert": bert_study, "omitted": omitted_word, "compression": compression}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m textbook_lm.experiments.distill",
                                 description="Chapter 11: the teacher, a shipped student, and the studies.")
    ap.add_argument("command", choices=["train", "study"])
    ap.add_argument("name", help="train: teacher | student; study: " + " | ".join(STUDIES))
    add_output_args(ap)
    args = ap.parse_args(argv)
    command = f"python -m textbook_lm.experiments.distill {args.command} {args.name}"
    t0 = time.perf_counter()
    if args.command == "study":
        if args.name not in STUDIES:
            ap.error(f"unknown study {args.name!r}; known: {sorted(STUDIES)}")
        result = STUDIES[args.name]()
        seconds = round(time.perf_counter() - t0, 1)
        path = hub.save({**result, "command": command, "seconds": seconds}, output_dir(args, f"distill-{args.name}"),
                        info={"command": command, "seconds": seconds})
        print(f"distill-{args.name}: {seconds:.0f} s -> {path}", flush=True)
        return 0
    if args.name == "teacher":
        model, vocab, history = train_teacher(progress=True)
        _, _, _, test = tinylang_data()
        info = {"train_seconds": round(time.perf_counter() - t0, 1), "steps": history.step[-1],
                "test": evaluate_lm(model, test, vocab.index("<eos>")), "val_curve": history.val_loss,
                "val_step": history.val_step, "command": command}
        path = hub.save(model, output_dir(args, "tinylang-teacher"), tokenizer=vocab, info=info, half=True)
    elif args.name == "student":
        teacher, vocab, _ = load_teacher()
        _, ids, val, test = tinylang_data()
        targets = distill.TeacherTargets(ids, teacher, STUDENT_TRAIN["seq_len"])
        model, history = train_student(teacher, targets, val, 1, "distilled + init", seed=0, progress=True)
        info = {"train_seconds": round(time.perf_counter() - t0, 1), "steps": history.step[-1],
                "layers": teacher_layers(teacher.cfg.n_layer, 1), "kd": KD,
                "test": evaluate_lm(model, test, vocab.index("<eos>")), "val_curve": history.val_loss,
                "val_step": history.val_step, "command": command}
        path = hub.save(model, output_dir(args, "tinylang-student"), tokenizer=vocab, info=info, half=True)
    else:
        ap.error(f"train takes 'teacher' or 'student', got {args.name!r}")
    print(f"{args.name}: test {info['test']:.4f} nats/token, {info['train_seconds']:.0f} s -> {path}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
