"""Chapter 8's fact checks: how GPT is trained and what it reads; generators versus classifiers."""
import torch

import textbook_lm as tlm
from textbook_lm import bert, nnlm
from textbook_lm import train as tr
from textbook_lm.gpt import GPT, GPTConfig


def tiny_gpt(vocab_size=64):
    tlm.seed(0)
    return GPT(GPTConfig(vocab_size=vocab_size, block_size=16, n_layer=2, n_head=4, n_embd=32)).eval()


def test_gpt_is_trained_on_unmasked_next_tokens_and_reads_only_leftward():
    model = tiny_gpt()
    stream = tr.TokenStream(torch.arange(60))                  # token i sits at position i: easy to trace
    x, y = stream.batch(4, 8, generator=torch.Generator().manual_seed(0))
    # the input is a window of the text as it is (nothing masked or replaced) ...
    assert torch.equal(x[:, 1:], x[:, :-1] + 1)
    # ... and every target is simply the next token of the text
    assert torch.equal(y, x + 1)
    # the training loss is the next-token cross-entropy, each prediction made from the prefix alone
    with torch.no_grad():
        loss = tr._loss(model, x, y).item()
        by_prefix = torch.stack([model(x[:, :t + 1])[:, -1].log_softmax(-1).gather(1, y[:, t:t + 1])[:, 0]
                                 for t in range(x.size(1))], 1)
    assert abs(loss + by_prefix.mean().item()) < 1e-5
    # causal: changing later tokens leaves every earlier output exactly as it was
    changed = x.clone()
    changed[:, 5:] = torch.randint(0, 64, (4, 3), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a, b = model(x), model(changed)
    assert torch.equal(a[:, :5], b[:, :5])
    assert not torch.allclose(a[:, 5:], b[:, 5:], atol=1e-3)


def test_a_language_model_outputs_a_vocabulary_distribution_at_every_position_a_classifier_one_per_text():
    B, T, V = 3, 12, 50
    ids = torch.randint(2, V, (B, T), generator=torch.Generator().manual_seed(0))
    gpt = tiny_gpt(V)
    tlm.seed(0)
    lstm_lm = nnlm.RecurrentLM(nnlm.RecurrentConfig(V, kind="lstm")).eval()
    classifier = bert.BertClassifier(bert.BERT(bert.BertConfig(V, block_size=32, n_layer=2, n_head=4,
                                                               n_embd=32)), 2).eval()
    with torch.no_grad():
        lm_out, lstm_out, cls_out = gpt(ids), lstm_lm(ids)[0], classifier(ids)
    # generators (a Transformer or an LSTM): a distribution over the whole vocabulary at every position
    for out in (lm_out, lstm_out):
        assert out.shape == (B, T, V)
        assert torch.allclose(out.softmax(-1).sum(-1), torch.ones(B, T), atol=1e-5)
    # a sequence classifier: one score per class, per sequence, nothing per position or per token
    assert cls_out.shape == (B, 2)
    # with two classes its softmax is a sigmoid of the score difference: one number per sequence
    p = cls_out.softmax(-1)[:, 1]
    assert torch.allclose(p, torch.sigmoid(cls_out[:, 1] - cls_out[:, 0]), atol=1e-6)
    # and only the generator's output can be sampled from and extended, token by token
    nxt = torch.multinomial(lm_out[:, -1].softmax(-1), 1, generator=torch.Generator().manual_seed(0))
    longer = torch.cat([ids, nxt], 1)
    with torch.no_grad():
        assert gpt(longer).shape == (B, T + 1, V) and classifier(longer).shape == (B, 2)
