"""The hub: every shipped artefact verified, tampering refused, ids kept, mismatches refused,
and stored leaderboard numbers recomputed from the shipped weights."""
import json
import shutil

import pytest
import torch

from textbook_lm import hub, leaderboard, train
from textbook_lm.bert import BERT, BertConfig
from textbook_lm.gpt import GPT, GPTConfig
from textbook_lm.tokenize import CharTokenizer, WordPieceTokenizer

SHIPPED = hub.available()


def test_the_package_ships_every_artefact_the_book_loads():
    assert {"shakespeare-char", "wikitext2-lstm", "wikitext2-rnn", "wikitext2-nnlm", "wikitext2-bert", "tang-bert",
            "tinylang-bert", "wikitext2-sgns", "wikitext2-glove", "shakespeare-bpe-1k", "wikitext2-bpe-4k",
            "wikitext2-wordpiece-8k", "tang-bpe-4k", "leaderboard", "bert-ablations", "bert-finetune", "tinylang-gpt",
            "gpt-scaling", "bert-probe", "icl-2layer", "icl-1layer", "icl-fixed", "cot-steps", "cot-direct",
            "icl-seeds", "instruct-base", "instruct-sft", "instruct-rm", "instruct-ppo", "instruct-dpo",
            "instruct-frontier", "instruct-overoptimisation", "tinylang-teacher", "tinylang-student",
            "distill-temperature", "distill-students", "distill-transfer", "distill-omitted", "distill-bert",
            "distill-compression"} <= set(SHIPPED)
    total = sum(f.stat().st_size for f in hub.SHIPPED_DIR.rglob("*") if f.is_file())
    assert total < 43_000_000    # the book's budget for shipped files (+3 MB for Chapter 11's teacher and student)


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_every_shipped_artefact_matches_its_manifest_and_loads(name):
    manifest = hub.verify(hub.SHIPPED_DIR / name)
    for f, meta in manifest["files"].items():
        assert hub.sha256_file(hub.SHIPPED_DIR / name / f) == meta["sha256"]
    obj, tok, info = hub.load(name)
    assert "command" in info and info["command"].startswith("python -m textbook_lm.experiments.")
    if hasattr(obj, "cfg"):                                           # a model: eval mode, and its tokenizer agrees
        assert not obj.training and tok is not None
        assert obj.cfg.vocab_size == (len(tok) if isinstance(tok, list) else tok.vocab_size)


def _copy(name, tmp_path):
    d = tmp_path / name
    shutil.copytree(hub.SHIPPED_DIR / name, d)
    return d


def test_a_tampered_copy_is_refused(tmp_path):
    d = _copy("tinylang-bert", tmp_path)
    hub.load(d)                                                      # the copy itself is fine
    data = bytearray((d / "weights.pt").read_bytes())
    data[len(data) // 2] ^= 1                                        # one bit flipped
    (d / "weights.pt").write_bytes(bytes(data))
    with pytest.raises(hub.ArtefactError, match="weights.pt: sha256 does not match"):
        hub.load(d)
    d = _copy("shakespeare-char", tmp_path)
    (d / "tokenizer.json").unlink()
    with pytest.raises(hub.ArtefactError, match="tokenizer.json: missing"):
        hub.load(d)
    d = _copy("gpt-scaling", tmp_path)
    m = json.loads((d / "manifest.json").read_text())
    m["format"] = 99
    (d / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(hub.ArtefactError, match="format 99"):
        hub.load(d)


def test_round_trip_with_special_tokens_keeps_every_id(tmp_path):
    tok = CharTokenizer("hello world", specials=["<|endoftext|>", "[PAD]"])
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=16, n_layer=1, n_head=2, n_embd=16))
    model.save_pretrained(tmp_path / "m", tokenizer=tok)
    again, tok2, _ = hub.load(tmp_path / "m")
    assert tok2.itos == tok.itos and tok2.specials == tok.specials
    text = "hello<|endoftext|>world[PAD]"
    assert tok2.encode(text) == tok.encode(text)
    x = torch.tensor([tok.encode("hello world")])
    assert torch.equal(again(x), model.eval()(x))


def test_the_hub_refuses_a_shuffled_vocabulary(tmp_path):
    tok = CharTokenizer("abcdef")
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=8, n_layer=1, n_head=1, n_embd=8))
    d = model.save_pretrained(tmp_path / "m", tokenizer=tok)
    t = json.loads((d / "tokenizer.json").read_text())
    t["data"]["chars"] = t["data"]["chars"][::-1]        # CharTokenizer sorts them back: same ids, accepted
    (d / "tokenizer.json").write_text(json.dumps(t))
    manifest = json.loads((d / "manifest.json").read_text())
    manifest["files"]["tokenizer.json"] = {"sha256": hub.sha256_file(d / "tokenizer.json"),
                                           "bytes": (d / "tokenizer.json").stat().st_size}
    (d / "manifest.json").write_text(json.dumps(manifest))
    assert hub.load(d).tokenizer.itos == tok.itos
    t["data"]["chars"] = list("abcdeg")                  # a different vocabulary with the same size
    (d / "tokenizer.json").write_text(json.dumps(t))
    manifest["files"]["tokenizer.json"] = {"sha256": hub.sha256_file(d / "tokenizer.json"),
                                           "bytes": (d / "tokenizer.json").stat().st_size}
    (d / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(hub.ArtefactError, match="ids would be shuffled"):
        hub.load(d)


def test_model_and_tokenizer_mismatch_is_refused(tmp_path):
    small = CharTokenizer("abc")                                      # 4 tokens
    model = GPT(GPTConfig(vocab_size=10, block_size=8, n_layer=1, n_head=1, n_embd=8))
    with pytest.raises(hub.ArtefactError, match="vocab_size=10 but its tokenizer has 4 tokens"):
        model.save_pretrained(tmp_path / "m", tokenizer=small)
    assert not (tmp_path / "m").exists()
    wp = WordPieceTokenizer(["a", "b", "##c"])                        # [PAD] at id 1
    bert = BERT(BertConfig(vocab_size=wp.vocab_size, block_size=8, n_layer=1, n_head=1, n_embd=8, pad_id=2))
    with pytest.raises(hub.ArtefactError, match="pads with id 2"):
        bert.save_pretrained(tmp_path / "b", tokenizer=wp)
    with pytest.raises(hub.ArtefactError, match="holds a GPT, not a BERT"):
        BERT.from_pretrained("shakespeare-char")
    with pytest.raises(TypeError, match="cannot save a"):
        hub.save(object(), tmp_path / "x")


def test_save_replaces_a_folder_atomically_and_leaves_nothing_behind(tmp_path):
    hub.save({"v": 1}, tmp_path / "r")
    hub.save({"v": 2}, tmp_path / "r")
    assert hub.load(tmp_path / "r").obj == {"v": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]        # no temporary or old folders
    with pytest.raises(TypeError):
        hub.save({"v": object()}, tmp_path / "r")                     # not JSON: fails before replacing
    assert hub.load(tmp_path / "r").obj == {"v": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_stored_leaderboard_numbers_of_the_shipped_gpt_are_recomputed(data_dir):
    from textbook_lm.experiments.gpt import char_data

    model, tok, info = hub.load("shakespeare-char")
    chars, _, val = char_data("shakespeare")
    assert chars.itos == tok.itos
    entry = leaderboard.load().get("GPT, shipped checkpoint", "tinyshakespeare-char", "val")
    n, T = len(val) - 1, model.cfg.block_size
    # train.evaluate's windows (non-overlapping, block_size long, the last one shorter), in batches
    full = n // T
    x = val.ids[: full * T].view(full, T)
    y = val.ids[1: full * T + 1].view(full, T)
    nll = 0.0
    with torch.no_grad():
        for i in range(0, full, 128):
            logits = model(x[i:i + 128])
            nll += torch.nn.functional.cross_entropy(logits.flatten(0, 1), y[i:i + 128].flatten(), reduction="sum").item()
        if n > full * T:
            logits = model(val.ids[full * T: n][None])
            nll += torch.nn.functional.cross_entropy(logits[0], val.ids[full * T + 1:], reduction="sum").item()
    assert entry.n_tokens == n == 111_539 and nll == pytest.approx(entry.nll, rel=1e-4)


def test_stored_leaderboard_numbers_of_the_shipped_lstm_are_recomputed(data_dir):
    from textbook_lm.data import corpora
    from textbook_lm.nnlm import encode

    model, vocab, info = hub.load("wikitext2-lstm")
    test = corpora.wikitext2("test")
    entry = leaderboard.load().get("LSTM (adaptive softmax, 64/256)", "wikitext-2")
    s = train.score_sequences(model, encode(test, vocab), vocab.index("<eos>"))
    assert s.n_tokens == entry.n_tokens and s.nll == pytest.approx(entry.nll, rel=1e-4)
