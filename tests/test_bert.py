"""BERT: masking statistics, NSP pairs, bidirectionality, ALBERT options, Hugging Face equivalence,
fine-tuning and its statistics."""
import math
import random

import pytest
import torch

from textbook_lm import finetune, hub, mlm
from textbook_lm.experiments import bert as xbert
from textbook_lm.bert import BERT, BertClassifier, BertConfig, mask_tokens, span_corruption
from textbook_lm.gpt import GPT, GPTConfig

PAD, CLS, SEP, MASK = 1, 2, 3, 4
SPECIAL = {0, PAD, CLS, SEP, MASK}


def _batch(B=3000, T=60, V=30, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, V, (B, T), generator=g)
    lengths = torch.randint(10, T + 1, (B,), generator=g)
    for b, n in enumerate(lengths.tolist()):
        ids[b, 0], ids[b, n - 1] = CLS, SEP
        ids[b, n:] = PAD
    return ids


def _within(count, n, p, sigmas=5.0):
    return abs(count - n * p) <= sigmas * math.sqrt(n * p * (1 - p))


def test_masking_proportions_80_10_10():
    V = 30
    ids = _batch(V=V)
    inputs, labels = mask_tokens(ids, MASK, [0, PAD, CLS, SEP], V, generator=torch.Generator().manual_seed(1))
    selected = labels != -100
    cand = (ids >= 5)
    # exactly round(15% of the candidates) per row, never a special token
    assert torch.equal(selected.sum(1), (0.15 * cand.sum(1).double()).round().long().clamp(min=1))
    assert not (selected & ~cand).any()
    assert torch.equal(inputs[~selected], ids[~selected])           # unselected positions untouched
    assert torch.equal(labels[selected], ids[selected])             # labels: the original tokens
    n = int(selected.sum())
    masked = int((inputs[selected] == MASK).sum())
    changed = int(((inputs[selected] != MASK) & (inputs[selected] != ids[selected])).sum())
    kept = n - masked - changed
    p_same = 1 / (V - 5)                                            # a random token equal to the original
    assert _within(masked, n, 0.8)
    assert _within(changed, n, 0.1 * (1 - p_same))
    assert _within(kept, n, 0.1 + 0.1 * p_same)
    # random replacements are uniform over the 25 ordinary tokens (chi-square, 24 dof, p < 1e-4 cut 59.7)
    rand = inputs[selected & (inputs != MASK) & (inputs != ids)]
    assert rand.min() >= 5
    counts = torch.bincount(rand - 5, minlength=V - 5).double()
    expected = counts.sum() / (V - 5)
    # the original token is excluded per draw only by conditioning; uniform up to that 1/25 effect
    assert ((counts - expected) ** 2 / expected).sum() < 59.7


def test_masking_rejects_bad_probability():
    with pytest.raises(ValueError, match="prob"):
        mask_tokens(_batch(B=2), MASK, [PAD], 30, prob=0.0)


def _docs(n_docs=40, seed=0):
    """Documents whose token ids identify them: document d uses ids 1000 d + 5 ..."""
    rng = random.Random(seed)
    docs = []
    for d in range(n_docs):
        base, pos, doc = 1000 * d + 5, 0, []
        for _ in range(rng.randint(3, 12)):
            k = rng.randint(3, 15)
            doc.append(list(range(base + pos, base + pos + k)))
            pos += k
        docs.append(doc)
    return docs


def test_nsp_pairs_are_half_random_and_real_otherwise():
    docs = _docs(300)
    ex = mlm.make_examples(docs, CLS, SEP, max_len=48, nsp=True, seed=0)
    labels = [e.is_next for e in ex]
    assert set(labels) == {0, 1}
    assert _within(sum(labels), len(labels), 0.5, sigmas=4)
    for e in ex:
        assert len(e.ids) <= 48 and e.ids[0] == CLS and e.ids[-1] == SEP
        s = e.ids.index(SEP)
        a, b = e.ids[1:s], e.ids[s + 1:-1]
        assert e.segments == [0] * (len(a) + 2) + [1] * (len(b) + 1)
        assert all(y - x == 1 for x, y in zip(a, a[1:]))           # A: consecutive text of one document
        same_doc = a[0] // 1000 == b[0] // 1000
        if e.is_next == 0:                                          # IsNext: B continues A exactly
            assert same_doc and b[0] == a[-1] + 1
        else:
            assert not same_doc


def test_no_nsp_examples_are_one_segment_chunks():
    docs = _docs(20)
    ex = mlm.make_examples(docs, CLS, SEP, max_len=32, nsp=False)
    assert all(e.is_next == -100 and set(e.segments) == {0} and len(e.ids) <= 32 for e in ex)
    for e in ex:                                                     # each chunk: consecutive text of one document
        body = e.ids[1:-1]
        assert all(y - x == 1 for x, y in zip(body, body[1:]))
    covered = sum(len(e.ids) - 2 for e in ex)
    total = sum(len(s) for d in docs for s in d)
    assert total - 7 * len(docs) <= covered <= total                 # only short document tails (< 8) dropped


def _one_example_data(masking):
    ex = mlm.make_examples([[list(range(5, 45))]], CLS, SEP, 48, nsp=False)
    assert len(ex) == 1
    return mlm.MLMData(ex, 50, PAD, MASK, [CLS, SEP], masking=masking, seed=3)


def test_static_masks_repeat_dynamic_masks_do_not():
    g = torch.Generator().manual_seed(0)
    for masking in ("static", "dynamic"):
        data = _one_example_data(masking)
        rows = torch.cat([data.batch(8, generator=g)[1][0] for _ in range(5)])   # 40 uses of the one example
        distinct = len({tuple(r.tolist()) for r in rows})
        assert distinct == 1 if masking == "static" else distinct > 30
    (x, s), (labels, nsp) = data.batch(16, generator=g)
    assert x.shape == labels.shape == s.shape and nsp.shape == (16,)
    assert ((labels == -100) | (labels >= 5)).all()
    assert torch.equal(data.windows()[0][1][0], data.windows()[0][1][0])   # evaluation masks are fixed


def _tiny(**kw):
    torch.manual_seed(0)
    return BERT(BertConfig(vocab_size=50, block_size=24, n_layer=2, n_head=2, n_embd=16, dropout=0.0, **kw)).eval()


def test_bert_is_bidirectional_gpt_is_not():
    bert = _tiny()
    gpt = GPT(GPTConfig(vocab_size=50, block_size=24, n_layer=2, n_head=2, n_embd=16)).eval()
    x = torch.randint(5, 50, (1, 12))
    y = x.clone()
    y[0, 9] = 5 if x[0, 9] != 5 else 6                             # change a later token
    with torch.no_grad():
        hb, hb2 = bert(x), bert(y)
        hg, hg2 = gpt(x), gpt(y)
    assert (hb[0, :9] - hb2[0, :9]).abs().max() > 1e-3               # earlier positions see it in BERT
    assert (hg[0, :9] - hg2[0, :9]).abs().max() == 0                 # but not in GPT


def test_padding_changes_nothing():
    bert = _tiny()
    x = torch.randint(5, 50, (1, 10))
    padded = torch.cat([x, torch.full((1, 6), PAD)], 1)
    with torch.no_grad():
        assert torch.allclose(bert(x), bert(padded)[:, :10], atol=1e-5)


def test_loss_is_ce_over_selected_positions_only():
    bert = _tiny()
    x = torch.randint(5, 50, (2, 10))
    labels = torch.full_like(x, -100)
    labels[0, 3], labels[1, 7] = 11, 12
    none = torch.full((2,), -100)
    loss = bert.loss((x, torch.zeros_like(x)), (labels, none))
    logits = bert.mlm_logits(bert(x))
    manual = -(logits[0, 3].log_softmax(-1)[11] + logits[1, 7].log_softmax(-1)[12]) / 2
    assert torch.allclose(loss, manual, atol=1e-6)
    nsp = torch.tensor([0, 1])
    both = bert.loss((x, torch.zeros_like(x)), (labels, nsp))
    assert torch.allclose(both - loss, torch.nn.functional.cross_entropy(bert.nsp_logits(bert(x)), nsp), atol=1e-6)


def test_albert_parameter_counts():
    V, E, C, L = 1000, 32, 64, 4
    base = dict(vocab_size=V, block_size=32, n_layer=L, n_head=4, n_embd=C)
    bert, fact = BERT(BertConfig(**base)), BERT(BertConfig(**base, embedding_size=E))
    shared = BERT(BertConfig(**base, share_layers=True))
    block = sum(p.numel() for p in bert.blocks[0].parameters())
    # factorisation: V x C + (C x C + C) in the head become V x E + E x C + C and C x E + E, LayerNorms of size E
    emb = lambda m, e: V * e + 32 * e + 2 * e + 2 * e                # token, position, segment, LayerNorm
    assert bert.num_params() - fact.num_params() == (emb(bert, C) - emb(fact, E)) - (E * C + C) \
        + (C * C + C + 2 * C + V) - (C * E + E + 2 * E + V)
    assert bert.num_params() - shared.num_params() == (L - 1) * block
    assert len(shared.layers()) == L and all(b is shared.blocks[0] for b in shared.layers())
    # the output layer is tied: no separate V x E matrix
    assert fact.mlm_logits(torch.zeros(1, C)).shape == (1, V)


@pytest.mark.parametrize("kind", ["BertForMaskedLM", "BertForPreTraining", "AlbertForMaskedLM"])
def test_hugging_face_equivalence(kind):
    transformers = pytest.importorskip("transformers", reason="Hugging Face equivalence needs `transformers`")
    from textbook_lm.bert import hf_config

    torch.manual_seed(0)
    if kind.startswith("Albert"):
        c = transformers.AlbertConfig(vocab_size=99, embedding_size=24, hidden_size=48, num_hidden_layers=3,
                                      num_attention_heads=4, intermediate_size=96, max_position_embeddings=40,
                                      pad_token_id=1)
    else:
        c = transformers.BertConfig(vocab_size=99, hidden_size=48, num_hidden_layers=3, num_attention_heads=4,
                                    intermediate_size=96, max_position_embeddings=40, pad_token_id=1)
    hf = getattr(transformers, kind)(c).eval()
    with torch.no_grad():                                             # make biases and LayerNorms non-trivial
        for p in hf.parameters():
            p.add_(0.02 * torch.randn_like(p))
    ours = BERT.from_hf_state_dict(hf.state_dict(), hf_config(c)).eval()
    ids = torch.randint(5, 99, (3, 17))
    ids[1, 12:] = 1                                                   # padding in one row
    seg = torch.zeros_like(ids)
    seg[:, 9:] = 1
    with torch.no_grad():
        out = hf(input_ids=ids, token_type_ids=seg, attention_mask=(ids != 1).long())
        h = ours(ids, seg)
        theirs = out.logits if hasattr(out, "logits") else out.prediction_logits
        real = ids != 1
        assert (ours.mlm_logits(h)[real] - theirs[real]).abs().max() < 1e-5
        if kind == "BertForPreTraining":
            assert (ours.nsp_logits(h) - out.seq_relationship_logits).abs().max() < 1e-5


def test_span_corruption_round_trip():
    tokens = [f"w{i}" for i in range(40)]
    inp, tgt = span_corruption(tokens, noise=0.15, mean_span=3, seed=4)
    sentinels = [t for t in inp if t.startswith("<X")]
    assert sentinels == [f"<X{i}>" for i in range(len(sentinels))] and tgt[-1] == f"<X{len(sentinels)}>"
    assert len(tgt) - len(sentinels) - 1 == round(0.15 * 40)         # the dropped tokens, each once
    spans, cur = {}, None
    for t in tgt:
        if t.startswith("<X"):
            cur = t
            spans[cur] = []
        else:
            spans[cur].append(t)
    rebuilt = [w for t in inp for w in (spans[t] if t in spans else [t])]
    assert rebuilt == tokens


def test_mean_ci_matches_student_t():
    m, h = finetune.mean_ci([1.0, 2.0, 3.0])
    assert m == 2.0 and abs(h - 4.303 * 1.0 / math.sqrt(3)) < 1e-9
    m, h = finetune.mean_ci([0.5] * 5)
    assert h == 0.0
    with pytest.raises(ValueError):
        finetune.mean_ci([1.0])


class _Tok:
    """A stand-in tokenizer with the book's special-token layout."""
    vocab_size = 30
    def special_id(self, s):
        return {"[PAD]": PAD, "[CLS]": CLS, "[SEP]": SEP, "[MASK]": MASK}[s]


def _toy_task(n=400, seed=0):
    """Label 1 iff token 7 occurs: learnable from bag of words and by a BERT."""
    rng = random.Random(seed)
    def split(k):
        seqs, labels = [], []
        for _ in range(k):
            s = [rng.randrange(8, 30) for _ in range(rng.randint(4, 10))]
            y = rng.random() < 0.5
            if y:
                s[rng.randrange(len(s))] = 7
            seqs.append(s)
            labels.append(int(y))
        return xbert._data(_Tok(), seqs, labels, 16)
    return finetune.Task("toy", ["no 7", "7"], split(n), split(100), split(200), 30)


def test_fine_tuning_learns_and_baselines_behave():
    task = _toy_task()
    small = task.train.subset(0.1, seed=1)
    assert len(small) == pytest.approx(40, abs=2) and set(small.labels.tolist()) == {0, 1}
    assert all(tuple(s) in {tuple(t) for t in task.train.seqs} for s in small.seqs)
    assert abs(finetune.majority_baseline(task) - 0.5) < 0.1
    assert finetune.bag_of_words_baseline(task)["accuracy"] == 1.0
    cfg = BertConfig(vocab_size=30, block_size=16, n_layer=1, n_head=2, n_embd=32, dropout=0.0)
    model, history = finetune.fine_tune(cfg, task, seed=0, steps=150, lr=3e-3, eval_every=50)
    assert history.val_metric and len(history.val_metric) == len(history.val_step) == 3
    assert finetune.accuracy(model, task.test) > 0.9
    assert isinstance(model, BertClassifier)


def test_pretrain_on_tiny_data_lowers_mlm_loss_and_round_trips(tmp_path, monkeypatch):
    from textbook_lm.tokenize import CharTokenizer

    tok = CharTokenizer("abcdefghijklmnopqrstuvwxy", specials=mlm.SPECIALS)
    assert tok.vocab_size == 30 and [tok.special_id(s) for s in mlm.SPECIALS] == [PAD, CLS, SEP, MASK]
    docs = [[[5 + (i + j) % 20 for j in range(10)] for i in range(6)] for _ in range(40)]
    tr = mlm.MLMData(mlm.make_examples(docs, CLS, SEP, 24, nsp=True), 30, PAD, MASK, [CLS, SEP])
    va = mlm.MLMData(mlm.make_examples(docs[:5], CLS, SEP, 24, nsp=False), 30, PAD, MASK, [CLS, SEP])
    model, _, history, _ = xbert.pretrain("wikitext2-bert", steps=500, progress=False, data=(tok, tr, va),
                                        train_overrides=dict(lr=1e-2, warmup=20, eval_every=250),
                                        block_size=24, n_layer=1, n_embd=32, n_head=2, dropout=0.0)
    ev = mlm.evaluate_mlm(model, va)
    assert ev["loss"] < math.log(25) - 1.0 and ev["accuracy"] > 0.5     # the sequences are predictable
    assert ev["loss"] == pytest.approx(history.val_loss[-1], rel=1e-5)   # train's evaluation = MLM loss (no NSP)
    model.save_pretrained(tmp_path / "tiny", tokenizer=tok, info={"note": "test"}, half=True)
    again, tok2, info = hub.load(tmp_path / "tiny", kind="BERT")
    assert info == {"note": "test"} and tok2.itos == tok.itos
    x = torch.tensor([[CLS, 5, 6, MASK, 8, SEP]])
    with torch.no_grad():
        assert (again.mlm_logits(again(x)) - model.eval().mlm_logits(model(x))).abs().max() < 0.05   # float16
    top = mlm.fill_mask(again, tok2, "fg[MASK]ij", k=3)
    assert len(top) == 1 and len(top[0]) == 3 and top[0][0][1] >= top[0][1][1]


def test_grammaticality_task_is_balanced_and_splits_are_disjoint():
    from textbook_lm import tokenize

    tok = tokenize.from_pretrained("wikitext2-wordpiece-8k")
    task = xbert.grammaticality(tok, distances=range(1, 4), n_train=20, n_test=10)
    assert len(task.train) == 2 * 3 * 20 and len(task.val) == len(task.test) == 2 * 3 * 10
    for data in (task.train, task.val, task.test):
        assert data.labels.float().mean() == 0.5                    # each pair: one good, one bad
        assert sorted(data.groups.unique().tolist()) == [1, 2, 3]
        assert (data.ids[:, 0] == tok.special_id("[CLS]")).all()
    sets = [{tuple(s) for s in d.seqs} for d in (task.train, task.val, task.test)]
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])


def test_poets_task_split(data_dir):
    from textbook_lm.tokenize import CharTokenizer

    tok = CharTokenizer("", specials=mlm.SPECIALS)                  # every character -> <unk>: enough for the split
    task = xbert.poets(tok)
    n = [len(task.train), len(task.val), len(task.test)]
    assert sum(n) == 1130 + 573 and abs(n[0] / sum(n) - 0.7) < 0.01
    for d in (task.train, task.test):                               # stratified: the same class share everywhere
        assert abs(d.labels.float().mean().item() - 573 / 1703) < 0.02
    assert int(task.train.lengths.max()) <= 66
    assert finetune.majority_baseline(task) == pytest.approx(1 - task.test.labels.float().mean().item())


def test_wikitext_documents(data_dir):
    docs = xbert.wikitext_documents("valid")
    assert 55 <= len(docs) <= 65                                     # WikiText-2 validation: 60 articles
    text = " ".join(s for d in docs for s in d)
    assert "@-@" not in text and "<unk>" not in text and "[UNK]" in text
    assert not any(s.startswith("=") for d in docs for s in d)      # headings dropped


def test_tang_documents_leave_out_the_task_poets(data_dir):
    from textbook_lm.data import corpora

    docs = xbert.tang_documents()
    poems = corpora.tang_poems()
    held_out = [p for p in poems if p["author"] in xbert.EXCLUDED_POETS]
    assert len(docs) == len(poems) - len(held_out)
    texts = {"\n".join(d) for d in docs}
    assert not any(p["text"] in texts for p in held_out)
