"""The book's glossary (Appendix B) and fact-check index (Appendix C), kept as checked data.

Two YAML files in ``book/`` are the one source of each appendix:

``book/glossary.yml``, a list of terms::

    - en: perplexity            # the English term, as the prose writes it
      zh: 困惑度                # its Chinese equivalent (simplified characters)
      chapter: 1                # the chapter that introduces it
      definition: ...           # one line
      forms: [perplexities]     # optional: other spellings that count as a use

``book/factchecks.yml``, a list of misconceptions the book settles::

    - claim: GPT is pretrained by masking tokens, like BERT   # the admonition's title, verbatim
      found: popular explainers ...  # where the claim is commonly found (no authors named)
      truth: ...                      # what is true, in a sentence or two
      chapter: 8
      section: "8.1"                  # the numbered section that holds the box
      test: tests/test_gpt.py::test_causal   # the test that would fail if the fact were otherwise

:func:`check_glossary` finds each term's first use in its chapter's prose (markdown cells,
without code, math, links' targets and headings) and requires the Chinese term in the
parenthesis right after it, e.g. ``*self-attention* (自注意力)``; it also requires every
Chinese parenthesis after an English word anywhere in the prose to be a glossary term, spelled
the same. :func:`check_factchecks` requires each listed test to exist, each listed section to
exist, each box to sit in its section, and every ``Fact check:`` box in the book to be listed.
:func:`write_appendices` generates the two appendix pages; ``python -m textbook_lm.book
appendices`` runs it and ``python -m textbook_lm.book check`` runs every check.
"""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

__all__ = ["load_glossary", "load_factchecks", "prose", "check_glossary", "check_factchecks",
           "glossary_page", "factcheck_page", "write_appendices", "check_appendices",
           "GLOSSARY_PAGE", "FACTCHECK_PAGE"]

GLOSSARY_PAGE = "book/appendix_b_glossary.md"
FACTCHECK_PAGE = "book/appendix_c_fact_checks.md"
_CJK = re.compile(r"[\u3400-\u9fff]")
_GLOSSARY_KEYS = {"en", "zh", "chapter", "definition", "forms", "plain_before"}
_FACT_KEYS = {"claim", "found", "truth", "chapter", "section", "test"}


def _yaml(path: Path) -> list[dict]:
    import yaml  # the `book` extra; only the book's tools need it

    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, list) or not all(isinstance(e, dict) for e in data):
        raise ValueError(f"{path}: expected a YAML list of mappings")
    return data


def _require(path, i: int, e: dict, keys: set[str], optional: set[str] = frozenset()) -> None:
    where = f"{path}: entry {i} ({e.get('en') or e.get('claim')!r:.50})"
    missing = keys - optional - set(e)
    unknown = set(e) - keys
    if missing or unknown:
        raise ValueError(f"{where}: missing {sorted(missing)}, unknown {sorted(unknown)}; allowed: {sorted(keys)}")
    for k in keys - optional - {"chapter", "forms"}:
        if not isinstance(e[k], str) or not e[k].strip():
            raise ValueError(f"{where}: {k!r} must be a non-empty string")
    if not isinstance(e["chapter"], int) or not 0 <= e["chapter"] <= 12:
        raise ValueError(f"{where}: 'chapter' must be a chapter number 0-12, got {e['chapter']!r}")


def load_glossary(path: str | Path) -> list[dict]:
    """Read and validate ``glossary.yml``: required fields, one entry per English term, CJK in ``zh``."""
    entries, seen = _yaml(path), {}
    for i, e in enumerate(entries):
        _require(path, i, e, _GLOSSARY_KEYS, {"forms", "plain_before"})
        if not _CJK.search(e["zh"]):
            raise ValueError(f"{path}: {e['en']!r} has no Chinese characters in zh={e['zh']!r}")
        plain = e.setdefault("plain_before", [])     # earlier chapters that use the word only in another sense
        if not isinstance(plain, list) or not all(isinstance(n, int) and 0 <= n < e["chapter"] for n in plain):
            raise ValueError(f"{path}: {e['en']!r}: 'plain_before' must list chapters before {e['chapter']}")
        forms = e.setdefault("forms", [])
        if not isinstance(forms, list) or not all(isinstance(f, str) and f for f in forms):
            raise ValueError(f"{path}: {e['en']!r}: 'forms' must be a list of strings")
        key = e["en"].lower()
        if key in seen:
            raise ValueError(f"{path}: {e['en']!r} is listed twice (entries {seen[key]} and {i})")
        seen[key] = i
    return entries


def load_factchecks(path: str | Path) -> list[dict]:
    """Read and validate ``factchecks.yml``: required fields, a ``file::function`` test, unique claims."""
    entries, seen = _yaml(path), set()
    for i, e in enumerate(entries):
        e["section"] = str(e.get("section", ""))
        _require(path, i, e, _FACT_KEYS)
        if not re.fullmatch(r"tests/[\w/]+\.py::[\w:]+", e["test"]):
            raise ValueError(f"{path}: {e['claim']!r}: test must look like tests/test_x.py::test_y, got {e['test']!r}")
        if (e["chapter"], e["claim"]) in seen:
            raise ValueError(f"{path}: {e['claim']!r} is listed twice for chapter {e['chapter']}")
        seen.add((e["chapter"], e["claim"]))
    return entries


def _chapters(root: Path) -> dict[int, Path]:
    return {int(p.name[:2]): p for p in sorted((root / "book").glob("[0-9][0-9]_*.ipynb"))}


def _markdown(nb_path: Path) -> list[str]:
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]


def prose(text: str) -> str:
    """Markdown with what is not prose blanked out: code, math, link targets, HTML, headings,
    and a References section (paper titles are not uses of a term).

    Blanked spans become spaces of the same length, so positions still match the source.
    """
    def blank(m: re.Match) -> str:
        return re.sub(r"[^\n]", " ", m.group(0))
    for pattern in (r"(?ms)^#+ References\b.*", r"(?s)```.*?```", r"(?s)\$\$.*?\$\$", r"(?<![\\$])\$[^$\n]+?\$", r"`[^`\n]*`",
                    r"\]\([^)\s]*\)", r"<[^>\n]+>", r"(?m)^#+ .*$", r"(?m)^:::\{[^}]*\}.*$",
                    r"(?m)^:class:.*$"):
        text = re.sub(pattern, blank, text)
    return text


def _term_regex(forms: list[str]) -> re.Pattern:
    alts = "|".join(re.escape(f).replace(r"\ ", r"[\s-]+").replace(r"\-", r"[\s-]") for f in
                    sorted(forms, key=len, reverse=True))
    return re.compile(rf"(?<![\w-])(?:{alts})(?:s|es)?(?![\w-])", re.I)


_PAREN = re.compile(r"^[*_]{0,3}\s?[(（]([^()（）]*)[)）]")
_PHRASE_PAREN = re.compile(r"^[\w -]{1,40}?[*_]{0,3}\s?[(（]([^()（）]*)[)）]")
_ZH_AFTER_WORD = re.compile(r"[A-Za-z0-9][*_]{0,3}\s?[(（]([^()（）]*[\u3400-\u9fff][^()（）]*)[)）]")


def _zh_parts(paren: str) -> list[str]:
    return [p.strip() for p in re.split(r"[,，、;；/]", paren) if _CJK.search(p)]


def check_glossary(root: str | Path, entries: list[dict], chapters: set[int] | None = None) -> list[str]:
    """Problems with the glossary against the chapters' prose (an empty list when all is well).

    ``chapters`` limits the check to those chapters' terms and prose (default: all).
    """
    root, problems = Path(root), []
    every = {n: [prose(t) for t in _markdown(p)] for n, p in _chapters(root).items()}
    texts = {n: t for n, t in every.items() if chapters is None or n in chapters}
    for e in entries:
        if chapters is not None and e["chapter"] not in chapters:
            continue
        where = f"glossary: {e['en']!r} (chapter {e['chapter']})"
        if e["chapter"] not in texts:
            problems.append(f"{where}: no notebook book/{e['chapter']:02d}_*.ipynb")
            continue
        rx = _term_regex([e["en"], *e["forms"]])
        earlier = next((n for n in sorted(every) if n < e["chapter"] and n not in e["plain_before"]
                        and any(rx.search(t) for t in every[n])), None)
        if earlier is not None:       # the reader meets the term first there: that is where it is introduced
            problems.append(f"{where}: the term is already used in chapter {earlier}'s prose; introduce it there")
            continue
        hit = next(((t, m) for t in texts[e["chapter"]] for m in [rx.search(t)] if m), None)
        if hit is None:
            problems.append(f"{where}: the term is not used in the chapter's prose")
            continue
        text, m = hit
        paren, ok = _PAREN.match(text[m.end():]), lambda part: part == e["zh"]
        if paren is None and m.start() > 0 and text[m.start() - 1] in "*_":
            # the head of a glossed phrase whose Chinese starts with the term's: *embedding table (嵌入表)*
            paren, ok = _PHRASE_PAREN.match(text[m.end():]), lambda part: part.startswith(e["zh"])
        if paren is None or not any(ok(part) for part in _zh_parts(paren.group(1))):
            context = text[max(0, m.start() - 30): m.end() + 30].replace("\n", " ")
            problems.append(f"{where}: first use lacks ({e['zh']}) right after it: ...{context}...")
    known = {e["zh"] for e in entries}
    for n, chapter in sorted(texts.items()):
        for text in chapter:
            for m in _ZH_AFTER_WORD.finditer(text):
                for zh in _zh_parts(m.group(1)):
                    if zh not in known:
                        problems.append(f"chapter {n}: Chinese term ({zh}) is not in the glossary "
                                        f"(or is spelled differently there)")
    return problems


def _test_exists(root: Path, test: str) -> bool:
    file, *names = test.split("::")
    path = root / file
    if not path.is_file():
        return False
    scope: list[ast.stmt] = ast.parse(path.read_text(encoding="utf-8")).body
    for name in names:
        node = next((n for n in scope if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == name), None)
        if node is None:
            return False
        scope = node.body
    return names[-1].startswith("test")


_BOX = re.compile(r"^:::\{admonition\} Fact check: (.+)$", re.M)


def _boxes(nb_path: Path) -> list[tuple[str, str]]:
    """(section number, claim) of every fact-check box in a chapter."""
    section, out = "", []
    for text in _markdown(nb_path):
        for line in text.splitlines():
            head = re.match(r"^##\s+(\d+\.\d+)\s", line)
            if head:
                section = head.group(1)
            elif re.match(r"^##\s", line):
                section = ""
            box = _BOX.match(line)
            if box:
                out.append((section, box.group(1).strip()))
    return out


def check_factchecks(root: str | Path, entries: list[dict], only: set[int] | None = None) -> list[str]:
    """Problems with the fact-check index against the chapters and tests (empty when all is well).

    ``only`` limits the check to those chapters (default: all).
    """
    root, problems = Path(root), []
    chapters = {n: p for n, p in _chapters(root).items() if only is None or n in only}
    boxes = {n: _boxes(p) for n, p in chapters.items()}
    listed = set()
    for e in entries:
        if only is not None and e["chapter"] not in only:
            continue
        where = f"fact check {e['claim']!r:.60} (chapter {e['chapter']})"
        if not _test_exists(root, e["test"]):
            problems.append(f"{where}: test {e['test']} does not exist")
        if e["chapter"] not in boxes:
            problems.append(f"{where}: no notebook for chapter {e['chapter']}")
            continue
        heads = {m.group(1) for t in _markdown(chapters[e["chapter"]])
                 for m in re.finditer(r"(?m)^##\s+(\d+\.\d+)\s", t)}
        if e["section"] not in heads:
            problems.append(f"{where}: section {e['section']} does not exist")
        elif (e["section"], e["claim"]) not in boxes[e["chapter"]]:
            found = [s for s, c in boxes[e["chapter"]] if c == e["claim"]]
            problems.append(f"{where}: no such box in section {e['section']}"
                            + (f" (it is in section {found[0] or 'unnumbered'})" if found else ""))
        listed.add((e["chapter"], e["claim"]))
    for n, items in sorted(boxes.items()):
        for section, claim in items:
            if (n, claim) not in listed:
                problems.append(f"chapter {n} §{section}: box 'Fact check: {claim}' is not in factchecks.yml")
    return problems


def _chapter_titles(root: Path) -> dict[int, tuple[str, str]]:
    out = {}
    for n, p in _chapters(root).items():
        first = next(l for t in _markdown(p) for l in t.splitlines() if l.startswith("# "))
        out[n] = (p.name, first[2:].strip())
    return out


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def glossary_page(root: str | Path, entries: list[dict]) -> str:
    """Appendix B as MyST markdown: one table, sorted by English term."""
    titles = _chapter_titles(Path(root))
    rows = [f"| {_cell(e['en'])} | {e['zh']} | [{e['chapter']}]({titles[e['chapter']][0]}) | "
            f"{_cell(e['definition'])} |" for e in sorted(entries, key=lambda e: e["en"].lower())]
    by_chapter = {n: sum(e["chapter"] == n for e in entries) for n in sorted(titles)}
    counts = ", ".join(f"chapter {n}: {k}" for n, k in by_chapter.items() if k)
    return "\n".join([
        "# Appendix B. Glossary (术语表)", "",
        "<!-- Generated from book/glossary.yml by `python -m textbook_lm.book appendices`; edit the data, "
        "not this page. -->", "",
        f"Every key term of the book, {len(entries)} in all ({counts}), with its Chinese equivalent and the "
        "chapter that introduces it. The chapter's prose gives the Chinese term in parentheses at the term's "
        "first use; a test (`tests/test_appendices.py`) checks that it does, and that every Chinese term in "
        "the prose is spelled as it is here. Use the site's search for either language.", "",
        "| English | 中文 | Ch. | Definition |", "|---|---|---|---|", *rows, ""])


def _slug(heading: str) -> str:
    """The id Sphinx (docutils) gives a section with this heading."""
    from docutils.nodes import make_id  # comes with Sphinx, in the `book` extra

    return make_id(heading)


def _section_anchor(nb_path: Path, section: str) -> str:
    for text in _markdown(nb_path):
        m = re.search(rf"(?m)^##\s+({re.escape(section)}\s.*)$", text)
        if m:
            return "#" + _slug(m.group(1))
    return ""


def factcheck_page(root: str | Path, entries: list[dict]) -> str:
    """Appendix C as MyST markdown: one section per misconception, in book order."""
    root = Path(root)
    titles, chapters = _chapter_titles(root), _chapters(root)
    order = sorted(entries, key=lambda e: (e["chapter"], [int(x) for x in e["section"].split(".")]))
    out = ["# Appendix C. Fact checks (事实核查)", "",
           "<!-- Generated from book/factchecks.yml by `python -m textbook_lm.book appendices`; edit the "
           "data, not this page. -->", "",
           f"The {len(entries)} misconceptions this book settles, in the order the chapters meet them. Each "
           "was found in popular explanations of language models; each is settled in its chapter by code "
           "that runs, and by a test in the package's test suite that would fail if the fact were otherwise. "
           "A test (`tests/test_appendices.py`) checks that every test and section listed here exists and "
           "that every fact-check box in the book is listed.", ""]
    for i, e in enumerate(order, 1):
        page, title = titles[e["chapter"]]
        anchor = _section_anchor(chapters[e["chapter"]], e["section"])
        out += [f"## C.{i} {_cell(e['claim'])}", "",
                f"- **Where it is found:** {_cell(e['found'])}",
                f"- **What is true:** {_cell(e['truth'])}",
                f"- **Settled in:** <a href=\"{page.removesuffix('.ipynb')}.html{anchor}\">{title}, "
                f"§{e['section']}</a>",
                f"- **Test:** `{e['test']}`", ""]
    return "\n".join(out)


def write_appendices(root: str | Path) -> list[Path]:
    """Regenerate Appendices B and C from the data files; returns the pages that changed."""
    root, changed = Path(root), []
    pages = {GLOSSARY_PAGE: glossary_page(root, load_glossary(root / "book/glossary.yml")),
             FACTCHECK_PAGE: factcheck_page(root, load_factchecks(root / "book/factchecks.yml"))}
    for rel, text in pages.items():
        path = root / rel
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    return changed


def check_appendices(root: str | Path) -> list[str]:
    """Every problem with the two data files and the pages generated from them."""
    root = Path(root)
    glossary = load_glossary(root / "book/glossary.yml")
    facts = load_factchecks(root / "book/factchecks.yml")
    problems = check_glossary(root, glossary) + check_factchecks(root, facts)
    for rel, text in ((GLOSSARY_PAGE, glossary_page(root, glossary)), (FACTCHECK_PAGE, factcheck_page(root, facts))):
        path = root / rel
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            problems.append(f"{rel} is out of date: run `python -m textbook_lm.book appendices`")
    return problems
