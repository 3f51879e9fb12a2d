"""Static word vectors: skip-gram with negative sampling (word2vec) and GloVe, and how to probe them.

* :class:`SkipGram` / :func:`train_sgns`: Mikolov et al. (2013). For each word and each
  word within a (randomly shrunk) window around it, raise sigma(u_w . v_c) for the real
  context word and lower it for ``negatives`` noise words drawn from the unigram
  distribution raised to the power 0.75. Frequent words are subsampled: each occurrence of
  ``w`` is dropped with probability ``1 - sqrt(t / f(w))``.
* :class:`GloVe` / :func:`train_glove`: Pennington et al. (2014). A weighted least-squares
  fit of the log co-occurrence counts, with a bias per word and per context:
  ``J = sum_ij f(X_ij) (w_i . w~_j + b_i + b~_j - log X_ij)^2``, ``f(x) = min(1, (x/x_max)^alpha)``.
* :class:`Vectors`: nearest neighbours, analogies, class purity, 2-D projection.

Vectors of the full WikiText-2 runs are made by ``python -m textbook_lm.experiments.embeddings
train`` and shipped with the package (float16, a few MB each); :func:`from_pretrained` loads them.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from textbook_lm import hub
from textbook_lm.checks import check_config, check_token_lists

__all__ = ["Corpus", "SGNSConfig", "SkipGram", "train_sgns", "GloVeConfig", "GloVe", "cooccurrence",
           "glove_loss", "train_glove", "Vectors", "ANALOGIES", "from_pretrained"]


# ---------------------------------------------------------------------------- data
class Corpus:
    """Sentences as one id array (words below ``min_count`` dropped) with sentence ids."""

    def __init__(self, sentences: Sequence[Sequence[str]], min_count: int = 1):
        check_token_lists(sentences)
        counts = Counter(w for s in sentences for w in s)
        self.words = [w for w, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if c >= min_count]
        self.index = {w: i for i, w in enumerate(self.words)}
        self.counts = np.array([counts[w] for w in self.words], dtype=np.int64)
        ids, sent = [], []
        for k, s in enumerate(sentences):
            kept = [self.index[w] for w in s if w in self.index]
            ids.extend(kept)
            sent.extend([k] * len(kept))
        self.ids, self.sentence = np.asarray(ids, dtype=np.int64), np.asarray(sent, dtype=np.int64)
        if len(self.words) < 2:
            raise ValueError(f"need at least 2 distinct words seen >= min_count={min_count} times, "
                             f"got {len(self.words)}")

    def __len__(self) -> int:
        return len(self.words)


def _pairs(ids: np.ndarray, sent: np.ndarray, window: int, rng: np.random.Generator | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(center, context, distance) for every pair within ``window`` in the same sentence.

    With ``rng``, each center gets its own window size drawn uniformly from 1..window
    (word2vec's way of weighting near words more).
    """
    reach = rng.integers(1, window + 1, size=len(ids)) if rng is not None else np.full(len(ids), window)
    centers, contexts, dists = [], [], []
    for d in range(1, window + 1):
        same = sent[d:] == sent[:-d]
        for c_idx, o_idx in ((np.arange(d, len(ids)), np.arange(0, len(ids) - d)),      # context on the left
                             (np.arange(0, len(ids) - d), np.arange(d, len(ids)))):     # context on the right
            ok = same & (reach[c_idx] >= d)
            centers.append(ids[c_idx[ok]])
            contexts.append(ids[o_idx[ok]])
            dists.append(np.full(int(ok.sum()), d))
    return np.concatenate(centers), np.concatenate(contexts), np.concatenate(dists)


# ---------------------------------------------------------------------------- skip-gram
@dataclass
class SGNSConfig:
    dim: int = 64
    window: int = 5
    negatives: int = 5
    subsample: float = 1e-3      # t in 1 - sqrt(t / f(w)); 0 switches subsampling off
    min_count: int = 5
    epochs: int = 5
    batch_size: int = 4096
    lr: float = 0.005
    seed: int = 0

    def __post_init__(self):
        check_config(self, positive=("dim", "window", "negatives", "min_count", "epochs", "batch_size"))
        if not 0 <= self.subsample < 1 or not self.lr > 0:
            raise ValueError(f"SGNSConfig needs 0 <= subsample < 1 and lr > 0, got {self.subsample}, {self.lr}")


class SkipGram(nn.Module):
    """Two embedding tables: ``inp`` for words as centers (the word vectors), ``out`` for contexts."""

    def __init__(self, vocab_size: int, dim: int):
        super().__init__()
        self.inp = nn.Embedding(vocab_size, dim, sparse=True)
        self.out = nn.Embedding(vocab_size, dim, sparse=True)
        nn.init.uniform_(self.inp.weight, -0.5 / dim, 0.5 / dim)
        nn.init.zeros_(self.out.weight)

    def forward(self, center: torch.Tensor, context: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Mean negative-sampling loss. center, context: (B,); noise: (B, k)."""
        u = self.inp(center)                                       # (B, d)
        pos = (u * self.out(context)).sum(-1)                      # (B,)
        neg = torch.bmm(self.out(noise), u.unsqueeze(-1)).squeeze(-1)   # (B, k)
        return -(F.logsigmoid(pos) + F.logsigmoid(-neg).sum(-1)).mean()


def train_sgns(sentences: Sequence[Sequence[str]], config: SGNSConfig | None = None,
               progress: bool = True) -> tuple["Vectors", list[float]]:
    """Train skip-gram with negative sampling. Returns the word vectors and the loss per step."""
    cfg = config or SGNSConfig()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    corpus = Corpus(sentences, cfg.min_count)
    model = SkipGram(len(corpus), cfg.dim)
    opt = torch.optim.SparseAdam(model.parameters(), lr=cfg.lr)
    noise = torch.tensor(corpus.counts, dtype=torch.float) ** 0.75
    freq = corpus.counts / corpus.counts.sum()
    keep_p = np.minimum(1.0, np.sqrt(cfg.subsample / freq)) if cfg.subsample > 0 else np.ones(len(freq))
    losses: list[float] = []
    for epoch in range(cfg.epochs):
        keep = rng.random(len(corpus.ids)) < keep_p[corpus.ids]
        c, o, _ = _pairs(corpus.ids[keep], corpus.sentence[keep], cfg.window, rng)
        order = rng.permutation(len(c))
        c, o = torch.from_numpy(c[order]), torch.from_numpy(o[order])
        steps = range(0, len(c), cfg.batch_size)
        for i in tqdm(steps, desc=f"SGNS epoch {epoch + 1}/{cfg.epochs}", disable=not progress, leave=False):
            cb, ob = c[i:i + cfg.batch_size], o[i:i + cfg.batch_size]
            nb = torch.multinomial(noise, len(cb) * cfg.negatives, replacement=True).view(len(cb), cfg.negatives)
            loss = model(cb, ob, nb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    return Vectors(corpus.words, model.inp.weight.detach().numpy().copy(), {"method": "sgns", **asdict(cfg)}), losses


# ---------------------------------------------------------------------------- GloVe
@dataclass
class GloVeConfig:
    dim: int = 64
    window: int = 10
    x_max: float = 100.0
    alpha: float = 0.75
    min_count: int = 5
    epochs: int = 25
    batch_size: int = 16384
    lr: float = 0.05             # AdaGrad, as in the paper
    seed: int = 0

    def __post_init__(self):
        check_config(self, positive=("dim", "window", "min_count", "epochs", "batch_size"))
        if not (self.x_max > 0 and self.alpha > 0 and self.lr > 0):
            raise ValueError(f"GloVeConfig needs x_max, alpha and lr > 0, got {self.x_max}, {self.alpha}, {self.lr}")


def cooccurrence(corpus: Corpus, window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Symmetric co-occurrence counts X_ij within ``window`` words, each pair weighted 1/distance
    (as in GloVe). Returns the nonzero entries as (i, j, X_ij) arrays."""
    c, o, d = _pairs(corpus.ids, corpus.sentence, window, None)
    V = len(corpus)
    key = c * V + o
    uniq, inv = np.unique(key, return_inverse=True)
    x = np.bincount(inv, weights=1.0 / d)
    return uniq // V, uniq % V, x


def glove_loss(w: torch.Tensor, w_ctx: torch.Tensor, b: torch.Tensor, b_ctx: torch.Tensor,
               x: torch.Tensor, x_max: float = 100.0, alpha: float = 0.75) -> torch.Tensor:
    """GloVe's weighted least squares for a batch of co-occurring pairs (summed over the batch).

    w, w_ctx: (B, d) word and context vectors; b, b_ctx: (B,) biases; x: (B,) counts X_ij > 0.
    Note what it is *not*: counts are not normalised into probabilities, and the word and
    context vectors are two different tables (not one matrix U times its transpose).
    """
    f = torch.clamp(x / x_max, max=1.0) ** alpha                       # (B,) weight f(X_ij)
    residual = (w * w_ctx).sum(-1) + b + b_ctx - torch.log(x)          # (B,)
    return (f * residual ** 2).sum()


class GloVe(nn.Module):
    def __init__(self, vocab_size: int, dim: int):
        super().__init__()
        self.w = nn.Embedding(vocab_size, dim)
        self.w_ctx = nn.Embedding(vocab_size, dim)
        self.b = nn.Embedding(vocab_size, 1)
        self.b_ctx = nn.Embedding(vocab_size, 1)
        for emb in (self.w, self.w_ctx):
            nn.init.uniform_(emb.weight, -0.5 / dim, 0.5 / dim)
        nn.init.zeros_(self.b.weight)
        nn.init.zeros_(self.b_ctx.weight)

    def forward(self, i: torch.Tensor, j: torch.Tensor, x: torch.Tensor, x_max: float, alpha: float) -> torch.Tensor:
        return glove_loss(self.w(i), self.w_ctx(j), self.b(i).squeeze(-1), self.b_ctx(j).squeeze(-1), x, x_max, alpha)


def train_glove(sentences: Sequence[Sequence[str]], config: GloVeConfig | None = None,
                progress: bool = True) -> tuple["Vectors", list[float]]:
    """Train GloVe with AdaGrad. Returns the vectors (word + context tables, as in the paper)
    and the mean loss per co-occurring pair for each epoch."""
    cfg = config or GloVeConfig()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    corpus = Corpus(sentences, cfg.min_count)
    i_all, j_all, x_all = (torch.from_numpy(a) for a in cooccurrence(corpus, cfg.window))
    x_all = x_all.float()
    model = GloVe(len(corpus), cfg.dim)
    opt = torch.optim.Adagrad(model.parameters(), lr=cfg.lr)
    losses = []
    for epoch in tqdm(range(cfg.epochs), desc="GloVe", disable=not progress, leave=False):
        order = torch.from_numpy(rng.permutation(len(x_all)))
        total = 0.0
        for s in range(0, len(order), cfg.batch_size):
            idx = order[s:s + cfg.batch_size]
            loss = model(i_all[idx], j_all[idx], x_all[idx], cfg.x_max, cfg.alpha)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
        losses.append(total / len(x_all))
    vectors = (model.w.weight + model.w_ctx.weight).detach().numpy().copy()
    return Vectors(corpus.words, vectors, {"method": "glove", **asdict(cfg)}), losses


# ---------------------------------------------------------------------------- probing
@dataclass
class Vectors:
    """Word vectors with the usual probes. ``matrix`` is (V, d); rows follow ``words``."""

    words: list[str]
    matrix: np.ndarray
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        self.matrix = np.asarray(self.matrix, dtype=np.float32)
        if self.matrix.ndim != 2 or self.matrix.shape[0] != len(self.words):
            raise ValueError(f"matrix must be (len(words), d) = ({len(self.words)}, d), got {self.matrix.shape}")
        if len(set(self.words)) != len(self.words):
            raise ValueError("words must be distinct")
        if not np.isfinite(self.matrix).all():
            raise ValueError("vectors must be finite (found NaN or inf)")
        self.index = {w: i for i, w in enumerate(self.words)}
        norms = np.linalg.norm(self.matrix, axis=1, keepdims=True)
        self.unit = self.matrix / np.maximum(norms, 1e-12)

    def __contains__(self, word: str) -> bool:
        return word in self.index

    def __getitem__(self, word: str) -> np.ndarray:
        return self.matrix[self._id(word)]

    def _id(self, word: str) -> int:
        if word not in self.index:
            raise KeyError(f"{word!r} has no vector (not in the vocabulary of {len(self.words):,} words)")
        return self.index[word]

    def similarity(self, a: str, b: str) -> float:
        """Cosine similarity."""
        return float(self.unit[self._id(a)] @ self.unit[self._id(b)])

    def nearest(self, query: str | np.ndarray, k: int = 10, exclude: Sequence[str] = ()) -> list[tuple[str, float]]:
        """The ``k`` words with the highest cosine similarity to a word or a vector."""
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be an int >= 1, got {k!r}")
        if not isinstance(query, str) and np.shape(query) != (self.matrix.shape[1],):
            raise ValueError(f"a query vector must have shape ({self.matrix.shape[1]},), got {np.shape(query)}")
        v = self.unit[self._id(query)] if isinstance(query, str) else query / max(np.linalg.norm(query), 1e-12)
        sims = self.unit @ v
        skip = set(exclude) | ({query} if isinstance(query, str) else set())
        out = []
        for i in np.argsort(-sims):
            if self.words[i] not in skip:
                out.append((self.words[i], float(sims[i])))
                if len(out) == k:
                    break
        return out

    def analogy(self, a: str, b: str, c: str, k: int = 1) -> list[tuple[str, float]]:
        """a is to b as c is to ?: nearest words to b - a + c (unit vectors), excluding a, b, c."""
        v = self.unit[self._id(b)] - self.unit[self._id(a)] + self.unit[self._id(c)]
        return self.nearest(v, k, exclude=(a, b, c))

    def analogy_accuracy(self, questions: Sequence[tuple[str, str, str, str]]) -> tuple[float, int, int]:
        """Share of analogy questions (a, b, c, d) answered with d; questions with a word
        outside the vocabulary are skipped. Returns (accuracy, answered, skipped)."""
        qs = [q for q in questions if all(w in self.index for w in q)]
        if not qs:
            return float("nan"), 0, len(questions)
        ids = np.array([[self.index[w] for w in q] for q in qs])
        target = self.unit[ids[:, 1]] - self.unit[ids[:, 0]] + self.unit[ids[:, 2]]
        sims = target @ self.unit.T                                     # (Q, V)
        sims[np.arange(len(qs))[:, None], ids[:, :3]] = -np.inf         # never answer with a, b or c
        right = (sims.argmax(1) == ids[:, 3]).mean()
        return float(right), len(qs), len(questions) - len(qs)

    def class_purity(self, classes: dict[str, str], k: int = 5) -> float:
        """Average share of each word's ``k`` nearest neighbours (among classified words) that
        have the word's class. Words whose class has fewer than 2 members are skipped."""
        words = [w for w in classes if w in self.index]
        size = Counter(classes[w] for w in words)
        unit = self.unit[[self.index[w] for w in words]]
        sims = unit @ unit.T
        np.fill_diagonal(sims, -np.inf)
        scores = []
        for a, w in enumerate(words):
            if size[classes[w]] < 2:
                continue
            nbrs = np.argsort(-sims[a])[:k]
            scores.append(np.mean([classes[words[b]] == classes[w] for b in nbrs]))
        return float(np.mean(scores))

    def project_2d(self, words: Sequence[str]) -> np.ndarray:
        """PCA of the given words' vectors to 2-D, shape (len(words), 2)."""
        m = self.matrix[[self._id(w) for w in words]].astype(np.float64)
        m = m - m.mean(0)
        _, _, vt = np.linalg.svd(m, full_matrices=False)
        return m @ vt[:2].T

    def random_like(self, seed: int = 0) -> "Vectors":
        """Random Gaussian vectors for the same words: the baseline any probe must beat."""
        rng = np.random.default_rng(seed)
        return Vectors(self.words, rng.standard_normal(self.matrix.shape).astype(np.float32), {"method": "random"})

    def save_pretrained(self, directory: str | Path, half: bool = True) -> Path:
        """Save into a hub folder: vectors (float16 unless ``half=False``), words, and ``info``."""
        return hub.save(self, directory, info=self.info, half=half)


# ---------------------------------------------------------------------------- the book's analogy set
_PAIRS = {
    "capital : country": [("Paris", "France"), ("London", "England"), ("Berlin", "Germany"), ("Rome", "Italy"),
                          ("Tokyo", "Japan"), ("Moscow", "Russia"), ("Madrid", "Spain"), ("Beijing", "China"),
                          ("Dublin", "Ireland"), ("Athens", "Greece"), ("Cairo", "Egypt"), ("Vienna", "Austria")],
    "country : nationality": [("France", "French"), ("Germany", "German"), ("Italy", "Italian"), ("Spain", "Spanish"),
                              ("Japan", "Japanese"), ("China", "Chinese"), ("England", "English"), ("Russia", "Russian"),
                              ("Ireland", "Irish"), ("Greece", "Greek"), ("Canada", "Canadian"), ("India", "Indian")],
    "singular : plural": [("city", "cities"), ("year", "years"), ("game", "games"), ("player", "players"),
                          ("song", "songs"), ("album", "albums"), ("ship", "ships"), ("church", "churches"),
                          ("team", "teams"), ("road", "roads"), ("film", "films"), ("book", "books"),
                          ("man", "men"), ("woman", "women"), ("child", "children")],
    "adjective : comparative": [("large", "larger"), ("small", "smaller"), ("high", "higher"), ("long", "longer"),
                                ("strong", "stronger"), ("early", "earlier"), ("great", "greater"), ("low", "lower"),
                                ("old", "older"), ("young", "younger"), ("big", "bigger"), ("late", "later")],
    "verb : past tense": [("play", "played"), ("win", "won"), ("begin", "began"), ("write", "wrote"),
                          ("take", "took"), ("give", "gave"), ("make", "made"), ("see", "saw"), ("go", "went"),
                          ("become", "became"), ("lose", "lost"), ("leave", "left")],
    "male : female": [("king", "queen"), ("man", "woman"), ("father", "mother"), ("son", "daughter"),
                      ("brother", "sister"), ("husband", "wife"), ("he", "she"), ("his", "her"), ("boy", "girl"),
                      ("actor", "actress"), ("prince", "princess"), ("uncle", "aunt")],
}
# Every ordered pair of pairs within a category: (a, b, c, d) means "a : b = c : d".
ANALOGIES: dict[str, list[tuple[str, str, str, str]]] = {
    cat: [(a, b, c, d) for a, b in pairs for c, d in pairs if (a, b) != (c, d)] for cat, pairs in _PAIRS.items()}


# ---------------------------------------------------------------------------- the hub
def from_pretrained(name_or_dir: str | Path) -> Vectors:
    """Word vectors from the hub: ``"wikitext2-sgns"`` or ``"wikitext2-glove"`` (trained on all of
    WikiText-2 by ``python -m textbook_lm.experiments.embeddings train``), or a folder written by
    :meth:`Vectors.save_pretrained`. Checked by sha256 before use."""
    return hub.load(name_or_dir, kind="Vectors").obj


hub.register("Vectors", Vectors,
             lambda v: ({"vectors": torch.from_numpy(v.matrix)}, {"words": list(v.words)}),
             lambda tensors, data, info: Vectors(data["words"], tensors["vectors"].numpy(), info))
