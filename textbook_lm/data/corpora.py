"""Registry of the real corpora the book uses, and the one way to find their files.

Lookup order for a file ``<corpus>/<file>``:

1. ``$TEXTBOOK_LM_DATA/<corpus>/<file>`` (a folder you point at, e.g. ``../shared/data``);
2. the user cache ``~/.cache/textbook_lm/<corpus>/<file>`` (``$XDG_CACHE_HOME`` respected);
3. download from the pinned URL into the cache, with a progress bar.

Every file is checked against its sha256 before use: a corrupted file is never used. A
download goes to a temporary file beside its destination and is moved into the cache only
when it is complete (as many bytes as the server announced) and its sha256 matches; a
failed download (network error, incomplete, wrong checksum) is deleted and tried once
more. A file that cannot be found or fetched raises :class:`DataNotFoundError`, which
names the file, every place looked, and how to fix it; a download that arrives corrupted
twice raises :class:`ChecksumError`.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Corpus", "DataFile", "DataNotFoundError", "ChecksumError", "REGISTRY", "get",
           "path", "read_text", "search_paths", "wikitext2", "tiny_shakespeare", "tang_poems", "ptb"]


class DataNotFoundError(FileNotFoundError):
    """A registered data file is in none of the places looked and could not be downloaded."""


class ChecksumError(ValueError):
    """A data file's sha256 differs from the registry's: it is corrupted or a different version."""


@dataclass(frozen=True)
class DataFile:
    name: str     # file name inside the corpus folder
    sha256: str
    url: str      # pinned, canonical download URL


@dataclass(frozen=True)
class Corpus:
    name: str
    description: str
    files: tuple[DataFile, ...]
    license: str
    citation: str
    homepage: str
    note: str = ""
    units: dict = field(default_factory=dict)

    def file(self, name: str) -> DataFile:
        for f in self.files:
            if f.name == name:
                return f
        raise KeyError(f"corpus {self.name!r} has no file {name!r}; files: {[f.name for f in self.files]}")


_WT2 = "https://raw.githubusercontent.com/pytorch/examples/77f55b912142e11fcfdf5b530231fb9c52f181e8/word_language_model/data/wikitext-2/"
_TANG = "https://raw.githubusercontent.com/chinese-poetry/chinese-poetry/99ebbef7e1345c0985c44b9fd96a3f9e776f117b/%E5%85%A8%E5%94%90%E8%AF%97/"
_PTB = "https://raw.githubusercontent.com/timbmg/RNNLM/e26dff5d8f4b5d07ee459f192ee2131923d7584f/data/"
_TANG_SHA = {
    0: "4f88f429938082523cdc72a1612bd7a7c3e3f7a33f8192c61ae51340efc3c92d",
    1000: "6e703b8d8dcedbd6110f6d48d043665ca2131db2035a5bfcef5e59a19aeb6d75",
    2000: "ec28efa7e2ae9cdbbba09f0ed186e32ccae47a325ad1e5816b7ad56071c1665a",
    3000: "9e4ba2323752b6b9fbdba875cdbc6a26636fe0cabc85fd066370d4915952001f",
    4000: "b8a7946c879b9658a6c667a4c55f776fae7e5e00a17789ab06b274c1429afc66",
    5000: "a0306e6962cff01639ad9a00b042a201b8dec1f30fa5d768a7b112589887861e",
    6000: "982a21d2b15922b406911f1c825785054314c686da86b2155d7aebb362d22771",
    7000: "a6fb69d7b4343c904dc56ae5aae34facc2478d196b51c37ceba9d1e2f171b342",
    8000: "ac3848e95b02736168003863795de4474838c2d6a71a24ca2a4a280ea5177773",
    9000: "b99d6596e3a1fe1a661652383083f92d196b8baf4e461d087081d5e1e1b7a51f",
}

REGISTRY: dict[str, Corpus] = {
    "tinyshakespeare": Corpus(
        name="tinyshakespeare",
        description="Tiny Shakespeare: 1,115,394 characters (65 distinct) of Shakespeare's plays, for character-level models.",
        files=(DataFile("input.txt", "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
                        "https://raw.githubusercontent.com/karpathy/char-rnn/6f9487a6fe5b420b7ca9afb0d7c078e37c1d1b4e/data/tinyshakespeare/input.txt"),),
        license="Public-domain text (the char-rnn repository is MIT licensed).",
        citation="A. Karpathy, char-rnn, 2015. https://github.com/karpathy/char-rnn",
        homepage="https://github.com/karpathy/char-rnn",
        units={"chars": 1_115_394},
    ),
    "wikitext-2": Corpus(
        name="wikitext-2",
        description="WikiText-2 (v1): tokenized Wikipedia articles with rare words replaced by <unk>; vocabulary 33,278.",
        files=(DataFile("train.txt", "9e9fa1ad55b1c2c95b08e37dd8e653f638fac2c6de904b79e813611eefbc985f", _WT2 + "train.txt"),
               DataFile("valid.txt", "f0737ed31fc1329026e95cb8b98e19c2a182c39c240ab909dc31abf2f8af58e8", _WT2 + "valid.txt"),
               DataFile("test.txt", "d790b833ef8cf03a90db7bf1271b7520b83c45ce07ba3c1a9699df81e239eca0", _WT2 + "test.txt")),
        license="CC BY-SA 3.0",
        citation="S. Merity, C. Xiong, J. Bradbury, R. Socher. Pointer Sentinel Mixture Models. arXiv:1609.07843, 2016.",
        homepage="https://github.com/pytorch/examples/tree/main/word_language_model",
        units={"train_tokens_with_eos": 2_088_628, "valid_tokens_with_eos": 217_646, "test_tokens_with_eos": 245_569},
    ),
    "chinese-poetry": Corpus(
        name="chinese-poetry",
        description="Tang poems (traditional characters): 全唐诗 poet.tang.0-9000 and 唐诗三百首, 10,374 poems.",
        files=tuple(DataFile(f"poet.tang.{n}.json", sha, f"{_TANG}poet.tang.{n}.json") for n, sha in _TANG_SHA.items())
        + (DataFile("tangshi300.json", "d77a145f7470da2ed2f79515944563c062ffc43fceda07f195a36ead66b7e5c7",
                    _TANG + "%E5%94%90%E8%AF%97%E4%B8%89%E7%99%BE%E9%A6%96.json"),),
        license="MIT (the chinese-poetry database); the poems themselves are public domain.",
        citation="chinese-poetry: 最全中文诗歌古典文集数据库, https://github.com/chinese-poetry/chinese-poetry (MIT, 2016 JackeyGao).",
        homepage="https://github.com/chinese-poetry/chinese-poetry",
    ),
    "ptb": Corpus(
        name="ptb",
        description="Penn Treebank, Mikolov's language-modelling version: 10k vocabulary, 887,521 training words.",
        files=(DataFile("ptb.train.txt", "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf", _PTB + "ptb.train.txt"),
               DataFile("ptb.valid.txt", "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2", _PTB + "ptb.valid.txt"),
               DataFile("ptb.test.txt", "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0", _PTB + "ptb.test.txt")),
        license="Unclear: derived from the LDC's Penn Treebank; widely mirrored, but do not redistribute.",
        citation="M. Marcus et al., Building a Large Annotated Corpus of English: The Penn Treebank, CL 1993; "
                 "T. Mikolov et al., Recurrent neural network based language model, Interspeech 2010.",
        homepage="https://github.com/timbmg/RNNLM",
        note="Optional: the book never needs PTB; it is registered only to compare with published PTB numbers.",
    ),
}


DOWNLOAD_ATTEMPTS = 2        # a failed download is retried once


def get(name: str) -> Corpus:
    """The registry entry for corpus ``name`` (raises ``KeyError`` listing the known names)."""
    if not isinstance(name, str):
        raise TypeError(f"corpus name must be a string, got {type(name).__name__}")
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown corpus {name!r}; known corpora: {sorted(REGISTRY)}") from None


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "textbook_lm"


def search_paths(corpus: str, filename: str) -> list[Path]:
    """The places looked for ``corpus/filename`` (a registered file), in order."""
    get(corpus).file(filename)
    places = []
    env = os.environ.get("TEXTBOOK_LM_DATA")
    if env:
        places.append(Path(env).expanduser() / corpus / filename)
    places.append(cache_dir() / corpus / filename)
    return places


def sha256_of(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check(p: Path, spec: DataFile, corpus: str) -> None:
    got = sha256_of(p)
    if got != spec.sha256:
        raise ChecksumError(
            f"{corpus}/{spec.name} at {p} is corrupted or a different version: sha256 {got}, expected "
            f"{spec.sha256}. Delete it (or fix $TEXTBOOK_LM_DATA) and it will be downloaded again from {spec.url}.")


def _download(spec: DataFile, dest: Path, corpus: str) -> None:
    """Fetch ``spec.url`` into a temporary file beside ``dest``; move it to ``dest`` only if it
    is complete and its sha256 matches. The temporary file never survives a failure."""
    from tqdm.auto import tqdm

    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".", suffix=".part")
    try:
        h, n = hashlib.sha256(), 0
        with urllib.request.urlopen(spec.url, timeout=30) as r, os.fdopen(fd, "wb") as out:
            total = int(r.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"download {dest.name}") as bar:
                for block in iter(lambda: r.read(1 << 16), b""):
                    out.write(block)
                    h.update(block)
                    n += len(block)
                    bar.update(len(block))
        if total is not None and n != total:
            raise OSError(f"incomplete download of {spec.url}: got {n:,} of {total:,} bytes")
        if h.hexdigest() != spec.sha256:
            raise ChecksumError(f"the download of {corpus}/{spec.name} from {spec.url} is corrupted or a different "
                                f"version: sha256 {h.hexdigest()}, expected {spec.sha256}; nothing was kept")
        os.replace(tmp, dest)
    except http.client.HTTPException as err:      # e.g. IncompleteRead: the connection broke
        raise OSError(f"download of {spec.url} broke off: {err!r}") from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def path(corpus: str, filename: str, download: bool = True) -> Path:
    """Local path of a checked (sha256) copy of ``corpus/filename``, downloading it if needed.

    Raises :class:`DataNotFoundError` (offline, nowhere found) or :class:`ChecksumError`
    (a copy exists but is corrupted; it is never used).
    """
    spec = get(corpus).file(filename)
    places = search_paths(corpus, filename)
    for p in places:
        if p.is_file():
            _check(p, spec, corpus)
            return p
    dest = places[-1]
    error = "download disabled"
    for attempt in range(1, DOWNLOAD_ATTEMPTS + 1 if download else 1):
        try:
            _download(spec, dest, corpus)
            return dest
        except ChecksumError:
            if attempt == DOWNLOAD_ATTEMPTS:
                raise
        except OSError as err:  # URLError, timeouts and incomplete downloads are OSErrors
            error = f"download failed (attempt {attempt} of {DOWNLOAD_ATTEMPTS}): {err}"
    looked = "\n  ".join(str(p) for p in places)
    raise DataNotFoundError(
        f"data file {corpus}/{filename} not found. Looked in:\n  {looked}\nand {error} ({spec.url}).\n"
        f"Fix: set TEXTBOOK_LM_DATA to a folder holding {corpus}/{filename} (in this repository's CI: "
        f"../shared/data), or download {spec.url} to {dest}.")


def read_text(corpus: str, filename: str) -> str:
    """The checked file's text (UTF-8)."""
    return path(corpus, filename).read_text(encoding="utf-8")


# ----------------------------------------------------------------------------- loaders
def wikitext2(split: str = "train") -> list[list[str]]:
    """WikiText-2 as a list of sentences (one per non-empty line), each a list of word tokens.

    Convention (used by every chapter, see :mod:`textbook_lm.metrics`): empty lines are
    dropped; each line is one sequence; models predict every token plus one ``<eos>`` per
    line. ``<unk>`` is an ordinary token of this corpus.
    """
    if split not in ("train", "valid", "test"):
        raise ValueError(f"split must be 'train', 'valid' or 'test', got {split!r}")
    return [line.split() for line in read_text("wikitext-2", f"{split}.txt").splitlines() if line.strip()]


def ptb(split: str = "train") -> list[list[str]]:
    """Penn Treebank (Mikolov's version) as sentences of word tokens; see :func:`wikitext2`."""
    if split not in ("train", "valid", "test"):
        raise ValueError(f"split must be 'train', 'valid' or 'test', got {split!r}")
    return [line.split() for line in read_text("ptb", f"ptb.{split}.txt").splitlines() if line.strip()]


def tiny_shakespeare() -> str:
    """The whole Tiny Shakespeare text (1,115,394 characters)."""
    return read_text("tinyshakespeare", "input.txt")


def tang_poems(three_hundred_only: bool = False) -> list[dict]:
    """Tang poems as dicts with ``author``, ``title`` and ``text`` (the lines joined by newlines).

    Duplicates (the 300 poems also appear in the full collection) are kept once, by text.
    """
    names = ["tangshi300.json"] if three_hundred_only else [f.name for f in get("chinese-poetry").files]
    seen, poems = set(), []
    for name in names:
        for p in json.loads(read_text("chinese-poetry", name)):
            text = "\n".join(p.get("paragraphs", []))
            if text and text not in seen:
                seen.add(text)
                poems.append({"author": p.get("author", ""), "title": p.get("title", ""), "text": text})
    return poems
