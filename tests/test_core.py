import random

import numpy as np
import pytest
import torch

import textbook_lm as tlm
from textbook_lm import ngram


def test_device_is_usable_and_overridable(monkeypatch):
    d = tlm.device()
    assert torch.zeros(2, device=d).sum().item() == 0
    monkeypatch.setenv("TEXTBOOK_LM_DEVICE", "cpu")
    assert tlm.device() == torch.device("cpu")


def test_seed_makes_python_numpy_and_torch_repeat():
    def draw():
        return random.random(), np.random.rand(), torch.rand(1).item()

    tlm.seed(123)
    a = draw()
    tlm.seed(123)
    assert draw() == a
    tlm.seed(124)
    assert draw() != a
    with pytest.raises(ValueError):
        tlm.seed(-1)


def test_show_source_renders_package_code():
    src = tlm.show_source(ngram.KneserNey)
    assert str(src).startswith("class KneserNey(NGramLM):")
    assert src.path == "textbook_lm/ngram.py" and src.first_line > 1
    html = src._repr_html_()
    assert "KneserNey" in html and "style=" in html     # inline colours survive in the static site
    assert "textbook_lm.ngram.KneserNey" in repr(src)
    with pytest.raises(TypeError, match="show_source needs"):
        tlm.show_source(42)


def test_count_params_counts_shared_tensors_once_and_can_leave_out_embeddings():
    import torch.nn as nn

    from textbook_lm.utils import count_params

    emb = nn.Embedding(10, 4)
    head = nn.Linear(4, 10, bias=False)
    head.weight = emb.weight                                     # tied
    model = nn.Sequential(emb, nn.Linear(4, 4), head)
    assert count_params(model) == 40 + 20
    assert count_params(model, embeddings=False) == 20
    with pytest.raises(TypeError, match="nn.Module"):
        count_params([1, 2])


def test_eval_mode_restores_training_mode_even_after_an_error():
    import torch.nn as nn

    from textbook_lm.utils import eval_mode

    m = nn.Dropout(0.5).train()
    with pytest.raises(RuntimeError):
        with eval_mode(m):
            assert not m.training
            raise RuntimeError("boom")
    assert m.training
    with eval_mode(m.eval()):
        pass
    assert not m.training


def test_cross_entropy_ignores_minus_100_and_checks_shapes():
    import torch
    import torch.nn.functional as F

    from textbook_lm.utils import cross_entropy

    logits = torch.randn(2, 3, 5)
    y = torch.tensor([[1, -100, 4], [0, 2, -100]])
    keep = y != -100
    assert torch.allclose(cross_entropy(logits, y), F.cross_entropy(logits[keep], y[keep]))
    assert cross_entropy(logits, y, "none").shape == (2, 3)
    with pytest.raises(ValueError, match="targets of shape"):
        cross_entropy(logits, y[:, :2])
