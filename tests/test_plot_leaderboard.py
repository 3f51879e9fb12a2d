import math

import numpy as np
import pytest
from matplotlib.figure import Figure

from textbook_lm import leaderboard, ngram, plot
from textbook_lm.data import tinylang
from textbook_lm.experiments import ngram as ngram_runs


def test_heatmap_labels_and_checks_shape():
    fig = plot.heatmap(np.arange(6).reshape(2, 3), ["a", "b"], ["x", "y", "z"], title="t")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["x", "y", "z"]
    assert len(ax.texts) == 5                       # zeros are not annotated
    with pytest.raises(ValueError, match="does not match"):
        plot.heatmap(np.zeros((2, 2)), ["a"], ["x", "y"])


@pytest.mark.parametrize("cmap", ["Blues", "RdBu_r", "viridis"])
def test_heatmap_writes_light_text_on_dark_cells_whatever_the_colour_map(cmap):
    m = np.array([[0.05, 0.5, 0.95]])
    fig = plot.heatmap(m, ["a"], ["x", "y", "z"], fmt="{:.2f}", cmap=cmap)
    ax = fig.axes[0]
    im = ax.images[0]
    for t, v in zip(ax.texts, m[0]):
        r, g, b, _ = im.cmap(im.norm(v))
        cell = 0.2126 * r + 0.7152 * g + 0.0722 * b
        assert (t.get_color() == "white") == (cell < 0.5), (cmap, v, t.get_color())
    # with RdBu_r both ends are dark: both get white text (the old rule gave 0.05 black on dark blue)
    if cmap == "RdBu_r":
        assert [t.get_color() for t in ax.texts] == ["white", "black", "white"]
    fixed = plot.heatmap(m, ["a"], ["x", "y", "z"], cmap="RdBu_r", vmin=-1, vmax=1)
    assert fixed.axes[0].images[0].get_clim() == (-1, 1)


def test_curves_and_bars_return_figures():
    fig = plot.curves({"train": ([1, 2], [3, 2]), "valid": ([1, 2], [3.5, 3])}, hlines={"floor": 1.0})
    assert len(fig.axes[0].lines) == 3
    fig = plot.training_curves([0, 10, 20], [3, 2, 1.5], [3.2, 2.4, 2.0], tokens_per_step=100)
    assert isinstance(fig, Figure) and len(fig.axes[0].lines) == 2
    fig = plot.bars(["a", "b"], [10, 100], reference={"ref": 50}, log=True)
    assert len(fig.axes[0].patches) == 2
    fig = plot.accuracy_vs_distance([1, 2, 3], {"m": [1.0, 0.9, 0.5]}, windows={"m": 2})
    assert fig.axes[0].get_ylim()[1] == pytest.approx(1.05)


def test_stored_tinylang_entries_reproduce_exactly():
    board = leaderboard.load()
    sp = tinylang.benchmark()
    floor = board.floor("tinylang")
    assert floor.cross_entropy == pytest.approx(tinylang.entropy_rate(sp.test, sp.test_logprob), abs=1e-12)
    for n in (1, 3, 5):
        e = board.get(ngram_runs.model_name(n), "tinylang")
        s = ngram.fit(sp.train, n, "kn").score(sp.test)
        assert (e.nll, e.n_tokens) == (pytest.approx(s.nll, rel=1e-12), s.n_tokens)
        assert e.command.startswith("python -m textbook_lm.experiments.leaderboard reproduce")


def test_leaderboard_add_table_chart_roundtrip(tmp_path):
    b = leaderboard.Leaderboard()
    e = leaderboard.Entry("m", "wikitext-2", "test", 1000.0, 200, 10, 1.0, 1, "cmd")
    b.add(e)
    b.add(leaderboard.Entry("m", "wikitext-2", "test", 900.0, 200, 10, 1.0, 1, "cmd"))   # replaces
    assert len(b.entries) == 1 and b.get("m", "wikitext-2").nll == 900.0
    b.save(tmp_path / "lb")
    again = leaderboard.load(tmp_path / "lb")
    assert again.get("m", "wikitext-2").perplexity == pytest.approx(math.exp(4.5))
    assert "AWD-LSTM" in again.table("wikitext-2")
    fig = again.chart("wikitext-2")
    assert len(fig.axes[0].patches) == 1
    with pytest.raises(KeyError):
        again.get("nope", "wikitext-2")
    with pytest.raises(FileNotFoundError, match="typo.json"):
        leaderboard.load("typo.json")


def test_scatter_labels_points():
    fig = plot.scatter([1, 10, 100], [1, 5, 50], labels={"b": (10, 5)}, logx=True, logy=True, diagonal=True)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == ["b"] and ax.get_xscale() == "log"


def test_token_pictures_show_every_token():
    rows = {"bpe": ["Hello", " world", "\n"], "char": list("Hi there")}
    html = plot.tokens_html(rows).data
    assert html.count("<span") == 11 and "\u00b7world" in html and "\u21b5" in html
    fig = plot.token_strips(rows, width=6)
    assert len(fig.axes[0].patches) == 11


def test_select_by_chapter():
    b = leaderboard.Leaderboard()
    b.add(leaderboard.Entry("a", "x", "test", 10.0, 10, 1, 0.0, 1, "c"))
    b.add(leaderboard.Entry("b", "x", "test", 5.0, 10, 1, 0.0, 4, "c"))
    assert [e.model for e in b.select("x", max_chapter=1)] == ["a"] and len(b.select("x")) == 2
    assert "b" not in b.table("x", max_chapter=1).split("\n", 3)[-1]


def test_attention_grid_and_masks():
    w = np.random.default_rng(0).dirichlet(np.ones(4), size=(2, 3, 5))          # (2, 3, 5, 4)
    fig = plot.attention_grid(w, list("abcd"), list("vwxyz"), row_names=["l0", "l1"], col_names=["h0", "h1", "h2"])
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 6 and [t.get_text() for t in panels[3].get_xticklabels()] == list("abcd")
    with pytest.raises(ValueError, match="do not match"):
        plot.attention_grid(w, list("abc"), list("vwxyz"))
    fig = plot.masks({"causal": np.tril(np.ones((4, 4), bool)), "padding": np.ones((4, 4), bool)})
    assert len(fig.axes) == 2


def test_plots_accept_tensors_that_require_grad():
    """Numbers straight from a model: tensors that require grad (and, on a GPU, CUDA tensors:
    the helpers call .detach().cpu()) plot like lists and arrays."""
    import torch

    w = torch.rand(2, 3, 5, 4, requires_grad=True)
    x, y = torch.arange(4.0), torch.rand(4, requires_grad=True)
    fig = plot.attention_grid(w.softmax(-1), list("abcd"), list("vwxyz"))
    assert sum(1 for ax in fig.axes if ax.images) == 6
    assert isinstance(plot.heatmap(torch.rand(2, 3, requires_grad=True), ["a", "b"], list("xyz")), Figure)
    fig = plot.curves({"loss": (x, y), "list of 0-d": (list(x), [v for v in y])}, hlines={"floor": y.min()})
    assert len(plot.bars(["a"], [1.0], reference={"r": y[0]}).axes[0].lines) == 1
    assert len(fig.axes[0].lines) == 3
    assert isinstance(plot.training_curves(x, y * 2, y, tokens_per_step=10), Figure)
    assert len(plot.bars(["a", "b"], torch.tensor([1.0, 2.0], requires_grad=True)).axes[0].patches) == 2
    assert isinstance(plot.scatter(x, y, labels={"p": (x[1], y[1])}), Figure)
    assert isinstance(plot.masks({"causal": torch.ones(3, 3, dtype=torch.bool).tril()}), Figure)


def test_importing_plot_applies_the_book_style():
    import matplotlib as mpl

    mpl.rcdefaults()
    plot.use_style()
    assert mpl.rcParams["figure.dpi"] == plot.DPI and mpl.rcParams["xtick.labelsize"] >= 9
    assert 9.4 < plot.MAX_WIDTH_IN < 9.7
    assert mpl.rcParams["font.family"] == ["sans-serif"] + [f for f in [plot.cjk_font()] if f]


_RNG = np.random.default_rng(0)
_WORDS = "the cats that the dog sees are happy today in the town".split()          # 12 tokens
_LONG = _WORDS + _WORDS[:10]
LEGIBLE = {
    "heatmap": lambda: plot.heatmap(_RNG.integers(0, 999, (6, 8)), list("abcdef"), list("stuvwxyz")),
    "curves": lambda: plot.curves({"train": ([1, 2], [3, 2])}, hlines={"floor": 1.0}, title="t"),
    "training_curves": lambda: plot.training_curves([0, 10], [3, 2], [3.2, 2.4], tokens_per_step=100),
    "accuracy_vs_distance": lambda: plot.accuracy_vs_distance([1, 2], {"m": [1.0, 0.9]}, windows={"m": 1}),
    "bars": lambda: plot.bars(["unigram", "bigram", "trigram"], [900, 300, 200], reference={"KN": 150}),
    "scatter": lambda: plot.scatter([1, 10, 100], [1, 5, 50], labels={"b": (10, 5)}, diagonal=True),
    "token_strips": lambda: plot.token_strips({"characters": list("Tokenization isn't magic: it's counting"),
                                               "words": "Tokenization isn't magic".split()}),
    "attention_grid 2x4": lambda: plot.attention_grid(_RNG.dirichlet(np.ones(12), (2, 4, 12)), _WORDS, _WORDS),
    "attention_grid 2x2": lambda: plot.attention_grid(_RNG.dirichlet(np.ones(22), (2, 2, 22)), _LONG, _LONG),
    "masks": lambda: plot.masks({k: np.tril(np.ones((6, 6), bool)) for k in ("a", "b", "c", "d")}),
}


@pytest.mark.parametrize("name", LEGIBLE)
def test_every_plot_keeps_text_at_least_9_px_at_column_width(name):
    import matplotlib.pyplot as plt

    fig = LEGIBLE[name]()
    assert plot.text_px(fig) >= plot.MIN_TEXT_PX
    plt.close(fig)


def test_text_px_sees_small_and_shrunk_text():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3))
    ax.set_title("a title")
    assert plot.text_px(fig) == pytest.approx(9 * plot.DPI / 72)            # the 9-pt tick labels
    ax.text(0.5, 0.5, "tiny", fontsize=5)
    assert plot.text_px(fig) == pytest.approx(5 * plot.DPI / 72)
    wide, ax = plt.subplots(figsize=(20, 3))
    ax.plot([0, 1])
    assert plot.text_px(wide) < 0.5 * 9 * plot.DPI / 72                      # shrunk to the column
    plt.close("all")


def test_attention_grid_names_layers_and_heads_by_default():
    w = np.full((2, 3, 4, 4), 0.25)
    fig = plot.attention_grid(w, list("abcd"), list("abcd"))
    panels = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in panels[:3]] == ["head 0", "head 1", "head 2"]
    assert panels[0].get_ylabel() == "layer 0" and panels[3].get_ylabel() == "layer 1"
    fig = plot.attention_grid(w[:1, :2], list("abcd"), list("abcd"),
                              titles=[["layer 3, head 1", "layer 0, head 2"]])
    assert [ax.get_title() for ax in fig.axes if ax.images] == ["layer 3, head 1", "layer 0, head 2"]
    with pytest.raises(ValueError, match="titles"):
        plot.attention_grid(w, list("abcd"), list("abcd"), titles=[["x"]])
    letters = list("attentionisallineed")                                    # 4 heads x 19 letters
    with pytest.raises(ValueError, match="fewer heads"):
        plot.attention_grid(np.full((2, 4, 19, 19), 1 / 19), letters, letters)


def test_chinese_labels_draw_with_a_cjk_font_without_missing_glyphs():
    import warnings

    import matplotlib.pyplot as plt

    if plot.cjk_font() is None:
        pytest.skip("no CJK font: pip install mplfonts (the book extra) or a system Noto Sans CJK")
    chars = list("空山不見人")
    with warnings.catch_warnings():
        warnings.simplefilter("error")                 # "Glyph ... missing from font(s)" fails
        fig = plot.heatmap(np.eye(5), chars, chars, annotate=False)
        fig.canvas.draw()
    plt.close(fig)
