"""Evaluation (Chapter 12): honest numbers for language models and what is built on them.

* Across tokenizers: nats per token cannot be compared between models that cut text into
  different tokens; bits per character (or per byte) of the same text can
  (:func:`bits_per_char`, :func:`bits_per_byte`).
* Classification: :func:`confusion_matrix`, per-class and macro precision, recall and F1
  (:func:`precision_recall_f1`); question answering: :func:`exact_match`, :func:`token_f1`.
* Generation: corpus BLEU with the brevity penalty (:func:`bleu`, Papineni et al., 2002) and
  character n-gram F-score (:func:`chrf`, Popović, 2015), with the conventions of sacreBLEU's
  defaults (13a tokenisation, exponential smoothing; chrF with 6 character orders, beta 2,
  whitespace ignored) so the numbers can be compared with published ones.
* How sure a number is: :func:`bootstrap_ci` and the paired test :func:`paired_bootstrap`;
  calibration: :func:`reliability` and :func:`expected_calibration_error`.
* Compute: :func:`flops_per_token` (about 6N to train, 2N to run, plus attention) and
  :func:`chinchilla_allocation`; scaling laws: :func:`fit_power_law`.
* Contamination: :func:`ngram_overlap` (which test items share a long n-gram with the training text).
* Bias probes: :func:`weat`, the word-embedding association test with a permutation p-value
  (Caliskan et al., 2017).
"""
from __future__ import annotations

import math
import re
from collections import Counter
from typing import Callable, Sequence

import numpy as np

from textbook_lm.checks import check_int, check_number

__all__ = ["bits_per_char", "bits_per_byte", "confusion_matrix", "precision_recall_f1", "exact_match", "token_f1",
           "tokenize_13a", "bleu", "chrf", "bootstrap_ci", "paired_bootstrap", "reliability",
           "expected_calibration_error", "flops_per_token", "training_flops", "chinchilla_allocation",
           "fit_power_law", "ngram_overlap", "weat"]

LN2 = math.log(2.0)


# ---------------------------------------------------------------------- across tokenizers
def bits_per_char(total_nats: float, text: str | int) -> float:
    """Bits per character of a text whose total negative log-likelihood is ``total_nats``
    (summed over the model's tokens, whatever they are); ``text`` or its length in characters."""
    n = len(text) if isinstance(text, str) else check_int("characters", text, 1)
    if n == 0:
        raise ValueError("the text is empty")
    return check_number("total_nats", total_nats, lambda v: v >= 0, ">= 0") / (n * LN2)


def bits_per_byte(total_nats: float, text: str | int) -> float:
    """Bits per UTF-8 byte (``text`` or its length in bytes): comparable across scripts too."""
    n = len(text.encode("utf-8")) if isinstance(text, str) else check_int("bytes", text, 1)
    if n == 0:
        raise ValueError("the text is empty")
    return check_number("total_nats", total_nats, lambda v: v >= 0, ">= 0") / (n * LN2)


# ---------------------------------------------------------------------- classification and QA
def _labels(name: str, y) -> np.ndarray:
    a = np.asarray(list(y) if not isinstance(y, np.ndarray) else y)
    if a.ndim != 1 or a.size == 0 or not np.issubdtype(a.dtype, np.integer) or (a < 0).any():
        raise ValueError(f"{name} must be a non-empty 1-D sequence of class ids >= 0")
    return a


def confusion_matrix(y_true, y_pred, n_classes: int | None = None) -> np.ndarray:
    """``M[i, j]`` = how many examples of true class ``i`` were predicted as ``j``."""
    t, p = _labels("y_true", y_true), _labels("y_pred", y_pred)
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in length: {t.size} and {p.size}")
    k = n_classes or int(max(t.max(), p.max())) + 1
    m = np.zeros((k, k), dtype=np.int64)
    np.add.at(m, (t, p), 1)
    return m


def precision_recall_f1(y_true, y_pred, n_classes: int | None = None) -> dict:
    """Per-class precision, recall and F1 (0 where undefined), their macro averages (the
    unweighted mean over classes, so a rare class counts as much as a common one), and accuracy."""
    m = confusion_matrix(y_true, y_pred, n_classes)
    tp = np.diag(m).astype(float)
    predicted, actual = m.sum(0), m.sum(1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return {"precision": precision, "recall": recall, "f1": f1, "macro_precision": float(precision.mean()),
            "macro_recall": float(recall.mean()), "macro_f1": float(f1.mean()),
            "accuracy": float(tp.sum() / m.sum())}


def _normalise_answer(s: str) -> list[str]:
    """Lower case, no punctuation, no articles (a, an, the), words split on whitespace."""
    if not isinstance(s, str):
        raise TypeError(f"answers and predictions are strings, got {type(s).__name__}")
    s = re.sub(r"[^\w\s]", " ", s.lower())
    return [w for w in s.split() if w not in ("a", "an", "the")]


def exact_match(prediction: str, answers: str | Sequence[str]) -> float:
    """1.0 if the normalised prediction equals a normalised answer, else 0.0."""
    answers = [answers] if isinstance(answers, str) else list(answers)
    return float(any(_normalise_answer(prediction) == _normalise_answer(a) for a in answers))


def token_f1(prediction: str, answers: str | Sequence[str]) -> float:
    """Best F1 over the answers of the normalised word bags (overlap counted with multiplicity)."""
    answers = [answers] if isinstance(answers, str) else list(answers)
    pred, best = Counter(_normalise_answer(prediction)), 0.0
    for a in answers:
        gold = Counter(_normalise_answer(a))
        common = sum((pred & gold).values())
        if not pred or not gold:
            best = max(best, float(pred == gold))
        elif common:
            p, r = common / sum(pred.values()), common / sum(gold.values())
            best = max(best, 2 * p * r / (p + r))
    return best


# ---------------------------------------------------------------------- generation
_13A = [(re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])"), r" \1 "),     # punctuation and symbols
        (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),                    # . and , not after a digit
        (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),                    # nor before one
        (re.compile(r"([0-9])(-)"), r"\1 \2 ")]                          # - after a digit


def tokenize_13a(line: str) -> list[str]:
    """The WMT evaluation script's (mteval-v13a) tokenisation, sacreBLEU's default for BLEU."""
    line = line.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    for entity, char in (("&quot;", '"'), ("&amp;", "&"), ("&lt;", "<"), ("&gt;", ">")):
        line = line.replace(entity, char)
    line = f" {line} "
    for pattern, repl in _13A:
        line = pattern.sub(repl, line)
    return line.split()


def _ngrams(tokens, n: int) -> Counter:
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def _corpus(hypotheses, references) -> tuple[list[str], list[list[str]]]:
    hyps = [hypotheses] if isinstance(hypotheses, str) else list(hypotheses)
    if not hyps:
        raise ValueError("no hypotheses")
    refs = [[r] if isinstance(r, str) else list(r) for r in references]
    if len(refs) != len(hyps) or not all(refs):
        raise ValueError(f"need one or more references for each of the {len(hyps)} hypotheses, got {len(refs)}")
    return hyps, refs


def bleu(hypotheses: Sequence[str], references: Sequence[str | Sequence[str]], max_n: int = 4,
         tokenize: Callable[[str], list[str]] = tokenize_13a) -> dict:
    """Corpus BLEU (0-100): the geometric mean of the clipped n-gram precisions (n = 1..4),
    pooled over the corpus, times the brevity penalty ``exp(1 - r/c)`` when the output is
    shorter than the references (``r``: for each sentence the reference length closest to
    it, the shorter on a tie). A precision with no match is smoothed as in mteval (1 / 2^k
    of a match, k = 1, 2, ... for each such order). ``references[i]`` is one string or a list."""
    check_int("max_n", max_n, 1)
    hyps, refs = _corpus(hypotheses, references)
    matches, totals = [0] * max_n, [0] * max_n
    c = r = 0
    for h, rs in zip(hyps, refs):
        ht, rts = tokenize(h), [tokenize(x) for x in rs]
        c += len(ht)
        r += min((abs(len(x) - len(ht)), len(x)) for x in rts)[1]
        for n in range(1, max_n + 1):
            counts = _ngrams(ht, n)
            most = Counter()
            for x in rts:
                most |= _ngrams(x, n)                                # the most of each n-gram any reference has
            matches[n - 1] += sum(min(k, most[g]) for g, k in counts.items())
            totals[n - 1] += max(len(ht) - n + 1, 0)
    precisions, halvings = [], 1.0
    for m, t in zip(matches, totals):
        if t == 0:
            precisions.append(0.0)
        elif m == 0:
            halvings *= 2
            precisions.append(100.0 / (halvings * t))
        else:
            precisions.append(100.0 * m / t)
    bp = 0.0 if c == 0 else (1.0 if c > r else math.exp(1 - r / c))
    score = 0.0 if min(precisions) <= 0 else bp * math.exp(sum(math.log(p) for p in precisions) / max_n)
    return {"score": score, "precisions": precisions, "brevity_penalty": bp, "hyp_len": c, "ref_len": r}


def chrf(hypotheses: Sequence[str], references: Sequence[str], order: int = 6, beta: float = 2.0) -> float:
    """Corpus chrF (0-100): character n-gram (n = 1..``order``) precision and recall, pooled
    over the corpus per order, averaged over the orders that occur, combined as an F-score that
    weighs recall ``beta`` times as much as precision. Whitespace is ignored; one reference each."""
    check_int("order", order, 1)
    check_number("beta", beta, lambda v: v > 0, "> 0")
    hyps, refs = _corpus(hypotheses, references)
    if any(len(rs) != 1 for rs in refs):
        raise ValueError("chrf takes exactly one reference per hypothesis")
    stats = np.zeros((order, 3))                                    # per order: hyp n-grams, ref n-grams, matches
    for h, (rf,) in zip(hyps, refs):
        hc, rc = "".join(h.split()), "".join(rf.split())
        for n in range(1, order + 1):
            hg, rg = _ngrams(hc, n), _ngrams(rc, n)
            # as chrF's reference scripts: a reference too short for order n leaves the hypothesis's
            # n-grams uncounted (nothing could match them), rather than counted as wrong
            stats[n - 1] += (sum(hg.values()) if rg else 0, sum(rg.values()), sum((hg & rg).values()))
    seen = (stats[:, 0] > 0) & (stats[:, 1] > 0)
    if not seen.any():
        return 0.0
    precision = float((stats[seen, 2] / stats[seen, 0]).mean())
    recall = float((stats[seen, 2] / stats[seen, 1]).mean())
    if precision + recall == 0:
        return 0.0
    b2 = beta * beta
    return 100 * (1 + b2) * precision * recall / (b2 * precision + recall)


# ---------------------------------------------------------------------- how sure
def bootstrap_ci(values, statistic: Callable = np.mean, n_boot: int = 10_000, level: float = 0.95,
                 seed: int = 0) -> tuple[float, float, float]:
    """(statistic, low, high): the percentile bootstrap interval, resampling items with replacement."""
    v = np.asarray(values, dtype=float)
    if v.ndim != 1 or v.size < 2:
        raise ValueError("need a 1-D sequence of at least two values")
    check_number("level", level, lambda x: 0 < x < 1, "in (0, 1)")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, v.size, (check_int("n_boot", n_boot, 1), v.size))
    stats = np.array([statistic(v[i]) for i in idx])
    lo, hi = np.quantile(stats, [(1 - level) / 2, (1 + level) / 2])
    return float(statistic(v)), float(lo), float(hi)


def paired_bootstrap(a, b, n_boot: int = 10_000, seed: int = 0) -> dict:
    """Is A better than B on the same items? ``a[i]``, ``b[i]``: their scores on item ``i``.
    Returns the mean difference, its 95% interval, and the one-sided p-value: the share of
    resamples (of the centred differences) at least as large as the one observed."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or a.size < 2:
        raise ValueError("a and b must be 1-D, of equal length >= 2 (the same items)")
    d = a - b
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, (check_int("n_boot", n_boot, 1), d.size))].mean(1)
    lo, hi = np.quantile(means, [0.025, 0.975])
    p = float((np.sum(means - d.mean() >= d.mean()) + 1) / (n_boot + 1))
    return {"difference": float(d.mean()), "low": float(lo), "high": float(hi), "p_value": p}


def reliability(confidence, correct, n_bins: int = 10) -> dict:
    """Equal-width confidence bins on [0, 1]: per bin the count, mean confidence and accuracy."""
    conf, ok = np.asarray(confidence, dtype=float), np.asarray(correct, dtype=float)
    if conf.shape != ok.shape or conf.ndim != 1 or conf.size == 0:
        raise ValueError("confidence and correct must be 1-D and of equal, non-zero length")
    if ((conf < 0) | (conf > 1)).any():
        raise ValueError("confidences must be in [0, 1]")
    bins = np.minimum((conf * check_int("n_bins", n_bins, 1)).astype(int), n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    with np.errstate(invalid="ignore"):
        mean_conf = np.bincount(bins, conf, n_bins) / count
        accuracy = np.bincount(bins, ok, n_bins) / count
    return {"count": count, "confidence": mean_conf, "accuracy": accuracy,
            "edges": np.linspace(0, 1, n_bins + 1)}


def expected_calibration_error(confidence, correct, n_bins: int = 10) -> float:
    """ECE: the average over bins of the absolute difference between accuracy and mean confidence,
    weighted by the bins' shares of the items."""
    r = reliability(confidence, correct, n_bins)
    keep = r["count"] > 0
    return float(np.sum(r["count"][keep] * np.abs(r["accuracy"][keep] - r["confidence"][keep])) / r["count"].sum())


# ---------------------------------------------------------------------- compute
def flops_per_token(n_params: float, n_layer: int = 0, n_ctx: float = 0, d_model: int = 0,
                    training: bool = True) -> float:
    """Kaplan et al.'s (2020) count: a forward pass costs ``2N + 2 n_layer n_ctx d_model``
    FLOPs per token (the second term is attention over the context); training (forward and
    backward) three times that. ``N`` excludes embeddings in their convention."""
    n = check_number("n_params", n_params, lambda v: v >= 0, ">= 0")
    forward = 2 * n + 2 * n_layer * check_number("n_ctx", n_ctx, lambda v: v >= 0, ">= 0") * d_model
    return 3 * forward if training else forward


def training_flops(n_params: float, n_tokens: float) -> float:
    """``C = 6 N D``: the training compute of ``N`` parameters on ``D`` tokens (attention left out)."""
    return 6.0 * check_number("n_params", n_params, lambda v: v > 0, "> 0") * \
        check_number("n_tokens", n_tokens, lambda v: v > 0, "> 0")


def chinchilla_allocation(compute: float, tokens_per_param: float = 20.0) -> dict:
    """Parameters and tokens for a compute budget under ``C = 6 N D`` and Hoffmann et al.'s
    (2022) rule of thumb of about 20 training tokens per parameter."""
    c = check_number("compute", compute, lambda v: v > 0, "> 0")
    n = math.sqrt(c / (6.0 * check_number("tokens_per_param", tokens_per_param, lambda v: v > 0, "> 0")))
    return {"params": n, "tokens": tokens_per_param * n}


def fit_power_law(x, y, floor: float = 0.0) -> dict:
    """Least-squares fit of ``y = floor + a * x ** -alpha`` on log-log axes (``x > 0``,
    ``y > floor``): returns ``{"a", "alpha"}``. ``floor`` is a loss no model can beat (the entropy
    of the data, when it is known); Kaplan et al. (2020) fit their laws with none."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or np.unique(x).size < 2:
        raise ValueError("x and y must be 1-D, of equal length, with at least two distinct x")
    if (x <= 0).any() or (y <= floor).any():
        raise ValueError(f"need x > 0 and y > floor ({floor}) for a log-log fit")
    slope, intercept = np.polyfit(np.log(x), np.log(y - floor), 1)
    return {"a": float(np.exp(intercept)), "alpha": float(-slope)}


# ---------------------------------------------------------------------- contamination
def ngram_overlap(test: Sequence[Sequence], train: Sequence[Sequence], n: int = 13) -> dict:
    """Which test items share at least one ``n``-gram (of tokens) with the training items, the
    kind of check GPT-3's authors ran between their benchmarks and training data (Brown et
    al., 2020, Appendix C: 13-grams to filter the training documents, 8- to 13-grams to
    measure the overlap that remained).
    Returns ``{"share", "flagged"}``: the share of test items flagged and their indices.
    Items shorter than ``n`` tokens are checked whole (as one short n-gram)."""
    check_int("n", n, 1)
    if not len(test):
        raise ValueError("test is empty")

    def grams(seq):
        seq = tuple(seq)
        return {seq} if len(seq) < n else {seq[i:i + n] for i in range(len(seq) - n + 1)}
    seen = set()
    for seq in train:
        seen |= grams(seq)
    flagged = [i for i, seq in enumerate(test) if grams(seq) & seen]
    return {"share": len(flagged) / len(test), "flagged": flagged}


# ---------------------------------------------------------------------- bias probes
def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=float)
    if v.ndim != 2 or v.shape[0] < 1:
        raise ValueError("each word set must be a 2-D array (words x dimensions) with at least one row")
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def weat(X, Y, A, B, n_perm: int = 10_000, seed: int = 0) -> dict:
    """The word-embedding association test (Caliskan et al., 2017). ``X``, ``Y``: vectors of two
    target sets (e.g. male and female words), ``A``, ``B``: of two attribute sets (e.g. career
    and family words), one row per word. A word's association is its mean cosine with ``A``
    minus its mean cosine with ``B``. Returns the statistic (sum over ``X`` minus sum over
    ``Y``), the effect size (difference of the two means over the standard deviation of all
    targets' associations) and the one-sided p-value: the share of equal-size re-partitions of
    ``X`` and ``Y`` (``n_perm`` random ones) whose statistic is at least as large."""
    X, Y, A, B = map(_unit, (X, Y, A, B))
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"the target sets must be the same size, got {X.shape[0]} and {Y.shape[0]}")
    T = np.vstack([X, Y])
    s = (T @ A.T).mean(1) - (T @ B.T).mean(1)              # every target word's association
    k = X.shape[0]
    stat = s[:k].sum() - s[k:].sum()
    rng = np.random.default_rng(seed)
    perms = np.argsort(rng.random((check_int("n_perm", n_perm, 1), 2 * k)), axis=1)
    null = s[perms[:, :k]].sum(1) - s[perms[:, k:]].sum(1)
    return {"statistic": float(stat), "effect_size": float((s[:k].mean() - s[k:].mean()) / s.std(ddof=1)),
            "p_value": float((np.sum(null >= stat) + 1) / (n_perm + 1))}
