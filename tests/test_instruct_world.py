"""Chapter 10's instruction world: tasks, documents, demonstrations and the gold judge."""
import math
import random

import pytest

from textbook_lm.data import instruct as w


def test_vocabulary_has_no_duplicates_and_round_trips():
    assert len(set(w.VOCAB)) == len(w.VOCAB)
    assert [w.VOCAB[i] for i in (w.PAD, w.EOS, w.USER, w.BOT)] == ["<pad>", "<eos>", "<user>", "<bot>"]
    words = ["<user>", "sort", "c", "a", "<bot>", "a", "c", ".", "<eos>"]
    assert w.decode(w.encode(words)) == words
    with pytest.raises(KeyError, match="vocabulary"):
        w.encode(["hello"])


@pytest.mark.parametrize("kind,args,answer", [("reverse", ("c", "a", "d"), ("d", "a", "c")),
                                              ("sort", ("c", "a", "d"), ("a", "c", "d")),
                                              ("count", ("c", "a", "d"), ("three",))])
def test_tasks_have_the_right_answers(kind, args, answer):
    rng = random.Random(0)
    for _ in range(200):
        ex = w.task(rng, kind)
        if ex.args == args:
            assert ex.answer == answer
        assert ex.prompt == ["<user>", kind, *ex.args, "<bot>"]
        assert 2 <= len(ex.args) <= w.MAX_LETTERS and len(set(ex.args)) == len(ex.args)
    ex = w.Example(kind, args, answer)
    assert w.judge(ex, [*answer, ".", "<eos>"]).correct == 1.0


def test_colour_questions_ask_the_world_facts():
    rng = random.Random(1)
    ex = w.task(rng, "colour", names=["bal"])
    assert ex.prompt == ["<user>", "colour", "of", "bal", "?", "<bot>"] and ex.answer == (w.FACTS["bal"],)
    assert set(w.FACTS) == set(w.NAMES) and set(w.FACTS.values()) <= set(w.COLOURS)
    with pytest.raises(ValueError, match="unknown task"):
        w.task(rng, "translate")


def test_documents_state_the_same_facts_as_plain_text_never_as_dialogue():
    docs = w.documents(random.Random(2), 400)
    assert not any("<user>" in d or "<bot>" in d for d in docs)
    forms = set()
    for d in docs:
        words = d.split()
        w.encode(words)
        if words[:3] == ["the", "colour", "of"]:
            assert words[4:] == ["is", w.FACTS[words[3]], "."]
            forms.add("the colour of x is y")
        elif words[0] in w.NAMES:                          # "x is y ." / "x has the colour y ."
            assert words[-2] == w.FACTS[words[0]]
            forms.add(words[1])
        elif words[0] in w.COLOURS:                        # "y is the colour of x ."
            assert words[0] == w.FACTS[words[-2]]
            forms.add("y is the colour of x")
        if "reversed" in words:
            k = words.index("reversed")
            assert words[k + 2:-1] == words[:k][::-1]
    assert forms == {"the colour of x is y", "is", "has", "y is the colour of x"}      # four paraphrases
    plain = w.documents(random.Random(2), 400, paraphrase=False)
    assert all(d.startswith("the colour of") for d in plain if any(c in d for c in w.COLOURS))


def test_the_judge_scores_each_term_by_hand():
    ex = w.Example("reverse", ("c", "a", "d"), ("d", "a", "c"))
    s = lambda text: w.judge(ex, text.split())
    assert s("d a c . <eos>").total == 1.0
    assert s("d a c . hope this helps . <eos>").total == 1.3                       # polite
    assert s("well , d a c . <eos>").total == pytest.approx(0.8)                    # 2 filler words
    assert s("let me see , d a c . hope this helps . <eos>").total == pytest.approx(0.9)
    assert s("d a c . hope this helps . hope this helps . <eos>").total == pytest.approx(1 - 0.4 - 0.5)
    assert s("d a c . red red . <eos>").total == pytest.approx(1 - 0.3)             # 3 words after the answer
    assert s("d a c .").total == pytest.approx(0.5)                                 # never ends
    assert s("d c a . <eos>").correct == pytest.approx(0.5 * 1 / 3)                 # one position right
    assert s("three . <eos>").correct == 0.0
    assert s("d a c . <eos> junk junk").total == 1.0                                # after <eos>: ignored
    count = w.Example("count", ("c", "a"), ("two",))
    assert w.judge(count, "three . <eos>".split()).correct == 0.0


def test_demonstrations_are_always_right_and_sometimes_polite_or_verbose():
    rng = random.Random(3)
    scores = [w.judge(ex, w.demonstration(rng, ex)) for ex in w.prompts(2000, seed=4)]
    assert all(s.correct == 1.0 and s.repeat == 0 for s in scores)
    polite = sum(s.polite > 0 for s in scores) / len(scores)
    verbose = sum(s.verbose < 0 for s in scores) / len(scores)
    assert abs(polite - 0.3) < 0.04 and abs(verbose - 0.3) < 0.04


def test_the_annotator_follows_the_judge_with_bradley_terry_noise():
    ex = w.Example("sort", ("b", "a"), ("a", "b"))
    good, plain = "a b . hope this helps . <eos>".split(), "a b . <eos>".split()
    rng = random.Random(5)
    share = sum(w.annotate(rng, ex, good, plain) for _ in range(4000)) / 4000
    p = 1 / (1 + math.exp(-0.3 / 0.2))                                  # gold gap 0.3, noise 0.2
    assert abs(share - p) < 0.025
    assert w.agreement_ceiling(ex, good, plain) == pytest.approx(p)
    assert w.agreement_ceiling(ex, plain, plain) == 0.5


def test_a_prompt_gives_back_its_task():
    rng = random.Random(6)
    for _ in range(300):
        ex = w.task(rng)
        assert w.from_prompt(ex.prompt) == ex
    with pytest.raises(ValueError, match="not a prompt"):
        w.from_prompt(["the", "colour", "of", "bal", "is"])


def test_demonstration_logprob_is_the_demonstrators_distribution():
    ex = w.task(random.Random(0), "sort")
    answer = [*ex.answer, "."]
    every = [[*f, *answer, *c, "<eos>"] for f in [[], *w.FILLERS] for c in ([], w.CLOSING)]
    total = sum(math.exp(w.demonstration_logprob(ex, r)) for r in every)
    assert total == pytest.approx(1.0, abs=1e-12)
    assert math.exp(w.demonstration_logprob(ex, [*answer, "<eos>"])) == pytest.approx(0.7 * 0.7)
    assert w.demonstration_logprob(ex, ["a", ".", "<eos>"]) == -math.inf           # a wrong answer
    assert w.demonstration_logprob(ex, [*answer, *w.CLOSING, *w.CLOSING, "<eos>"]) == -math.inf
    rng = random.Random(1)                              # sampled demonstrations are all possible
    assert all(w.demonstration_logprob(ex, w.demonstration(rng, ex)) > -math.inf for _ in range(200))
