import random

import pytest

from textbook_lm import tokenize as T

from reference_bpe import naive_merges

hypothesis = pytest.importorskip("hypothesis", reason="property tests need hypothesis (pip install -e .[test])")
from hypothesis import given, settings, strategies as st  # noqa: E402

TEXT = ("The quick brown fox jumps over the lazy dog. The dog sleeps; the fox doesn't!\n"
        "床前明月光，疑是地上霜。舉頭望明月，低頭思故鄉。 Numbers: 12345, 3.14. Emoji 🙂🙂 done.\n") * 5

# arbitrary Unicode: every category, including control characters, emoji and lone surrogates
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=60)
MIXED = st.text(st.sampled_from(list("abc de,.!?") + ["你", "好", "🙂", "\n", "\t", "\x00", "é"]), max_size=60)


@pytest.fixture(scope="module")
def toks():
    return {"char": T.CharTokenizer.train(TEXT), "word": T.WordTokenizer.train(TEXT),
            "bpe": T.BPETokenizer.train(TEXT, 256 + 60, specials=["<|endoftext|>"]),
            "wordpiece": T.WordPieceTokenizer.train(TEXT, 120)}


@settings(max_examples=300, deadline=None)
@given(s=st.one_of(ANY_TEXT, MIXED))
def test_byte_level_bpe_round_trips_every_string(toks, s):
    assert toks["bpe"].decode(toks["bpe"].encode(s)) == s


@settings(max_examples=200, deadline=None)
@given(s=st.one_of(ANY_TEXT, MIXED))
def test_char_and_word_tokenizers_round_trip_up_to_their_normalisation(toks, s):
    char = toks["char"]
    assert char.decode(char.encode(s)) == "".join(c if c in char.stoi else "\ufffd" for c in s)
    for name in ("word", "wordpiece"):
        t = toks[name]
        ids = t.encode(s)
        assert all(0 <= i < t.vocab_size for i in ids)
        assert t.decode(ids) == t.normalize(s)
        assert t.encode(t.decode(ids)) == ids                # decoding loses nothing more


def test_round_trip_is_exact_on_in_vocabulary_text(toks):
    w = toks["word"]
    assert w.decode(w.encode("the quick fox sleeps .")) == "the quick fox sleeps ."
    assert w.decode(w.encode("明月 光")) == "明月光"             # no spaces between CJK characters
    wp = toks["wordpiece"]
    assert wp.decode(wp.encode("the dog sleeps")) == "the dog sleeps"


def test_unknown_input_never_crashes_and_is_marked(toks):
    assert toks["char"].encode("Ж") == [toks["char"].special_id("<unk>")]
    assert toks["word"].tokens("zyzzyva fox") == ["<unk>", "fox"]
    assert toks["wordpiece"].tokens("Ж") == ["[UNK]"]
    assert toks["wordpiece"].tokens("x" * 101) == ["[UNK]"]         # longer than max_chars
    with pytest.raises(ValueError, match="token ids"):
        toks["bpe"].decode([10**6])


def test_chinese_is_split_into_characters_by_word_level_tokenizers():
    assert T.split_words("床前明月光，疑是地上霜") == list("床前明月光，疑是地上霜")
    assert T.split_words("Hello, world! don't") == ["Hello", ",", "world", "!", "don", "'", "t"]


def test_bpe_training_matches_the_slow_reference_exactly():
    rng = random.Random(0)
    for trial in range(30):
        alphabet = rng.randint(2, 6)
        words = [[rng.randrange(alphabet) for _ in range(rng.randint(1, 9))] for _ in range(rng.randint(1, 25))]
        freqs = [rng.randint(1, 5) for _ in words]
        for min_freq in (1, 2):
            assert T.learn_merges(words, freqs, 40, 100, min_freq) == naive_merges(words, freqs, 40, 100, min_freq)


def test_bpe_on_real_text_matches_reference_and_respects_pretokenization():
    import regex
    from collections import Counter

    counts = Counter(regex.findall(T.GPT2_PATTERN, TEXT))
    words = [list(w.encode()) for w in counts]
    fast = T.learn_merges(words, list(counts.values()), 80, 256)
    assert fast == naive_merges(words, list(counts.values()), 80, 256)
    bpe = T.BPETokenizer(fast)
    # no token spans a pre-token boundary: every token's bytes lie inside one GPT-2 piece
    for piece in counts:
        assert b"".join(bpe.bytes_of[i] for i in bpe.encode(piece)) == piece.encode()
    assert all(not (t.strip() and t.endswith(" ")) for t in bpe.itos[256:])   # spaces only lead a token


def test_ties_are_broken_by_the_smallest_pair():
    # (0,1) and (2,3) both occur twice: the smaller pair (0, 1) is merged first
    assert T.learn_merges([[2, 3, 0, 1], [2, 3, 0, 1]], [1, 1], 1, 10)[0] == (0, 1)


def test_special_tokens(toks):
    bpe = toks["bpe"]
    eot = bpe.special_id("<|endoftext|>")
    ids = bpe.encode("a<|endoftext|>b")
    assert eot in ids and bpe.decode(ids) == "a<|endoftext|>b"
    assert eot not in bpe.encode("a<|endoftext|>b", allow_special=False)
    with pytest.raises(KeyError):
        bpe.special_id("<nope>")


def test_save_and_load_round_trip(tmp_path, toks):
    sample = "The lazy fox, 明月 🙂 unknownword!"
    for name, tok in toks.items():
        path = tmp_path / f"{name}.json"
        tok.save(path)
        assert path.read_text(encoding="utf-8").startswith("{")
        again = T.load(path)
        assert type(again) is type(tok) and again.vocab_size == tok.vocab_size
        assert again.encode(sample) == tok.encode(sample)
    (tmp_path / "bad.json").write_text('{"type": "sentencepiece"}')
    with pytest.raises(ValueError, match="unknown tokenizer type"):
        T.load(tmp_path / "bad.json")


def test_vocab_size_is_respected():
    bpe = T.BPETokenizer.train(TEXT, 300, specials=["<|endoftext|>"])
    assert bpe.vocab_size == 300
    with pytest.raises(ValueError, match="vocab_size"):
        T.BPETokenizer.train(TEXT, 100)
    assert T.WordTokenizer.train(TEXT, max_vocab=10).vocab_size == 11        # + <unk>


def test_shipped_tokenizers_load_and_match_their_recipe(data_dir):
    from textbook_lm.experiments import tokenize as recipes

    tok = T.from_pretrained("shakespeare-bpe-1k")
    assert tok.vocab_size == recipes.RECIPES["shakespeare-bpe-1k"]["vocab_size"]
    assert recipes.train("shakespeare-bpe-1k").merges == tok.merges      # reproducible from the recipe
    for name, r in recipes.RECIPES.items():
        assert T.from_pretrained(name).vocab_size == r["vocab_size"]
    with pytest.raises(FileNotFoundError, match="gpt4"):
        T.from_pretrained("gpt4")


def test_trace_records_each_merge_with_its_count():
    trace = []
    merges = T.learn_merges([[0, 1, 0, 1], [0, 1]], [2, 1], 2, 10, min_frequency=1, trace=trace)
    assert [p for p, _ in trace] == merges and trace[0] == ((0, 1), 5)


def test_bpe_work_is_bounded_on_text_without_spaces(monkeypatch):
    """64k characters with no space used to be one 64k-character pre-token: training grew
    quadratically and encoding hung. Long pre-tokens are now cut into MAX_PIECE chunks."""
    import time

    text = ("thequickbrownfoxjumpsoverthelazydog" * 2000)[:64_000]
    lengths = []
    real = T.learn_merges
    monkeypatch.setattr(T, "learn_merges", lambda words, *a, **k: lengths.extend(map(len, words)) or real(words, *a, **k))
    t0 = time.perf_counter()
    bpe = T.BPETokenizer.train(text, 256 + 40)
    ids = bpe.encode(text)
    seconds = time.perf_counter() - t0
    assert max(lengths) <= T.MAX_PIECE                  # bytes of one chunk: here 1 byte per character
    assert bpe.decode(ids) == text and len(bpe.merges) == 40
    assert seconds < 0.5, f"training and encoding 64k unspaced characters took {seconds:.2f} s"   # was ~0.8 s
