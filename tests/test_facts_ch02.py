"""Facts that chapter 2's fact-check boxes and its WordPiece section rely on (Appendix C).

Each test fails if the fact were otherwise. They use the shipped tokenizers and fixed strings,
so they need no corpus.
"""
import math

import pytest

from textbook_lm import bpe
from textbook_lm import tokenize as T


@pytest.fixture(scope="module")
def tang():
    return T.from_pretrained("tang-bpe-4k")


def test_tang_bpe_is_not_word_segmentation(tang):
    """'An LLM's tokenizer does Chinese word segmentation': its tokens cross word boundaries,
    cut words apart, depend on the neighbours, and can be parts of characters."""
    vocab = set(tang.itos)
    assert {"春草", "草木", "春風", "秋風", "風吹"} <= vocab
    # 杜甫: 國破山河在，城春草木深 -- words 城/春/草木/深, but BPE keeps 春草 and cuts 草木
    spring = tang.tokens("國破山河在，城春草木深。")
    assert "春草" in spring and "木" in spring and "草木" not in spring
    # the same characters 風吹 are cut two ways, depending on the neighbour
    wild = tang.tokens("野火燒不盡，春風吹又生。")
    assert wild[5:7] == ["春風", "吹"] and "風吹" not in wild
    autumn = tang.tokens("秋風吹不盡，總是玉關情。")
    assert autumn[:2] == ["秋", "風吹"] and "秋風" not in autumn
    # some learned tokens hold only part of a character (bytes that are not valid UTF-8)
    partial = [t for t in tang.itos[256:256 + len(tang.merges)] if "\ufffd" in t]
    assert len(partial) > 100
    # and the word-level pre-tokenizer (like Chinese BERT's) does no segmentation at all
    assert T.split_words("城春草木深") == list("城春草木深")


def test_a_token_is_neither_a_word_nor_a_character():
    """'One token is one word' and 'one Chinese character is one token': both depend on the
    tokenizer and its training data."""
    english, tang = T.from_pretrained("shakespeare-bpe-1k"), T.from_pretrained("tang-bpe-4k")
    sentence = "The unfortunate kingdom, once again, awaits its messengers."
    assert len(english.encode(sentence)) > 2 * len(sentence.split())          # 25 tokens, 8 words
    line = "西陸蟬聲唱，南冠客思侵。那堪玄鬢影，來對白頭吟。"
    assert len(english.encode(line)) == 3 * len(line)                          # a byte per token
    assert len(tang.encode(line)) < len(line)                                  # pairs kept whole
    for tok in (english, tang):
        assert tok.decode(tok.encode(line)) == line


def test_wordpiece_score_and_likelihood_choose_other_merges_than_bpe():
    """Section 2.5: on Sennrich et al.'s toy corpus, frequency, the WordPiece score and the
    unigram likelihood gain choose three different first merges."""
    toy = {"low": 5, "lower": 2, "newest": 6, "widest": 3}
    alphabet = sorted(set("".join(toy)))
    words = [[alphabet.index(c) for c in w] for w in toy]
    scores = bpe.merge_scores(words, list(toy.values()))
    pair = lambda s: tuple(alphabet.index(c) for c in s)                    # noqa: E731
    best = [min(scores, key=lambda p: (-scores[p][k], p)) for k in range(3)]
    assert best == [pair("es"), pair("id"), pair("st")]
    assert best[0] == bpe.learn_merges(words, list(toy.values()), 1, len(alphabet), min_frequency=1)[0]
    # the score is count(ab) / (count(a) count(b)): i and d occur 3 times each, always together
    assert scores[pair("id")][:2] == (3, pytest.approx(3 / (3 * 3)))
    # the gain is the exact change of the unigram log-likelihood, recomputed by hand for "st"
    def loglik(segs):
        counts = {}
        for seg, f in zip(segs, toy.values()):
            for s in seg:
                counts[s] = counts.get(s, 0) + f
        n = sum(counts.values())
        return sum(c * math.log(c / n) for c in counts.values())
    before = [list(w) for w in toy]
    after = [list(w.replace("st", "S")) for w in toy]
    assert scores[pair("st")][2] == pytest.approx(loglik(after) - loglik(before), rel=1e-12)
    with pytest.raises(ValueError, match="one frequency per word"):
        bpe.merge_scores(words, [1])
