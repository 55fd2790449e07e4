"""Every colour scale of every view, in one place (terminal, HTML and plots share them).

* probability — log scale from p <= 1e-4 (red) to p = 1 (green);
* rank        — GLTR's buckets: top-10 green, top-100 yellow, top-1000 red, beyond purple;
* entropy     — light (sure) to dark blue (spread out), saturating at 6 nats;
* KL          — green (<= 0.001 nats) through yellow to red (>= 1 nat), log scale.

Colours are ``#rrggbb`` strings; terminal styles are rich style strings ("#000000 on #2da44e").
Nothing here imports rich or matplotlib.
"""

from __future__ import annotations

import colorsys
import math

from ..errors import InputError

COLOR_MODES = ("prob", "rank", "entropy")
RANK_BUCKETS = [(10, "#2da44e", "top-10"), (100, "#d4a72c", "top-100"),
                (1000, "#cf222e", "top-1000"), (None, "#8250df", ">1000")]
PROB_FLOOR_LOG10 = -4.0  # p <= 1e-4 gets the reddest colour
ENTROPY_CEILING = 6.0  # nats at which the entropy colour saturates
UNSCORED_STYLE = "dim"  # terminal style of a token without a log-prob

# plot colours (matplotlib's "deep" palette, as the figures have always used)
BLUE, ORANGE, GREEN, GREY, RED = "#4c72b0", "#dd8452", "#2da44e", "#8c8c8c", "#cf222e"
BAR_STYLE = "cyan"  # the probability bars of the next-token table


def check_mode(color_by: str) -> str:
    if color_by not in COLOR_MODES:
        raise InputError(f"unknown colour mode {color_by!r}", hint=f"color_by must be one of {', '.join(COLOR_MODES)}")
    return color_by


def rank_bucket(rank: int) -> int:
    """Index into RANK_BUCKETS: 0 for ranks 1-10, 1 for 11-100, 2 for 101-1000, 3 beyond."""
    for i, (limit, _, _) in enumerate(RANK_BUCKETS):
        if limit is not None and rank <= limit:
            return i
    return len(RANK_BUCKETS) - 1


def prob_colour(prob: float) -> str:
    share = (max(math.log10(max(prob, 1e-300)), PROB_FLOOR_LOG10) - PROB_FLOOR_LOG10) / -PROB_FLOOR_LOG10
    return hex_hsl(120.0 * share, 0.65, 0.42)  # hue 0 (red) .. 120 (green)


def entropy_colour(entropy: float) -> str:
    share = min(max(entropy, 0.0) / ENTROPY_CEILING, 1.0)
    return hex_hsl(215.0, 0.70, 0.88 - 0.55 * share)  # light to dark blue


def kl_colour(kl: float) -> str:
    """Green (KL <= 1e-3 nats) through yellow to red (KL >= 1 nat), log scale."""
    share = min(max((math.log10(max(kl, 1e-12)) + 3.0) / 3.0, 0.0), 1.0)
    red, green = int(200 * min(1.0, 2 * share)), int(160 * min(1.0, 2 * (1 - share)))
    return f"#{red:02x}{green:02x}30"


def token_colour(tok, color_by: str) -> str | None:
    """Background colour of a TokenScore (None when the token is not scored)."""
    if not tok.scored:
        return None
    if color_by == "prob":
        return prob_colour(tok.prob)
    if color_by == "rank":
        return RANK_BUCKETS[rank_bucket(tok.rank)][1]
    return entropy_colour(tok.entropy)


def legend_swatches(color_by: str) -> list[tuple[str, str]]:
    """(label, colour) samples of a heatmap scale, low to high."""
    if color_by == "prob":
        return [(label, prob_colour(p)) for p, label in [(1e-4, "≤1e-4"), (1e-3, "0.001"), (1e-2, "0.01"),
                                                         (1e-1, "0.1"), (1.0, "1")]]
    if color_by == "entropy":
        return [(f"{h:g}" + (" nats" if h == ENTROPY_CEILING else ""), entropy_colour(h))
                for h in (0, 1.5, 3, 4.5, ENTROPY_CEILING)]
    return [(label, colour) for _, colour, label in RANK_BUCKETS]


def text_colour(background: str) -> str:
    """Black or white, whichever reads better on ``background``."""
    r, g, b = (int(background[i:i + 2], 16) for i in (1, 3, 5))
    return "#000000" if 0.299 * r + 0.587 * g + 0.114 * b > 150 else "#ffffff"


def on(background: str | None) -> str:
    """Terminal style for text on ``background`` (the unscored style for None)."""
    return UNSCORED_STYLE if background is None else f"{text_colour(background)} on {background}"


def hex_hsl(hue: float, sat: float, light: float) -> str:
    r, g, b = colorsys.hls_to_rgb(hue / 360.0, light, sat)
    return "#{:02x}{:02x}{:02x}".format(*(round(255 * c) for c in (r, g, b)))
