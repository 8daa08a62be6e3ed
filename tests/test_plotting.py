"""The shared figure helpers: social cards that read on any background, and the phone-size check
of figure text."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from hmmblog.plotting import CARD_SIZE, save_card, smallest_text_px, use_style  # noqa: E402


@pytest.fixture
def style():
    with matplotlib.rc_context():
        use_style()
        yield
    plt.close("all")


@pytest.mark.parametrize("figsize", [(6.4, 3.4), (6.4, 8.0)])
def test_a_card_is_landscape_opaque_and_holds_the_whole_figure(style, tmp_path: Path, figsize):
    fig, ax = plt.subplots(figsize=figsize)
    ax.plot([0, 1], [0, 1], color="black", lw=8)
    path = save_card(fig, tmp_path / "card.png")
    card = Image.open(path)
    assert card.size == CARD_SIZE and card.mode == "RGB"  # no alpha: opaque
    pixels = np.asarray(card)
    corners = pixels[[0, 0, -1, -1], [0, -1, 0, -1]]
    assert (corners == 255).all(), "a card's background is white, not transparent or black"
    ink = np.argwhere(pixels.min(axis=2) < 100)
    assert len(ink) > 1000, "the figure's ink is on the card"
    centre = ink.mean(axis=0)
    assert abs(centre[1] - CARD_SIZE[0] / 2) < 120 and abs(centre[0] - CARD_SIZE[1] / 2) < 120
    assert tuple(fig.get_size_inches()) == figsize, "saving a card leaves the figure as it was"


def test_figure_text_on_a_phone(style):
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    ax.set_title("big")
    ax.set_xlabel("label")
    fig.canvas.draw()
    saved = fig.get_tightbbox(fig.canvas.get_renderer()).width + 0.2
    assert smallest_text_px(fig) == pytest.approx(13 * 339 / (72 * saved))
    assert smallest_text_px(fig) >= 9, "the shared style is legible on a phone"
    ax.text(0.5, 0.5, "footnote", fontsize=8)
    assert smallest_text_px(fig) == pytest.approx(8 * 339 / (72 * saved), rel=0.05)
    assert smallest_text_px(fig) < 9
    assert smallest_text_px(fig, column_px=678) == pytest.approx(2 * smallest_text_px(fig))


def test_a_figure_without_text_has_no_smallest_text(style):
    fig, ax = plt.subplots()
    ax.axis("off")
    assert smallest_text_px(fig) == np.inf
