"""Chapter 7's fact checks (Appendix C) and the measurements the chapter's prose relies on:
BERT's published corpus and compute against ours, where BERT-base's parameters are, ALBERT's
loss and cost, and the tools that ask what a masked LM uses (context shuffled or removed, a
unigram scored on the same masks, a linear probe)."""
import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from textbook_lm import attention, finetune, hub, mlm
from textbook_lm.bert import BERT, BertConfig
from textbook_lm.experiments import bert as xbert

PAD, CLS, SEP, MASK = 1, 2, 3, 4


def test_bert_was_pretrained_on_3_3_billion_words_not_hundreds_of_millions():
    paper = xbert.BERT_PAPER
    assert paper["corpus_words"] == {"BooksCorpus": 800_000_000, "English Wikipedia": 2_500_000_000}
    words = sum(paper["corpus_words"].values())
    assert words == 3_300_000_000
    # the paper's own arithmetic agrees: 1M steps of 256 x 512 token positions is "approximately 40 epochs"
    positions = paper["steps"] * paper["batch_size"] * paper["seq_len"]
    assert positions == 131_072_000_000
    assert 38 < positions / words < 42
    # with a corpus of "hundreds of millions" of words the same training would be 130 passes or more
    assert positions / 999_999_999 > 130


def test_bert_saw_thousands_not_ten_thousand_times_our_token_positions():
    paper = xbert.BERT_PAPER
    _, _, info = hub.load("wikitext2-bert")
    ours = info["steps"] * info["tokens_per_step"]
    assert 17e6 < ours < 19e6                                         # "about 18 million"
    full = paper["steps"] * paper["batch_size"] * paper["seq_len"]
    f = paper["short_fraction"]                                       # 90% of the steps at 128 tokens (Appendix A.2)
    actual = paper["steps"] * paper["batch_size"] * (f * paper["short_seq_len"] + (1 - f) * paper["seq_len"])
    for bert in (full, actual):
        assert 1_000 < bert / ours < 10_000


def test_our_wikitext2_training_text_is_about_two_million_words(data_dir):
    from textbook_lm.data import corpora

    ours = sum(len(line) for line in corpora.wikitext2("train"))
    assert 2.0e6 < ours < 2.1e6
    assert 1_500 < sum(xbert.BERT_PAPER["corpus_words"].values()) / ours < 1_700   # "some 1,600 times less"


def _bert_base(**kw):
    with torch.device("meta"):
        return BERT(BertConfig(vocab_size=30522, block_size=512, n_layer=12, n_head=12, n_embd=768, **kw))


def _count(model, *prefixes):
    return sum(p.numel() for n, p in model.named_parameters() if n.split(".")[0] in prefixes)


def test_bert_base_108m_and_110m_count_different_modules():
    m = _bert_base()
    body = _count(m, "tok", "pos", "seg", "ln_embed", "blocks")
    pooler = _count(m, "pool")
    heads = _count(m, "mlm_dense", "mlm_ln", "mlm_bias", "nsp")
    assert body == 108_891_648                                       # ALBERT's "108M": embeddings + 12 blocks
    assert body + pooler == 109_482_240                              # Hugging Face's BertModel (with its pooler)
    assert body + pooler + heads == m.num_params() == 110_106_428     # with the pretraining heads: "110M"
    assert pooler == 768 * 768 + 768 and heads == 768 * 768 + 768 + 2 * 768 + 30522 + 768 * 2 + 2


def test_hugging_face_bert_model_has_the_pooler_count():
    transformers = pytest.importorskip("transformers", reason="the comparison needs `transformers`")
    cfg = transformers.BertConfig()                                  # bert-base-uncased's shape
    with torch.device("meta"):
        hf = transformers.BertModel(cfg)
    assert sum(p.numel() for p in hf.parameters()) == 109_482_240


def _tiny(**kw):
    torch.manual_seed(0)
    return BERT(BertConfig(vocab_size=60, block_size=16, n_layer=3, n_head=2, n_embd=32, dropout=0.0, **kw)).eval()


@pytest.mark.parametrize("albert", [{}, {"embedding_size": 8}, {"share_layers": True},
                                    {"embedding_size": 8, "share_layers": True}])
def test_albert_keeps_bert_masked_lm_cross_entropy(albert):
    model = _tiny(**albert)
    x = torch.randint(5, 60, (3, 12))
    labels = torch.full_like(x, -100)
    labels[0, 2], labels[1, 5], labels[2, 9] = 7, 8, 9
    loss = model.loss((x, torch.zeros_like(x)), (labels, torch.full((3,), -100)))
    logp = model.mlm_logits(model(x)).log_softmax(-1)
    manual = -(logp[0, 2, 7] + logp[1, 5, 8] + logp[2, 9, 9]) / 3      # plain MLM cross-entropy, nothing added
    assert torch.allclose(loss, manual, atol=1e-6)


def test_layer_sharing_saves_parameters_not_computation():
    x = torch.randint(5, 60, (2, 12))
    flops, params = {}, {}
    for name, kw in (("bert", {}), ("shared", {"share_layers": True})):
        model = _tiny(**kw)
        with attention.record(model), FlopCounterMode(display=False) as fc, torch.no_grad():
            model.mlm_logits(model(x))
        flops[name], params[name] = fc.get_total_flops(), model.num_params()
    assert flops["shared"] == flops["bert"] > 0                       # every layer still runs
    assert params["shared"] < 0.5 * params["bert"]
    with torch.device("meta"):                                        # at ALBERT-base's size: 11.9M vs 110.1M parameters
        assert _bert_base(embedding_size=128, share_layers=True).num_params() < 0.11 * _bert_base().num_params()


def _data(n=40, T=20, V=30, seed=0):
    g = torch.Generator().manual_seed(seed)
    examples = []
    for _ in range(n):
        k = int(torch.randint(8, T - 2, (1,), generator=g))
        toks = torch.randint(5, V, (k,), generator=g).tolist()
        examples.append(mlm.Example([CLS, *toks, SEP], [0] * (k + 2), -100))
    return mlm.MLMData(examples, V, PAD, MASK, [CLS, SEP])


def test_shuffled_and_removed_context_keep_the_scored_tokens():
    data = _data()
    (x, _), (labels, _) = data.windows()[0]
    g = torch.Generator().manual_seed(0)
    special = torch.isin(x, torch.tensor([PAD, CLS, SEP, MASK]))
    scored = labels != -100
    for context in mlm.CONTEXTS:
        y = mlm._alter_context(x, labels, data, context, g)
        assert torch.equal(y[scored | special], x[scored | special])   # scored and special positions untouched
        ctx = ~scored & ~special
        if context == "real":
            assert torch.equal(y, x)
        elif context == "none":
            assert (y[ctx] == MASK).all()
        else:                                                         # the same tokens in each row, in a new order
            for r in range(len(x)):
                assert torch.equal(y[r, ctx[r]].sort().values, x[r, ctx[r]].sort().values)
            assert not torch.equal(y[ctx], x[ctx])


def test_hidden_loss_and_unigram_are_scored_on_the_same_masks():
    data = _data()
    logp = mlm.unigram_logprobs(data)
    assert torch.isinf(logp[[PAD, CLS, SEP, MASK]]).all() and torch.allclose(logp.exp().sum(), torch.tensor(1.0,
                                                                                                  dtype=logp.dtype))
    uni = mlm.evaluate_unigram(logp, data, None)
    nll, hidden = [], []
    for (x, _), (labels, _) in data.windows():
        sel = labels != -100
        nll.append(-logp[labels[sel]])
        hidden.append(x[sel] != labels[sel])
    nll, hidden = torch.cat(nll), torch.cat(hidden)
    assert uni["masked"] == len(nll) and uni["hidden"] == int(hidden.sum())
    assert abs(uni["loss"] - nll.mean().item()) < 1e-9
    assert abs(uni["loss_hidden"] - nll[hidden].mean().item()) < 1e-9
    torch.manual_seed(0)
    model = BERT(BertConfig(vocab_size=30, block_size=32, n_layer=1, n_head=2, n_embd=16))
    ev = mlm.evaluate_mlm(model, data, None)
    assert ev["masked"] == uni["masked"] and ev["hidden"] == uni["hidden"]
    assert 0.75 < ev["hidden"] / ev["masked"] < 0.98                  # 80% [MASK] + 10% random (some draw themselves)
    with pytest.raises(ValueError, match="context must be one of"):
        mlm.evaluate_mlm(model, data, None, context="reversed")


def test_linear_probe_reads_a_separable_feature_and_not_noise():
    torch.manual_seed(0)
    n = {"train": 200, "val": 100, "test": 100}
    labels = {k: torch.randint(0, 2, (v,)) for k, v in n.items()}
    noise = {k: torch.randn(v, 8) for k, v in n.items()}
    signal = {k: torch.cat([noise[k][:, :7], (2.0 * labels[k] - 1).unsqueeze(1) + 0.3 * noise[k][:, 7:]], 1)
              for k in n}
    data = {k: finetune.ClassificationData([[5]] * n[k], labels[k].tolist(), 2, 3, 1) for k in n}
    task = finetune.Task("toy", ["a", "b"], data["train"], data["val"], data["test"], 6)
    assert finetune.linear_probe(signal, task)["accuracy"] > 0.95
    assert finetune.linear_probe(noise, task)["accuracy"] < 0.65
    keep = task.train.subset_indices(0.1)
    assert len(keep) == sum(max(1, round(0.1 * int((labels["train"] == c).sum()))) for c in (0, 1))
    assert finetune.linear_probe(signal, task, train=keep)["accuracy"] > 0.9


def test_features_are_the_mean_hidden_state_without_padding():
    model = _tiny()
    data = finetune.ClassificationData([[5, 6, 7], [8, 9]], [0, 1], CLS, SEP, PAD)
    feats = finetune.features(model, data)
    with torch.no_grad():
        h = model(torch.tensor([[CLS, 8, 9, SEP]]))
    assert feats.shape == (2, 32)
    assert torch.allclose(feats[1], h[0].mean(0), atol=1e-5)          # the padded row ignores its padding
