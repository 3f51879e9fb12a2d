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


def test_update_manifest_records_hash_and_size(tmp_path):
    import hashlib
    import json

    from textbook_lm.utils import update_manifest

    f = tmp_path / "m.pt"
    f.write_bytes(b"weights")
    update_manifest(f, "old", command="x")
    row = update_manifest(f, "m", train_seconds=1.5, command="python -m x")
    saved = json.loads((tmp_path / "manifest.json").read_text())
    assert set(saved) == {"old", "m"} and saved["m"] == row
    assert row == {"file": "m.pt", "sha256": hashlib.sha256(b"weights").hexdigest(), "bytes": 7,
                   "train_seconds": 1.5, "command": "python -m x"}
