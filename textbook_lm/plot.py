"""Plotting helpers shared by the chapters. Every function returns the matplotlib Figure.

Numbers may come as lists, NumPy arrays or torch tensors on any device, also tensors that
require grad: they are detached and copied to the CPU first (:func:`_array`)."""
from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

__all__ = ["STYLE", "use_style", "cjk_font", "text_px", "finish", "heatmap", "curves", "training_curves",
           "accuracy_vs_distance", "bars", "scatter", "tokens_html", "token_strips", "attention_grid", "masks"]

# The book's figures. The site shows a PNG of DPI dots per inch in a text column COLUMN_PX wide
# (at a 1280-px window; tests/test_site.py measures it) and shrinks anything wider. With no text
# under 9 points (12.5 px) and no figure wider than MAX_WIDTH_IN, every label stays >= 9 px.
DPI, COLUMN_PX, MIN_TEXT_PX = 100, 688, 9.0
MAX_WIDTH_IN = COLUMN_PX * (9 * DPI / 72) / MIN_TEXT_PX / DPI          # 9.56 inches
STYLE = {"figure.dpi": DPI, "savefig.dpi": DPI, "figure.figsize": (6.4, 4.0), "font.size": 10,
         "axes.titlesize": 11, "axes.labelsize": 10, "xtick.labelsize": 9, "ytick.labelsize": 9,
         "legend.fontsize": 9, "figure.titlesize": 11, "legend.title_fontsize": 9}
# Fonts with Chinese characters, tried in this order after the one the `mplfonts` package ships.
CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Sans CJK TC", "Noto Sans CJK JP", "Source Han Sans SC",
                "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "Microsoft YaHei", "SimHei",
                "PingFang SC", "Heiti TC", "Arial Unicode MS")


@functools.lru_cache(maxsize=None)
def cjk_font() -> str | None:
    """The name of a font with Chinese characters, registered with matplotlib, or None.

    First the Noto Sans CJK font of the ``mplfonts`` package (``pip install mplfonts``, part of
    the ``book`` and ``cjk`` extras; found without importing it), then a system font matplotlib
    already knows. None means Chinese text would draw as empty boxes: chapters then label by
    position instead."""
    from matplotlib import font_manager
    spec = importlib.util.find_spec("mplfonts")
    if spec is not None and spec.origin:
        path = Path(spec.origin).parent / "fonts" / "NotoSansCJKsc-Regular.otf"
        if path.is_file():
            font_manager.fontManager.addfont(str(path))
            return font_manager.FontProperties(fname=str(path)).get_name()
    known = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FAMILIES if name in known), None)


def use_style() -> None:
    """Apply the book's figure style (:data:`STYLE`, and a CJK font as the fallback for
    characters the default font lacks). Importing this module calls it."""
    mpl.rcParams.update(STYLE)
    cjk = cjk_font()        # a second family: matplotlib takes a glyph from it when DejaVu lacks one
    mpl.rcParams["font.family"] = ["sans-serif"] + ([cjk] if cjk else [])


def text_px(fig: Figure, column_px: int = COLUMN_PX) -> float:
    """The height in screen pixels of the smallest text of ``fig`` as the site shows it: a PNG
    cropped to its contents (as Jupyter saves it), shrunk to ``column_px`` if wider."""
    fig.canvas.draw()
    width_px = fig.get_tightbbox(fig.canvas.get_renderer()).width * fig.dpi
    scale = min(1.0, column_px / width_px)
    sizes = [t.get_fontsize() for t in fig.findobj(mpl.text.Text)
             if t.get_visible() and t.get_text().strip() and t.get_window_extent().width > 0]
    return min(sizes) * fig.dpi / 72 * scale if sizes else float("inf")


use_style()


def _array(x, name: str = "values") -> np.ndarray:
    """``x`` (list, array, tensor on any device, even one that requires grad, or a list of
    0-d tensors) as a float NumPy array."""
    if isinstance(x, (str, bytes)):
        raise TypeError(f"{name} must be numbers, not a string")
    if hasattr(x, "detach"):                                   # a torch tensor: no torch import needed
        x = x.detach().cpu().float().numpy()
    elif not isinstance(x, np.ndarray):
        x = [float(v.detach().cpu()) if hasattr(v, "detach") else v for v in x]
    try:
        return np.asarray(x, dtype=float)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be numbers (a list, array or tensor): {err}") from None


def _xy(name: str, x, y) -> tuple[np.ndarray, np.ndarray]:
    x, y = _array(x, f"{name} x"), _array(y, f"{name} y")
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"{name}: x and y must be 1-D and of the same length, got {x.shape} and {y.shape}")
    return x, y


def _tokens(rows: Mapping[str, Sequence[str]]) -> None:
    for name, pieces in rows.items():
        if isinstance(pieces, str) or not all(isinstance(p, str) for p in pieces):
            raise TypeError(f"row {name!r} must be a list of token strings (e.g. tok.tokens(text)), "
                            f"got {type(pieces).__name__}")


def finish(fig: Figure, ax, xlabel: str, ylabel: str, title: str, logx: bool = False, logy: bool = False) -> Figure:
    """Shared finishing touches: scales, labels, a light grid, tight layout."""
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def heatmap(matrix, row_labels: Sequence[str], col_labels: Sequence[str], *, title: str = "",
            xlabel: str = "", ylabel: str = "", annotate: bool = True, fmt: str = "{:.0f}",
            cmap: str = "Blues", log: bool = False, vmin: float | None = None, vmax: float | None = None,
            ax=None) -> Figure:
    """A labelled heatmap (counts, probabilities, attention weights), rows x columns.

    ``log=True`` colours by log(1 + value), which keeps a few big counts from washing out
    the rest; the annotations still show the raw values. ``vmin``/``vmax`` fix the colour
    range (e.g. -1 and 1 for a score in [-1, 1] with a diverging ``cmap``). Each annotation
    is white on a dark cell and black on a light one, whatever the colour map.
    """
    m = _array(matrix, "matrix")
    if m.shape != (len(row_labels), len(col_labels)):
        raise ValueError(f"matrix shape {m.shape} does not match {len(row_labels)} row and {len(col_labels)} column labels")
    if ax is None:
        fig, ax = plt.subplots(figsize=(min(0.55 * len(col_labels) + 2.5, MAX_WIDTH_IN),
                                        0.45 * len(row_labels) + 1.5))
    else:
        fig = ax.figure
    shown = np.log1p(m) if log else m
    im = ax.imshow(shown, cmap=cmap, aspect="auto", vmin=vmin, vmax=vmax)
    ax.set_xticks(range(len(col_labels)), col_labels, rotation=60, ha="right")
    ax.set_yticks(range(len(row_labels)), row_labels)
    if annotate:
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                if m[i, j]:
                    r, g, b, _ = im.cmap(im.norm(shown[i, j]))
                    dark = 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.5     # relative luminance
                    ax.text(j, i, fmt.format(m[i, j]), ha="center", va="center",
                            color="white" if dark else "black")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    fig.colorbar(im, ax=ax, fraction=0.04, label="log(1 + value)" if log else None)
    fig.tight_layout()
    return fig


def curves(series: Mapping[str, tuple[Sequence[float], Sequence[float]]], *, xlabel: str = "", ylabel: str = "",
           title: str = "", logx: bool = False, logy: bool = False, hlines: Mapping[str, float] | None = None,
           markers: bool = True, ax=None) -> Figure:
    """Several named (x, y) lines on one axes, with optional labelled horizontal reference lines."""
    if not series:
        raise ValueError("series is empty: give at least one name -> (x, y)")
    series = {name: _xy(name, *xy) for name, xy in series.items()}
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.4, 4))
    else:
        fig = ax.figure
    for name, (x, y) in series.items():
        ax.plot(x, y, marker="o" if markers else None, ms=4, label=name)
    if all(float(v).is_integer() for x, _ in series.values() for v in x) and not logx:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for i, (name, y) in enumerate((hlines or {}).items()):
        ax.axhline(_array([y], name)[0], ls="--", lw=1, color=f"C{len(series) + i}", label=name)
    ax.legend()
    return finish(fig, ax, xlabel, ylabel, title, logx, logy)


def training_curves(steps: Sequence[int], train: Sequence[float], val: Sequence[float] | None = None, *,
                    val_steps: Sequence[int] | None = None, tokens_per_step: int | None = None,
                    ylabel: str = "loss (nats/token)", title: str = "") -> Figure:
    """Train (and validation) loss against steps, with a tokens-seen axis on top if given.
    ``val`` is measured at ``val_steps`` (default: the same ``steps`` as ``train``)."""
    series = {"train": _xy("train", steps, train)}
    if val is not None:
        series["validation"] = _xy("validation", val_steps if val_steps is not None else steps, val)
    fig = curves(series, xlabel="step", ylabel=ylabel, title=title, markers=False)
    if tokens_per_step:
        ax = fig.axes[0]
        top = ax.secondary_xaxis("top", functions=(lambda s: s * tokens_per_step, lambda t: t / tokens_per_step))
        top.set_xlabel("tokens seen")
    return fig


def accuracy_vs_distance(distances: Sequence[int], accuracy: Mapping[str, Sequence[float]], *,
                         chance: float = 0.5, title: str = "", windows: Mapping[str, int] | None = None) -> Figure:
    """Agreement accuracy on minimal pairs against subject-verb distance, one line per model.

    ``windows`` marks how far each model can see (e.g. ``{"trigram": 2}``) with a dotted line.
    """
    fig = curves({k: (distances, v) for k, v in accuracy.items()}, xlabel="distance: verb position - subject position (words)",
                 ylabel="accuracy (grammatical preferred)", title=title, hlines={"chance": chance})
    ax = fig.axes[0]
    for i, (name, w) in enumerate((windows or {}).items()):
        ax.axvline(w + 0.5, ls=":", lw=1, color=f"C{list(accuracy).index(name)}" if name in accuracy else "gray")
    ax.set_ylim(0, 1.05)
    return fig


def bars(labels: Sequence[str], values: Sequence[float], *, xlabel: str = "", title: str = "",
         reference: Mapping[str, float] | None = None, log: bool = False, fmt: str = "{:.2f}", ax=None) -> Figure:
    """Horizontal bars with their values written on them and optional labelled reference lines."""
    values = _array(values, "values")
    reference = {name: _array([v], name)[0] for name, v in (reference or {}).items()}
    if values.ndim != 1 or len(values) != len(labels) or not len(values):
        raise ValueError(f"need one value per label (at least one), got {len(values)} values "
                         f"and {len(labels)} labels")
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.4, 0.4 * len(labels) + 1.6 + 0.22 * len(reference or {})))
    else:
        fig = ax.figure
    y = np.arange(len(labels))
    ax.barh(y, values, color="C0")
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    for yi, v in zip(y, values):
        ax.text(v, yi, " " + fmt.format(v), va="center")
    for i, (name, v) in enumerate((reference or {}).items()):
        ax.axvline(v, ls="--", lw=1.2, color=f"C{i + 1}", label=name)
    if reference:   # below the axes, so it never hides a bar
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), frameon=False)
    if log:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.set_xlim(right=max(list(values) + list((reference or {}).values())) * (1.6 if log else 1.15))
    fig.tight_layout()
    return fig


def scatter(x: Sequence[float], y: Sequence[float], *, labels: Mapping[str, tuple[float, float]] | None = None,
            xlabel: str = "", ylabel: str = "", title: str = "", logx: bool = False, logy: bool = False,
            diagonal: bool = False, ax=None) -> Figure:
    """A scatter of many points, with a few named points highlighted and labelled."""
    x, y = _xy("scatter", x, y)
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
    else:
        fig = ax.figure
    ax.scatter(x, y, s=4, alpha=0.25, color="C0", linewidths=0)
    for name, point in (labels or {}).items():
        px, py = _array(point, name)
        ax.scatter([px], [py], s=25, color="C3")
        ax.annotate(name, (px, py), xytext=(4, 4), textcoords="offset points")
    if diagonal:
        lo, hi = max(min(np.min(x), np.min(y)), 1e-9), max(np.max(x), np.max(y))
        ax.plot([lo, hi], [lo, hi], ls="--", lw=1, color="gray", label="y = x")
        ax.legend()
    return finish(fig, ax, xlabel, ylabel, title, logx, logy)


_TOKEN_COLOURS = ["#cfe3f5", "#fbd9c0", "#d4edc9", "#f3cbe0", "#e6dcf5", "#fdf0b5"]


def _visible(piece: str) -> str:
    """Make whitespace inside a token visible: space as a middle dot, newline as a return arrow."""
    return piece.replace(" ", "\u00b7").replace("\n", "\u21b5").replace("\t", "\u2192")


def tokens_html(rows: Mapping[str, Sequence[str]]):
    """Each row's tokens as coloured boxes (HTML, so any script renders in the browser)."""
    import html

    from IPython.display import HTML

    _tokens(rows)
    out = ["<div style='font-family:monospace;line-height:2.1'>"]
    for name, pieces in rows.items():
        spans = "".join(
            f"<span style='background:{_TOKEN_COLOURS[i % len(_TOKEN_COLOURS)]};padding:2px 1px;margin:0 1px;"
            f"border-radius:3px'>{html.escape(_visible(p))}</span>" for i, p in enumerate(pieces))
        out.append(f"<div><b>{html.escape(name)}</b> ({len(pieces)} tokens): {spans}</div>")
    out.append("</div>")
    return HTML("".join(out))


def token_strips(rows: Mapping[str, Sequence[str]], *, title: str = "", width: int = 60) -> Figure:
    """A static picture of tokenizations: one strip of coloured boxes per row (wrapped at
    ``width`` characters). Chinese needs a CJK font (:func:`cjk_font`)."""
    _tokens(rows)
    if not rows or width < 1:
        raise ValueError(f"need at least one row and width >= 1, got {len(rows)} rows, width={width}")
    lines: list[tuple[str, list[str]]] = []
    for name, pieces in rows.items():
        current, used, first = [], 0, True
        for p in pieces:
            v = _visible(p)
            if used + len(v) > width and current:
                lines.append((f"{name} ({len(pieces)})" if first else "", current))
                current, used, first = [], 0, False
            current.append(v)
            used += len(v) + 0.6
        lines.append((f"{name} ({len(pieces)})" if first else "", current))
    fig, ax = plt.subplots(figsize=(0.1 * width + 2.2, 0.42 * len(lines) + 0.8))
    for r, (label, pieces) in enumerate(lines):
        y, x = len(lines) - r - 1, 0.0
        ax.text(-0.8, y, label, ha="right", va="center", fontweight="bold")
        for i, v in enumerate(pieces):
            w = max(len(v), 1)
            ax.add_patch(plt.Rectangle((x, y - 0.35), w, 0.7, color=_TOKEN_COLOURS[i % len(_TOKEN_COLOURS)], ec="gray", lw=0.4))
            ax.text(x + w / 2, y, v, ha="center", va="center", fontsize=9, family="monospace")
            x += w + 0.6
    ax.set_xlim(-0.5, width + 1)
    ax.set_ylim(-0.7, len(lines) - 0.3)
    ax.axis("off")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def attention_grid(weights, x_labels: Sequence[str], y_labels: Sequence[str], *,
                   row_names: Sequence[str] | None = None, col_names: Sequence[str] | None = None,
                   titles: Sequence[Sequence[str]] | None = None, title: str = "", cmap: str = "Reds",
                   cell: float = 0.2) -> Figure:
    """A grid of attention maps with token labels (rows x columns of panels, like d2l's
    ``show_heatmaps``): ``weights`` has shape ``(rows, cols, T_q, T_k)``, by default layers x
    heads (rows named "layer r", columns "head k"). ``titles[r][k]`` names each panel instead,
    for a selection of heads.

    Keys (``x_labels``, length T_k) run along the bottom, queries (``y_labels``, T_q) down
    the left; every panel shares one colour scale from 0 to 1. Token cells are ``cell``
    inches, made smaller (not below 0.13) to keep the grid within the book's column; a grid
    that cannot fit is an error.
    """
    w = _array(weights, "weights")
    if w.ndim == 2:
        w = w[None, None]
    if w.ndim != 4 or w.shape[2:] != (len(y_labels), len(x_labels)):
        raise ValueError(f"weights of shape {w.shape} do not match {len(y_labels)} query and {len(x_labels)} key labels")
    R, K = w.shape[:2]
    row_names = [f"layer {r}" for r in range(R)] if row_names is None else row_names
    col_names = [f"head {k}" for k in range(K)] if col_names is None else col_names
    for names, n, what in ((row_names, R, "row_names"), (col_names, K, "col_names")):
        if len(names) != n:
            raise ValueError(f"{what} has {len(names)} names for {n} {what[:3]}s of panels")
    if titles is not None and (len(titles) != R or any(len(t) != K for t in titles)):
        raise ValueError(f"titles must be {R} lists of {K} panel titles")
    label_in = 0.075 * max(len(str(v)) for v in y_labels) + 1.3      # y tick labels, colour bar
    cell = min(cell, (MAX_WIDTH_IN - label_in - 0.3 * K) / (K * len(x_labels)))
    if cell < 0.13:                      # 13 px rows for 12.5-px labels
        raise ValueError(f"{K} panels of {len(x_labels)} tokens do not fit the book's column with "
                         "legible labels: show fewer heads (a selection, with titles=) or fewer tokens")
    fig, axes = plt.subplots(R, K, squeeze=False, sharex=True, sharey=True,
                             figsize=(K * (cell * len(x_labels) + 0.3) + label_in,
                                      R * (cell * len(y_labels) + 0.5) + 1.0))
    for r in range(R):
        for k in range(K):
            ax = axes[r, k]
            im = ax.imshow(w[r, k], cmap=cmap, vmin=0, vmax=1, aspect="auto")
            ax.set_xticks(range(len(x_labels)), x_labels, rotation=90)
            ax.set_yticks(range(len(y_labels)), y_labels)
            if titles is not None:
                ax.set_title(titles[r][k])
            elif r == 0:
                ax.set_title(col_names[k])
            if k == 0 and titles is None:
                ax.set_ylabel(row_names[r])
    fig.colorbar(im, ax=axes, fraction=0.03, label="attention weight")
    fig.suptitle(title)
    return fig


def masks(named: Mapping[str, np.ndarray], *, title: str = "") -> Figure:
    """Boolean attention masks side by side (query rows x key columns); dark = may attend."""
    if not named:
        raise ValueError("no masks given: pass {name: (T_q, T_k) mask}")
    named = {name: _array(m, name) for name, m in named.items()}
    if any(m.ndim != 2 for m in named.values()):
        raise ValueError(f"every mask must be 2-D (T_q, T_k), got shapes {[m.shape for m in named.values()]}")
    fig, axes = plt.subplots(1, len(named), figsize=(2.2 * len(named) + 0.4, 2.8), squeeze=False)
    for ax, (name, m) in zip(axes[0], named.items()):
        ax.imshow(m, cmap="Greys", vmin=0, vmax=1.4)
        ax.set_xticks(range(m.shape[1]))
        ax.set_yticks(range(m.shape[0]))
        ax.set_xlabel("key position")
        ax.set_ylabel("query position")
        ax.set_title(name)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
