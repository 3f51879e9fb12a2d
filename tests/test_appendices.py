"""The glossary (Appendix B) and the fact-check index (Appendix C) against the chapters and tests."""
import json
from pathlib import Path

import pytest

pytest.importorskip("yaml", reason="the book's data files need pyyaml (the `book` extra)")
pytest.importorskip("docutils", reason="Appendix C's section links need docutils (Sphinx, the `book` extra)")

from textbook_lm import appendices as ap  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted(int(p.name[:2]) for p in (ROOT / "book").glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture(scope="module")
def glossary():
    return ap.load_glossary(ROOT / "book/glossary.yml")


@pytest.fixture(scope="module")
def facts():
    return ap.load_factchecks(ROOT / "book/factchecks.yml")


def test_every_term_carries_its_chinese_at_first_use(glossary):
    assert ap.check_glossary(ROOT, glossary) == []


def test_glossary_covers_every_chapter(glossary):
    assert sum(e["chapter"] <= 8 for e in glossary) >= 250      # the errata issue's bar for chapters 0-8
    per_chapter = {n: sum(e["chapter"] == n for e in glossary) for n in CHAPTERS}
    assert all(k >= 5 for k in per_chapter.values()), per_chapter
    assert len({e["zh"] for e in glossary}) > 0.9 * len(glossary)   # few English synonyms share a term


def test_every_fact_check_is_listed_with_a_real_test_and_section(facts):
    assert ap.check_factchecks(ROOT, facts) == []
    assert len(facts) >= 18


def test_appendix_pages_are_generated_from_the_data():
    assert ap.check_appendices(ROOT) == []
    toc = (ROOT / "_toc.yml").read_text(encoding="utf-8")
    for page in (ap.GLOSSARY_PAGE, ap.FACTCHECK_PAGE):
        assert page.removesuffix(".md") in toc


# ---------------------------------------------------------------- the checker catches what it should
def _book(tmp_path: Path, *cells: str) -> Path:
    (tmp_path / "book").mkdir()
    nb = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": c} for c in cells],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "book/01_demo.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests/test_demo.py").write_text("def test_real():\n    assert 1 + 1 == 2\n")
    return tmp_path


def _term(en="language model", zh="语言模型", **kw):
    return {"en": en, "zh": zh, "chapter": 1, "definition": "d", "forms": [], **kw}


@pytest.mark.parametrize("text, problem", [
    ("# 1. Demo\n\nA *language model (语言模型)* assigns probabilities.", None),
    ("# 1. Demo\n\nA *language model* (语言模型) assigns probabilities.", None),
    ("# 1. Demo\n\nLanguage models (语言模型) assign probabilities.", None),
    ("# 1. Demo\n\nA *language model* assigns probabilities (语言模型).", "first use lacks"),
    ("# 1. Demo\n\nA language model assigns. A *language model* (语言模型).", "first use lacks"),
    ("# 1. Language model\n\nA *language model* (语言模型).", None),          # headings are not prose
    ("# 1. Demo\n\n`language model` then *language model* (语言模型).", None),   # nor is code
    ("# 1. Demo\n\nA *language model* (语言模型).\n\n## References\n\nLanguage models.", None),
    ("# 1. Demo\n\n## References\n\nA *language model* (语言模型).", "not used"),
    ("# 1. Demo\n\nA *language-model* (语言模型) assigns.", None),              # space or hyphen
    ("# 1. Demo\n\nA *large language model* (大语言模型).", "first use lacks"),   # the term inside another
    ("# 1. Demo\n\nA *neural language modeller*.", "not used"),                # not a whole word
    ("# 1. Demo\n\nA *language model head (语言模型头)*.", "(语言模型头) is not in"),   # the head of a glossed
    ("# 1. Demo\n\nA *language model head (模型头)*.", "first use lacks"),          # phrase: only its own term
    ("# 1. Demo\n\nA *language model* (语言模型) and a *corpus* (语料库).", "(语料库) is not in"),
    ("# 1. Demo\n\nA *language model* (语言模型, LM), the moon 月 (\"moon\").", None),
])
def test_glossary_check_catches(tmp_path, text, problem):
    root = _book(tmp_path, text)
    problems = ap.check_glossary(root, [_term()])
    if problem is None:
        assert problems == []
    else:
        assert any(problem in p for p in problems), problems


def test_glossary_check_with_forms_and_chapter_filter(tmp_path):
    root = _book(tmp_path, "# 1. Demo\n\nThe *LMs* (语言模型) of this chapter.")
    assert ap.check_glossary(root, [_term(forms=["LM"])]) == []
    assert ap.check_glossary(root, [_term()]) != []
    assert ap.check_glossary(root, [_term()], chapters={2}) == []


BOX = ":::{admonition} Fact check: \"the moon is cheese\"\n:class: warning\nIt is rock.\n:::"


def _fact(**kw):
    return {"claim": '"the moon is cheese"', "found": "folk tales", "truth": "rock", "chapter": 1,
            "section": "1.2", "test": "tests/test_demo.py::test_real", **kw}


@pytest.mark.parametrize("fact, problem", [
    (_fact(), None),
    (_fact(test="tests/test_demo.py::test_missing"), "does not exist"),
    (_fact(test="tests/test_nofile.py::test_real"), "does not exist"),
    (_fact(section="1.3"), "section 1.3 does not exist"),
    (_fact(section="1.1"), "no such box in section 1.1"),
    (_fact(claim='"the sun is cheese"'), "is not in factchecks.yml"),
])
def test_factcheck_check_catches(tmp_path, fact, problem):
    root = _book(tmp_path, "# 1. Demo\n\n## 1.1 First\n\nText.", f"## 1.2 Second\n\n{BOX}")
    problems = ap.check_factchecks(root, [fact])
    if problem is None:
        assert problems == []
    else:
        assert any(problem in p for p in problems), problems


@pytest.mark.parametrize("bad, message", [
    ([{"en": "x", "zh": "y", "chapter": 1, "definition": "d"}], "no Chinese"),
    ([{"en": "x", "zh": "词", "chapter": 13, "definition": "d"}], "chapter number"),
    ([{"en": "x", "zh": "词", "chapter": 1}], "missing"),
    ([{"en": "x", "zh": "词", "chapter": 1, "definition": "d"}] * 2, "listed twice"),
    ([{"en": "x", "zh": "词", "chapter": 1, "definition": "d", "form": ["y"]}], "unknown"),
])
def test_glossary_loader_refuses_bad_entries(tmp_path, bad, message):
    import yaml
    path = tmp_path / "g.yml"
    path.write_text(yaml.safe_dump(bad, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        ap.load_glossary(path)


def test_factcheck_loader_refuses_a_test_that_is_not_a_node_id(tmp_path):
    import yaml
    path = tmp_path / "f.yml"
    path.write_text(yaml.safe_dump([_fact(test="test_demo.test_real")]), encoding="utf-8")
    with pytest.raises(ValueError, match="test must look like"):
        ap.load_factchecks(path)
