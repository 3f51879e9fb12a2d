import io
import urllib.error

import pytest

from textbook_lm.data import corpora


def test_registry_lists_files_with_checksums_and_licenses():
    assert {"tinyshakespeare", "wikitext-2", "chinese-poetry", "ptb"} <= set(corpora.REGISTRY)
    for c in corpora.REGISTRY.values():
        assert c.license and c.citation and c.files
        for f in c.files:
            assert len(f.sha256) == 64 and f.url.startswith("https://")
    with pytest.raises(KeyError, match="unknown corpus"):
        corpora.get("wikitext-103")


def test_loaders_read_the_real_files(data_dir):
    test = corpora.wikitext2("test")
    assert sum(len(s) + 1 for s in test) == 244_102      # 245,569 minus the <eos> of 1,467 empty lines
    assert len(corpora.tiny_shakespeare()) == 1_115_394
    poems = corpora.tang_poems()
    assert len(poems) > 10_000 and all(p["text"] for p in poems[:50])
    with pytest.raises(ValueError):
        corpora.wikitext2("dev")


def _spec():
    return corpora.get("tinyshakespeare").file("input.txt")


def test_missing_file_offline_names_file_places_and_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("TEXTBOOK_LM_DATA", str(tmp_path / "nowhere"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def offline(*a, **k):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(corpora.urllib.request, "urlopen", offline)
    with pytest.raises(corpora.DataNotFoundError) as err:
        corpora.path("tinyshakespeare", "input.txt")
    msg = str(err.value)
    assert "tinyshakespeare/input.txt" in msg and str(tmp_path / "nowhere") in msg
    assert str(tmp_path / "cache") in msg and "TEXTBOOK_LM_DATA" in msg and _spec().url in msg


def test_corrupted_file_is_never_used(tmp_path, monkeypatch):
    bad = tmp_path / "data" / "tinyshakespeare" / "input.txt"
    bad.parent.mkdir(parents=True)
    bad.write_text("First Citizen: not quite\n")
    monkeypatch.setenv("TEXTBOOK_LM_DATA", str(tmp_path / "data"))
    with pytest.raises(corpora.ChecksumError, match="corrupted"):
        corpora.read_text("tinyshakespeare", "input.txt")


class _Response(io.BytesIO):
    headers = {}

    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def test_download_goes_to_the_cache_and_is_checked(tmp_path, monkeypatch, data_dir):
    real = (data_dir / "tinyshakespeare" / "input.txt").read_bytes()
    monkeypatch.delenv("TEXTBOOK_LM_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(corpora.urllib.request, "urlopen", lambda url, timeout: _Response(real))
    p = corpora.path("tinyshakespeare", "input.txt")
    assert p == tmp_path / "textbook_lm" / "tinyshakespeare" / "input.txt" and p.read_bytes() == real
    # a download that arrives corrupted is rejected and not kept
    p.unlink()
    monkeypatch.setattr(corpora.urllib.request, "urlopen", lambda url, timeout: _Response(real[:-1]))
    with pytest.raises(corpora.ChecksumError):
        corpora.path("tinyshakespeare", "input.txt")
    assert not p.exists()


def _fake_downloads(monkeypatch, *bodies, length=None):
    """urlopen returns each body in turn (offline): ``length`` overrides Content-Length."""
    calls = []

    def urlopen(url, timeout):
        body = bodies[min(len(calls), len(bodies) - 1)]
        calls.append(url)
        r = _Response(body)
        r.headers = {"Content-Length": str(length if length is not None else len(body))}
        return r

    monkeypatch.setattr(corpora.urllib.request, "urlopen", urlopen)
    return calls


@pytest.fixture
def offline_cache(tmp_path, monkeypatch):
    """An empty cache and no data folder: every file must be downloaded."""
    monkeypatch.delenv("TEXTBOOK_LM_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path / "textbook_lm" / "tinyshakespeare"


def _no_leftovers(folder):
    return not folder.exists() or not any(folder.iterdir())


def test_truncated_download_is_retried_once_then_fails_clearly(offline_cache, monkeypatch):
    calls = _fake_downloads(monkeypatch, b"First Citizen", length=1_115_394)   # fewer bytes than announced
    with pytest.raises(corpora.DataNotFoundError, match=r"incomplete download .* got 13 of 1,115,394 bytes"):
        corpora.path("tinyshakespeare", "input.txt")
    assert len(calls) == 2 and _no_leftovers(offline_cache)                   # no partial file kept


def test_corrupted_download_is_retried_once_then_raises_checksum_error(offline_cache, monkeypatch):
    calls = _fake_downloads(monkeypatch, b"not Shakespeare at all\n")         # complete, but the wrong bytes
    with pytest.raises(corpora.ChecksumError, match="download .* is corrupted .* nothing was kept"):
        corpora.path("tinyshakespeare", "input.txt")
    assert len(calls) == 2 and _no_leftovers(offline_cache)


@pytest.mark.parametrize("first", ["truncated", "corrupted", "network"])
def test_good_second_download_is_used(first, offline_cache, monkeypatch):
    import hashlib

    good = b"a tiny stand-in for Shakespeare\n"
    spec = corpora.DataFile("input.txt", hashlib.sha256(good).hexdigest(), "https://example.invalid/input.txt")
    fake = corpora.Corpus("tinyshakespeare", "test stand-in", (spec,), "", "", "")
    monkeypatch.setitem(corpora.REGISTRY, "tinyshakespeare", fake)
    if first == "network":
        calls = []

        def urlopen(url, timeout):
            calls.append(url)
            if len(calls) == 1:
                raise urllib.error.URLError("connection reset")
            r = _Response(good)
            r.headers = {"Content-Length": str(len(good))}
            return r

        monkeypatch.setattr(corpora.urllib.request, "urlopen", urlopen)
    else:
        bad = good[:10] if first == "truncated" else good.upper()
        calls = _fake_downloads(monkeypatch, bad, good, length=len(good))
    p = corpora.path("tinyshakespeare", "input.txt")
    assert p == offline_cache / "input.txt" and p.read_bytes() == good and len(calls) == 2
    assert [f.name for f in offline_cache.iterdir()] == ["input.txt"]       # no temporary file left
    assert corpora.read_text("tinyshakespeare", "input.txt") == good.decode()  # cached: no third download
    assert len(calls) == 2
