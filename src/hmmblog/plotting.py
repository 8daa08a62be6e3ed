"""One figure style for every post, and the small plotting helpers the posts share."""

from __future__ import annotations

from collections.abc import Sequence
from io import BytesIO
from pathlib import Path

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import torch
from PIL import Image

# A colour-blind-safe palette (Okabe & Ito); state k of any model is drawn in STATE_COLORS[k].
STATE_COLORS: tuple[str, ...] = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # green
    "#CC79A7",  # pink
    "#56B4E9",  # sky
    "#D55E00",  # vermillion
    "#F0E442",  # yellow
    "#000000",  # black
)


def use_style() -> None:
    """Set the shared matplotlib defaults (call once at the top of a post).

    Figures are at most 6.4 in wide at 96 px per inch, the width of a post's text column, with
    no text under 13 pt, so that a phone, which scales a figure down to its 339 px column, still
    shows it at 9 px or more (`smallest_text_px`). Backgrounds are transparent, so the site's
    dark mode (which inverts figure lightness in CSS) shows them on the page's own background
    instead of a white box.
    """
    mpl.rcParams.update(
        {
            "figure.figsize": (6.4, 3.4),
            "figure.dpi": 96,
            "savefig.dpi": 192,
            "savefig.bbox": "tight",
            "savefig.transparent": True,
            "figure.facecolor": "none",
            "axes.facecolor": "none",
            "figure.constrained_layout.use": True,
            "axes.prop_cycle": mpl.cycler(color=list(STATE_COLORS)),
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.titlesize": 14,
            "axes.titleweight": "bold",  # DejaVu Sans has no semibold (findfont would log)
            "axes.labelsize": 13,
            "xtick.labelsize": 13,
            "ytick.labelsize": 13,
            "legend.fontsize": 13,
            "legend.frameon": False,
            "font.size": 13,
            "lines.linewidth": 1.6,
            "image.cmap": "viridis",
        }
    )


# A post's text column, in CSS px, in a 390 px wide phone window: figures are scaled down to it.
PHONE_COLUMN_PX = 339


def smallest_text_px(fig: plt.Figure, column_px: float = PHONE_COLUMN_PX) -> float:
    """The height in CSS px of `fig`'s smallest visible text when the figure, saved with a tight
    bounding box as a post shows it, is scaled to a `column_px` wide column; inf without text.

    px = points × column_px / (72 × saved width in inches).
    """
    renderer = fig.canvas.get_renderer()
    pad = mpl.rcParams["savefig.pad_inches"]
    saved_width = fig.get_tightbbox(renderer).width + 2 * pad
    sizes = [t.get_fontsize() for t in fig.findobj(mpl.text.Text)
             if t.get_visible() and t.get_text().strip() and t.figure is not None]
    return min(sizes, default=np.inf) * column_px / (72 * saved_width)


# The shape social sites show a link's image in (1.91 : 1), in pixels.
CARD_SIZE: tuple[int, int] = (1200, 630)


def save_card(fig: plt.Figure, path: str | Path = "card.png", margin: int = 24) -> Path:
    """Save `fig` as a post's social card: the whole figure, scaled to fit a landscape
    `CARD_SIZE` image with `margin` px to spare and centred on an opaque white background, so it
    reads on the light and the dark backgrounds of link previews alike (a transparent figure's
    dark ink vanishes on a dark one). Returns the path; the figure itself is left unchanged.
    """
    width, height = CARD_SIZE
    buffer = BytesIO()
    fig.savefig(buffer, format="png", dpi=200, facecolor="white", transparent=False)
    figure = Image.open(buffer).convert("RGB")
    scale = min((width - 2 * margin) / figure.width, (height - 2 * margin) / figure.height)
    figure = figure.resize((round(figure.width * scale), round(figure.height * scale)),
                           Image.Resampling.LANCZOS)
    card = Image.new("RGB", CARD_SIZE, "white")
    card.paste(figure, ((width - figure.width) // 2, (height - figure.height) // 2))
    card.save(path, optimize=True)
    return Path(path)


def legend_below(ax: plt.Axes, ncols: int = 3, **kwargs) -> mpl.legend.Legend:
    """Put `ax`'s legend in a row under the plot, where it cannot cover data."""
    return ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncols=ncols, **kwargs)


def _as_numpy(x: torch.Tensor | np.ndarray | Sequence) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def shade_states(
    ax: plt.Axes,
    states: torch.Tensor | np.ndarray | Sequence[int],
    labels: Sequence[str] | None = None,
    alpha: float = 0.18,
    x: np.ndarray | None = None,
) -> None:
    """Shade the background of `ax` by a state path `[T]`: one colour band per run of a state."""
    s = _as_numpy(states).astype(int)
    if s.ndim != 1:
        raise ValueError(f"states: expected a 1-D path [T], got shape {tuple(s.shape)}")
    t = np.arange(len(s) + 1) - 0.5 if x is None else np.asarray(x, dtype=float)
    if len(t) != len(s) + 1:
        raise ValueError(f"x: expected {len(s) + 1} band edges for {len(s)} steps, got {len(t)}")
    start = 0
    for i in range(1, len(s) + 1):
        if i == len(s) or s[i] != s[start]:
            ax.axvspan(t[start], t[i], color=STATE_COLORS[s[start] % len(STATE_COLORS)],
                       alpha=alpha, lw=0)
            start = i
    if labels is not None:
        handles = [mpl.patches.Patch(color=STATE_COLORS[k], alpha=min(1.0, 3 * alpha), label=lab)
                   for k, lab in enumerate(labels) if k in set(s.tolist())]
        legend_below(ax, handles=handles, ncols=len(handles))


def draw_chain_graph(
    ax: plt.Axes,
    num_steps: int = 4,
    hidden: str = "z",
    observed: str = "x",
    hidden_names: Sequence[str] | None = None,
    observed_names: Sequence[str] | None = None,
    label_size: float = 13,
) -> None:
    """Draw the HMM as a graphical model on `ax`: open circles for hidden z_t, filled circles
    for observed x_t, arrows z_{t-1} -> z_t and z_t -> x_t, and a trailing ellipsis.

    `hidden_names` / `observed_names` (one per step) replace the default t-indexed labels;
    `label_size` is their font size in points.
    """
    r, dx, y_hidden, y_obs = 0.32, 1.5, 1.5, 0.0
    hidden_names = hidden_names or [f"${hidden}_{{{t + 1}}}$" for t in range(num_steps)]
    observed_names = observed_names or [f"${observed}_{{{t + 1}}}$" for t in range(num_steps)]
    arrow = {"arrowstyle": "-|>", "mutation_scale": 14, "lw": 1.3, "color": "0.15"}
    for t in range(num_steps):
        x = t * dx
        ax.add_patch(mpl.patches.Circle((x, y_hidden), r, fc="white", ec="0.15", lw=1.4))
        ax.add_patch(mpl.patches.Circle((x, y_obs), r, fc="0.82", ec="0.15", lw=1.4))
        ax.text(x, y_hidden, hidden_names[t], ha="center", va="center", fontsize=label_size)
        ax.text(x, y_obs, observed_names[t], ha="center", va="center", fontsize=label_size)
        ax.add_patch(mpl.patches.FancyArrowPatch((x, y_hidden - r), (x, y_obs + r), **arrow))
        end = (x + dx - r, y_hidden) if t < num_steps - 1 else (x + dx - 0.45, y_hidden)
        ax.add_patch(mpl.patches.FancyArrowPatch((x + r, y_hidden), end, **arrow))
    ax.text(num_steps * dx - 0.2, y_hidden, "…", ha="center", va="center",
            fontsize=label_size * 4 / 3)
    ax.set_xlim(-0.7, num_steps * dx + 0.2)
    ax.set_ylim(-0.7, y_hidden + 0.7)
    ax.set_aspect("equal")
    ax.axis("off")
