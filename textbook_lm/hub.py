"""The hub: one way to save and load every artefact the book ships or a reader makes.

An *artefact* is a folder: a tokenizer, a set of word vectors, a trained model (with the
tokenizer it reads), or a stored result (a JSON document such as the leaderboard)::

    shakespeare-char/
      manifest.json    what it is (kind, format) and the sha256 and size of every file
      weights.pt       tensors only, so torch.load(..., weights_only=True) can read it
      config.json      the model's config (a tokenizer's or a result's data file instead)
      tokenizer.json   the tokenizer the model reads, if any
      info.json        how it was made: command, training time, scores

:func:`save` writes all of it into a temporary folder beside the target and renames it into
place, so a crash never leaves half an artefact. :func:`load` takes a folder or the name of
an artefact shipped in ``textbook_lm/results/``, checks every file against the sha256 in the
manifest *before* reading it, rebuilds the object, and checks that a model and its tokenizer
agree (vocabulary size, the id of every special token, the whole vocabulary's hash). Any
mismatch raises :class:`ArtefactError` naming the file. Nothing here writes into the
installed package unless given that folder explicitly.

Each concept module registers the classes it can save (``register``), so this module
imports none of them; loading a kind that is not registered yet imports the module the
manifest names (always inside ``textbook_lm``).
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, NamedTuple

import torch

__all__ = ["SHIPPED_DIR", "FORMAT", "ArtefactError", "Loaded", "register", "register_model", "save", "load",
           "resolve", "available", "verify", "sha256_file", "vocab_sha256"]

SHIPPED_DIR = Path(__file__).with_name("results")
FORMAT = 1
_DATA_FILE = {"Tokenizer": "tokenizer.json", "result": "result.json"}   # other kinds: config.json


class ArtefactError(ValueError):
    """An artefact that is corrupt, of another format, or whose parts do not agree."""


class Loaded(NamedTuple):
    """What :func:`load` returns: ``obj, tokenizer, info = hub.load(name)``."""
    obj: Any
    tokenizer: Any
    info: dict


@dataclass(frozen=True)
class _Kind:
    cls: type
    to_state: Callable[[Any], tuple[dict | None, Any]]        # obj -> (tensors or None, JSON data)
    from_state: Callable[[dict | None, Any, dict], Any]       # (tensors, data, info) -> obj


_KINDS: dict[str, _Kind] = {}


def register(name: str, cls: type, to_state: Callable, from_state: Callable) -> None:
    """Teach the hub to save instances of ``cls`` as kind ``name``: ``to_state(obj)`` returns
    (a dict of tensors or None, JSON-serialisable data); ``from_state(tensors, data, info)``
    rebuilds the object."""
    _KINDS[name] = _Kind(cls, to_state, from_state)


def register_model(cls: type, config_cls: type) -> None:
    """Register an ``nn.Module`` that keeps its dataclass config in ``self.cfg``: its state
    dict and ``dataclasses.asdict(cfg)`` are saved; loading builds ``cls(config_cls(**data))``
    (list fields become tuples where the config declares tuples) in eval mode."""

    def from_state(tensors, data, info):
        tuples = {f.name for f in dataclasses.fields(config_cls) if "tuple" in str(f.type)}
        cfg = config_cls(**{k: tuple(v) if k in tuples and isinstance(v, list) else v for k, v in data.items()})
        model = cls(cfg)
        model.load_state_dict(tensors)
        return model.eval()

    register(cls.__name__, cls, lambda m: (m.state_dict(), dataclasses.asdict(m.cfg)), from_state)


# ---------------------------------------------------------------------------- hashes and names
def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def vocab_sha256(tokenizer) -> str:
    """sha256 of a tokenizer's whole vocabulary in id order: equal hashes mean equal ids."""
    return hashlib.sha256("\n".join(_itos(tokenizer)).encode("utf-8")).hexdigest()


def _itos(tokenizer) -> list[str]:
    if isinstance(tokenizer, (list, tuple)):
        if not all(isinstance(t, str) for t in tokenizer):
            raise TypeError("a vocabulary given as a list must hold strings")
        return list(tokenizer)
    return list(tokenizer.itos)


def _specials(tokenizer) -> dict[str, int]:
    if isinstance(tokenizer, (list, tuple)):
        return {t: i for i, t in enumerate(tokenizer) if t.startswith("<") and t.endswith(">")}
    return {s: tokenizer.special_id(s) for s in tokenizer.specials}


def available() -> dict[str, str]:
    """The artefacts shipped with the package: name -> kind."""
    out = {}
    for d in sorted(SHIPPED_DIR.iterdir()) if SHIPPED_DIR.is_dir() else []:
        m = d / "manifest.json"
        if m.is_file():
            out[d.name] = json.loads(m.read_text(encoding="utf-8")).get("kind", "?")
    return out


def resolve(name_or_dir: str | os.PathLike) -> Path:
    """The folder of an artefact: ``name_or_dir`` itself if it is a folder, else the shipped
    artefact of that name. Raises ``FileNotFoundError`` listing what exists."""
    if not isinstance(name_or_dir, (str, os.PathLike)):
        raise TypeError(f"an artefact is named by a string or a path, got {type(name_or_dir).__name__}")
    p = Path(name_or_dir)
    if p.is_dir():
        return p
    if str(name_or_dir) and os.sep not in str(name_or_dir) and (SHIPPED_DIR / str(name_or_dir)).is_dir():
        return SHIPPED_DIR / str(name_or_dir)
    raise FileNotFoundError(f"no artefact {str(name_or_dir)!r}: not a folder, and not shipped with the package "
                            f"(shipped: {', '.join(available()) or 'none'})")


# ---------------------------------------------------------------------------- save
def _write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _half(tensors: dict) -> dict:
    """Floating tensors to float16, each shared tensor (tied weights) converted once."""
    done, out = {}, {}
    for k, v in tensors.items():
        key = (v.data_ptr(), v.dtype, tuple(v.shape))
        if key not in done:
            done[key] = v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu()
        out[k] = done[key]
    return out


def _kind_of(obj) -> str:
    if isinstance(obj, (dict, list)) and not isinstance(obj, torch.Tensor):
        return "result"
    for name, kind in _KINDS.items():
        if type(obj) is kind.cls:
            return name
    for name, kind in _KINDS.items():
        if isinstance(obj, kind.cls):
            return name
    raise TypeError(f"the hub cannot save a {type(obj).__name__}; it saves registered kinds "
                    f"({', '.join(sorted(_KINDS)) or 'none yet'}) and JSON results (dict or list)")


def _check_pair(vocab_size: int | None, pad_id: int | None, tokenizer, where: str) -> None:
    """A model and its tokenizer must agree on the vocabulary size and the padding id."""
    n = len(_itos(tokenizer))
    if vocab_size is not None and vocab_size != n:
        raise ArtefactError(f"{where}: the model has vocab_size={vocab_size} but its tokenizer has {n} tokens")
    if pad_id is not None:
        pads = {i for t, i in _specials(tokenizer).items() if t in ("[PAD]", "<pad>")}
        if pads and pad_id not in pads:
            raise ArtefactError(f"{where}: the model pads with id {pad_id} but its tokenizer's padding token "
                                f"has id {sorted(pads)[0]}")


def save(obj, directory: str | os.PathLike, *, tokenizer=None, info: dict | None = None,
         half: bool = False) -> Path:
    """Write ``obj`` (a registered model, tokenizer or vectors, or a JSON result) with its
    ``tokenizer`` and ``info`` into the folder ``directory``, replacing it atomically.
    ``half=True`` stores floating-point tensors in float16 (they load back as float32).
    Returns the folder."""
    kind = _kind_of(obj)
    directory = Path(directory)
    info = dict(info or {})
    tensors, data = (None, obj) if kind == "result" else _KINDS[kind].to_state(obj)
    cfg = data if isinstance(data, dict) else {}
    if tokenizer is not None:
        _check_pair(cfg.get("vocab_size"), cfg.get("pad_id"), tokenizer, str(directory))
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        files = {}
        if tensors is not None:
            torch.save(_half(tensors) if half else {k: v.detach().cpu() for k, v in tensors.items()},
                       tmp / "weights.pt")
            files["weights.pt"] = None
        data_file = _DATA_FILE.get(kind, "config.json")
        _write_json(tmp / data_file, data)
        files[data_file] = None
        tok_meta = None
        if tokenizer is not None:
            tok_kind, tok_tensors, tok_data = _tokenizer_state(tokenizer)
            _write_json(tmp / "tokenizer.json", {"kind": tok_kind, "data": tok_data})
            files["tokenizer.json"] = None
            tok_meta = {"kind": tok_kind, "vocab_size": len(_itos(tokenizer)), "special_ids": _specials(tokenizer),
                        "vocab_sha256": vocab_sha256(tokenizer)}
        _write_json(tmp / "info.json", info)
        files["info.json"] = None
        manifest = {"format": FORMAT, "kind": kind, "module": type(obj).__module__ if kind != "result" else None,
                    "files": {f: {"sha256": sha256_file(tmp / f), "bytes": (tmp / f).stat().st_size} for f in files},
                    "tokenizer": tok_meta}
        _write_json(tmp / "manifest.json", manifest)
        old = None
        if directory.exists():
            old = directory.with_name(f".{directory.name}.old-{os.getpid()}")
            directory.rename(old)
        tmp.rename(directory)
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def _tokenizer_state(tokenizer) -> tuple[str, None, Any]:
    if isinstance(tokenizer, (list, tuple)):
        return "vocab", None, _itos(tokenizer)
    kind = _kind_of(tokenizer)
    return kind, None, _KINDS[kind].to_state(tokenizer)[1]


# ---------------------------------------------------------------------------- load
def verify(directory: str | os.PathLike) -> dict:
    """Check every file of an artefact folder against its manifest; return the manifest.
    Raises :class:`ArtefactError` naming the first file that is missing or differs."""
    d = Path(directory)
    mpath = d / "manifest.json"
    if not mpath.is_file():
        raise ArtefactError(f"{d}: no manifest.json, so this is not an artefact folder written by hub.save")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ArtefactError(f"{mpath}: unreadable manifest ({e})") from None
    if manifest.get("format") != FORMAT:
        raise ArtefactError(f"{mpath}: format {manifest.get('format')!r}, this package reads format {FORMAT}")
    for name, meta in manifest.get("files", {}).items():
        f = d / name
        if not f.is_file():
            raise ArtefactError(f"{f}: missing (listed in {mpath})")
        if f.stat().st_size != meta["bytes"] or sha256_file(f) != meta["sha256"]:
            raise ArtefactError(f"{f}: sha256 does not match {mpath}; the file is corrupt or was changed. "
                                f"Rebuild it with the command in {d / 'info.json'}")
    return manifest


def _build(kind: str, module: str | None, tensors, data, info):
    if kind == "result":
        return data
    if kind not in _KINDS and module and module.startswith("textbook_lm."):
        importlib.import_module(module)                  # registers its kinds
    if kind not in _KINDS:
        raise ArtefactError(f"unknown artefact kind {kind!r}; known: {sorted(_KINDS)}")
    return _KINDS[kind].from_state(tensors, data, info)


def load(name_or_dir: str | os.PathLike, kind: str | None = None) -> Loaded:
    """Load an artefact (a folder, or the name of one shipped with the package) after checking
    every file's sha256: returns ``Loaded(obj, tokenizer, info)`` (``tokenizer`` is None when
    the artefact has none; for a tokenizer artefact it is the tokenizer itself). ``kind``, if
    given, is the kind expected (e.g. ``"GPT"``)."""
    d = resolve(name_or_dir)
    manifest = verify(d)
    if kind is not None and manifest["kind"] != kind:
        raise ArtefactError(f"{d}: holds a {manifest['kind']}, not a {kind}")
    files = manifest["files"]
    tensors = None
    if "weights.pt" in files:
        raw = torch.load(d / "weights.pt", map_location="cpu", weights_only=True)
        tensors = {k: v.float() if v.is_floating_point() else v for k, v in raw.items()}
    data_file = _DATA_FILE.get(manifest["kind"], "config.json")
    data = json.loads((d / data_file).read_text(encoding="utf-8"))
    info = json.loads((d / "info.json").read_text(encoding="utf-8"))
    obj = _build(manifest["kind"], manifest.get("module"), tensors, data, info)
    tokenizer = obj if manifest["kind"] == "Tokenizer" else None
    meta = manifest.get("tokenizer")
    if meta is not None:
        t = json.loads((d / "tokenizer.json").read_text(encoding="utf-8"))
        tokenizer = t["data"] if t["kind"] == "vocab" else _build(t["kind"], "textbook_lm.tokenize", None, t["data"], {})
        where = str(d / "tokenizer.json")
        if len(_itos(tokenizer)) != meta["vocab_size"] or vocab_sha256(tokenizer) != meta["vocab_sha256"]:
            raise ArtefactError(f"{where}: the rebuilt vocabulary differs from the one saved (ids would be shuffled)")
        if _specials(tokenizer) != meta["special_ids"]:
            raise ArtefactError(f"{where}: special-token ids {_specials(tokenizer)} differ from the saved "
                                f"{meta['special_ids']}")
        cfg = data if isinstance(data, dict) else {}
        _check_pair(cfg.get("vocab_size"), cfg.get("pad_id"), tokenizer, str(d))
    return Loaded(obj, tokenizer, info)
