import math
from collections import defaultdict

import numpy as np
import pytest
import torch

from textbook_lm import embeddings as E
from textbook_lm.data import tinylang


def test_pairs_are_exactly_the_window_within_each_sentence():
    sents = [["a", "b", "c", "d"], ["e", "f"]]
    corpus = E.Corpus(sents)
    c, o, d = E._pairs(corpus.ids, corpus.sentence, 2, None)
    got = sorted(zip(c.tolist(), o.tolist(), d.tolist()))
    want = []
    for s in sents:
        for i, w in enumerate(s):
            for j, x in enumerate(s):
                if 0 < abs(i - j) <= 2:
                    want.append((corpus.index[w], corpus.index[x], abs(i - j)))
    assert got == sorted(want)
    # with a random window each center keeps only pairs up to its own reach
    c2, _, d2 = E._pairs(corpus.ids, corpus.sentence, 2, np.random.default_rng(0))
    assert len(c2) <= len(c) and set(d2.tolist()) <= {1, 2}


def test_cooccurrence_counts_are_weighted_by_inverse_distance():
    sents = [["x", "y", "x", "z"]]
    corpus = E.Corpus(sents)
    i, j, x = E.cooccurrence(corpus, 2)
    ref = defaultdict(float)
    s = sents[0]
    for a in range(len(s)):
        for b in range(len(s)):
            if 0 < abs(a - b) <= 2:
                ref[(corpus.index[s[a]], corpus.index[s[b]])] += 1 / abs(a - b)
    assert dict(zip(zip(i.tolist(), j.tolist()), x.tolist())) == pytest.approx(dict(ref))


def test_glove_loss_is_the_weighted_least_squares_of_the_paper():
    g = torch.Generator().manual_seed(0)
    B, d = 7, 4
    w, wc = torch.randn(B, d, generator=g), torch.randn(B, d, generator=g)
    b, bc = torch.randn(B, generator=g), torch.randn(B, generator=g)
    x = torch.tensor([0.5, 1.0, 3.0, 50.0, 100.0, 150.0, 1000.0])
    expected = 0.0
    for k in range(B):
        f = (x[k].item() / 100.0) ** 0.75 if x[k] < 100 else 1.0
        expected += f * (float(w[k] @ wc[k]) + b[k].item() + bc[k].item() - math.log(x[k].item())) ** 2
    assert E.glove_loss(w, wc, b, bc, x).item() == pytest.approx(expected, rel=1e-5)


def test_glove_loss_gradients_check_in_float64():
    g = torch.Generator().manual_seed(1)
    args = [torch.randn(5, 3, dtype=torch.float64, generator=g, requires_grad=True) for _ in range(2)]
    args += [torch.randn(5, dtype=torch.float64, generator=g, requires_grad=True) for _ in range(2)]
    x = torch.tensor([0.3, 2.0, 10.0, 99.0, 400.0], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda *a: E.glove_loss(*a, x), args)


def test_skipgram_loss_matches_its_formula():
    torch.manual_seed(0)
    m = E.SkipGram(10, 4)
    torch.nn.init.normal_(m.out.weight)
    c, o, n = torch.tensor([1, 2]), torch.tensor([3, 4]), torch.tensor([[5, 6], [7, 8]])
    u, V = m.inp.weight.detach(), m.out.weight.detach()
    sig = lambda t: 1 / (1 + math.exp(-t))
    expected = np.mean([-(math.log(sig(float(u[c[b]] @ V[o[b]])))
                          + sum(math.log(sig(-float(u[c[b]] @ V[k]))) for k in n[b])) for b in range(2)])
    assert m(c, o, n).item() == pytest.approx(expected, rel=1e-5)


def test_vectors_probes_on_hand_made_vectors(tmp_path):
    words = ["man", "woman", "king", "queen", "apple"]
    m = np.array([[1, 0, 0], [1, 1, 0], [1, 0, 1], [1, 1, 1], [-1, 0, 0.2]], dtype=np.float32)
    v = E.Vectors(words, m)
    assert v.analogy("man", "woman", "king")[0][0] == "queen"
    assert v.analogy_accuracy([("man", "woman", "king", "queen"), ("a", "b", "c", "d")]) == (1.0, 1, 1)
    assert v.nearest("man", 1)[0][0] in {"woman", "king"} and v.similarity("man", "man") == pytest.approx(1.0)
    classes = {"man": "person", "woman": "person", "king": "person", "queen": "person", "apple": "fruit"}
    assert v.class_purity(classes, k=2) == 1.0          # "apple" is alone in its class: skipped
    v.save_pretrained(tmp_path / "v")
    again = E.from_pretrained(tmp_path / "v")
    assert again.words == words and np.allclose(again.matrix, m, atol=1e-3)
    with pytest.raises(KeyError, match="no vector"):
        v["banana"]


def test_analogy_set_is_well_formed():
    for cat, qs in E.ANALOGIES.items():
        assert len(qs) >= 100, cat
        assert all(len(set(q)) == 4 for q in qs), cat


@pytest.fixture(scope="module")
def tinylang_vectors():
    sp = tinylang.benchmark(8000, 10, 10)
    cfg = E.SGNSConfig(dim=32, window=2, min_count=1, epochs=3, subsample=0, lr=0.01)
    return E.train_sgns(sp.train, cfg, progress=False)


def test_sgns_learns_tinylang_word_classes(tinylang_vectors):
    vectors, losses = tinylang_vectors
    classes = tinylang.TinyLang().word_classes()
    assert set(classes) == set(tinylang.TinyLang().vocab) - {tinylang.EOS}
    assert np.mean(losses[-20:]) < np.mean(losses[:20])
    purity, chance = vectors.class_purity(classes), vectors.random_like().class_purity(classes)
    assert purity > 0.8 and chance < 0.3, (purity, chance)


def test_glove_learns_tinylang_word_classes():
    sp = tinylang.benchmark(20_000, 10, 10)
    vectors, losses = E.train_glove(sp.train, E.GloVeConfig(dim=16, window=3, min_count=1, epochs=300, lr=0.1),
                                    progress=False)
    assert losses[-1] < 0.2 * losses[0]
    assert vectors.class_purity(tinylang.TinyLang().word_classes()) > 0.8


def test_shipped_vectors_load():
    from textbook_lm import hub

    for name in ("wikitext2-sgns", "wikitext2-glove"):
        v = E.from_pretrained(name)
        assert v.matrix.shape[0] == len(v.words) > 10_000
        assert (hub.SHIPPED_DIR / name / "weights.pt").stat().st_size < 5_000_000
    with pytest.raises(FileNotFoundError, match="fasttext"):
        E.from_pretrained("fasttext")
    with pytest.raises(hub.ArtefactError, match="holds a Tokenizer"):
        E.from_pretrained("wikitext2-bpe-4k")
