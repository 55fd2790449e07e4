"""Every colour scale of every view, in one place (terminal, HTML, plots and the web page share them).

Two palettes; "viridis" is the default, "classic" the scales the views had first:

* probability — log scale from p <= 1e-4 to p = 1: viridis dark purple → yellow
  (classic: red → green, which red-green colour-blind readers cannot tell apart);
* surprisal   — −log₂ p in bits, the same order as probability (0 bits = p = 1);
* rank        — GLTR's buckets top-10 / top-100 / top-1000 / beyond: four viridis steps
  (classic: green, yellow, red, purple);
* entropy     — light (sure) to dark blue (spread out), saturating at 6 nats (both palettes);
* KL          — green (<= 0.001 nats) through yellow to red (>= 1 nat), log scale.

A scale is a ramp of anchor colours interpolated linearly in sRGB (``ramp_colour``), so the
web page draws the same colours from the same numbers: ``page_scales()`` is what
``GET /api/colours`` sends, and static/colours.js interpolates it the same way. Text on a
coloured background is black or white, whichever has the higher WCAG contrast (always >= 4.5:1).

Colours are ``#rrggbb`` strings; terminal styles are rich style strings ("#000000 on #2da44e").
Nothing here imports rich or matplotlib.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

from ..errors import InputError

COLOR_MODES = ("prob", "rank", "entropy")
PROB_FLOOR_LOG10 = -4.0  # p <= 1e-4 gets the lowest colour
ENTROPY_CEILING = 6.0  # nats at which the entropy colour saturates
SURPRISAL_CEILING = -PROB_FLOOR_LOG10 * math.log2(10)  # 13.29 bits: the probability floor
UNSCORED_STYLE = "dim"  # terminal style of a token without a log-prob

# plot colours (matplotlib's "deep" palette, as the figures have always used)
BLUE, ORANGE, GREEN, GREY, RED = "#4c72b0", "#dd8452", "#2da44e", "#8c8c8c", "#cf222e"
BAR_STYLE = "cyan"  # the probability bars of the next-token table

# matplotlib's viridis at 17 evenly spaced points (perceptually uniform, colour-blind safe)
VIRIDIS = ("#440154", "#48186a", "#472d7b", "#424086", "#3b528b", "#33638d", "#2c728e", "#26828e", "#21918c",
           "#1fa088", "#28ae80", "#3fbc73", "#5ec962", "#84d44b", "#addc30", "#d8e219", "#fde725")


def hex_hsl(hue: float, sat: float, light: float) -> str:
    r, g, b = colorsys.hls_to_rgb(hue / 360.0, light, sat)
    return "#{:02x}{:02x}{:02x}".format(*(round(255 * c) for c in (r, g, b)))


RED_GREEN = tuple(hex_hsl(120.0 * i / 8, 0.65, 0.42) for i in range(9))  # classic: hue 0 (red) .. 120 (green)
BLUES = tuple(hex_hsl(215.0, 0.70, 0.88 - 0.55 * i / 4) for i in range(5))  # light to dark blue
ORANGES = tuple(hex_hsl(28.0, 0.90, 0.92 - 0.50 * i / 4) for i in range(5))  # classic surprisal: light to dark


@dataclass(frozen=True)
class Palette:
    """The scales of one palette: ramps low → high and the rank buckets' colours."""

    name: str
    prob: tuple[str, ...]  # p = 1e-4 ... 1
    surprisal: tuple[str, ...]  # 0 bits ... SURPRISAL_CEILING
    entropy: tuple[str, ...]  # 0 ... ENTROPY_CEILING nats
    rank: tuple[str, str, str, str]  # top-10, top-100, top-1000, beyond

    def to_dict(self) -> dict:
        return {"prob": list(self.prob), "surprisal": list(self.surprisal), "entropy": list(self.entropy),
                "rank": list(self.rank)}


PALETTES = {
    "viridis": Palette("viridis", VIRIDIS, VIRIDIS[::-1], BLUES, ("#fde725", "#35b779", "#31688e", "#440154")),
    "classic": Palette("classic", RED_GREEN, ORANGES, BLUES, ("#2da44e", "#d4a72c", "#cf222e", "#8250df")),
}
DEFAULT_PALETTE = "viridis"
RANK_LIMITS = ((10, "top-10"), (100, "top-100"), (1000, "top-1000"), (None, ">1000"))


def check_mode(color_by: str) -> str:
    if color_by not in COLOR_MODES:
        raise InputError(f"unknown colour mode {color_by!r}", hint=f"color_by must be one of {', '.join(COLOR_MODES)}")
    return color_by


def palette(name: str = DEFAULT_PALETTE) -> Palette:
    if name not in PALETTES:
        raise InputError(f"unknown palette {name!r}", hint=f"palette must be one of {', '.join(PALETTES)}")
    return PALETTES[name]


# -- ramps ---------------------------------------------------------------------------------------
def ramp_colour(anchors: tuple[str, ...], share: float) -> str:
    """The colour at ``share`` in [0, 1] along ``anchors``, linear in sRGB between neighbours.
    Channels round half up (static/colours.js does the same, so both give the same hex)."""
    x = min(max(share, 0.0), 1.0) * (len(anchors) - 1)
    i = min(int(x), len(anchors) - 2)
    t = x - i
    lo, hi = _rgb(anchors[i]), _rgb(anchors[i + 1])
    return "#" + "".join(f"{math.floor(a + (b - a) * t + 0.5):02x}" for a, b in zip(lo, hi))


def prob_share(prob: float) -> float:
    """Where ``prob`` sits on the log scale: 0 at p <= 1e-4, 1 at p = 1."""
    return (max(math.log10(max(prob, 1e-300)), PROB_FLOOR_LOG10) - PROB_FLOOR_LOG10) / -PROB_FLOOR_LOG10


def prob_colour(prob: float, palette_name: str = DEFAULT_PALETTE) -> str:
    return ramp_colour(palette(palette_name).prob, prob_share(prob))


def surprisal_colour(bits: float, palette_name: str = DEFAULT_PALETTE) -> str:
    return ramp_colour(palette(palette_name).surprisal, bits / SURPRISAL_CEILING)


def entropy_colour(entropy: float, palette_name: str = DEFAULT_PALETTE) -> str:
    return ramp_colour(palette(palette_name).entropy, max(entropy, 0.0) / ENTROPY_CEILING)


def rank_bucket(rank: int) -> int:
    """Index into RANK_LIMITS: 0 for ranks 1-10, 1 for 11-100, 2 for 101-1000, 3 beyond."""
    for i, (limit, _) in enumerate(RANK_LIMITS):
        if limit is not None and rank <= limit:
            return i
    return len(RANK_LIMITS) - 1


def rank_colour(rank: int, palette_name: str = DEFAULT_PALETTE) -> str:
    return palette(palette_name).rank[rank_bucket(rank)]


def kl_colour(kl: float) -> str:
    """Green (KL <= 1e-3 nats) through yellow to red (KL >= 1 nat), log scale."""
    share = min(max((math.log10(max(kl, 1e-12)) + 3.0) / 3.0, 0.0), 1.0)
    red, green = int(200 * min(1.0, 2 * share)), int(160 * min(1.0, 2 * (1 - share)))
    return f"#{red:02x}{green:02x}30"


def token_colour(tok, color_by: str, palette_name: str = DEFAULT_PALETTE) -> str | None:
    """Background colour of a TokenScore (None when the token is not scored)."""
    if not tok.scored:
        return None
    if color_by == "prob":
        return prob_colour(tok.prob, palette_name)
    if color_by == "rank":
        return rank_colour(tok.rank, palette_name)
    return entropy_colour(tok.entropy, palette_name)


def legend_swatches(color_by: str, palette_name: str = DEFAULT_PALETTE) -> list[tuple[str, str]]:
    """(label, colour) samples of a heatmap scale, low to high."""
    if color_by == "prob":
        return [(label, prob_colour(p, palette_name)) for p, label in [(1e-4, "≤1e-4"), (1e-3, "0.001"),
                                                                       (1e-2, "0.01"), (1e-1, "0.1"), (1.0, "1")]]
    if color_by == "entropy":
        return [(f"{h:g}" + (" nats" if h == ENTROPY_CEILING else ""), entropy_colour(h, palette_name))
                for h in (0, 1.5, 3, 4.5, ENTROPY_CEILING)]
    return [(label, colour) for (_, label), colour in zip(RANK_LIMITS, palette(palette_name).rank)]


def page_scales() -> dict:
    """Everything the web page needs to draw the same colours (``GET /api/colours``)."""
    return {"default": DEFAULT_PALETTE, "palettes": {name: p.to_dict() for name, p in PALETTES.items()},
            "prob_floor_log10": PROB_FLOOR_LOG10, "entropy_ceiling": ENTROPY_CEILING,
            "surprisal_ceiling": SURPRISAL_CEILING, "rank_limits": [[limit, label] for limit, label in RANK_LIMITS]}


# -- text on a colour ---------------------------------------------------------------------------
def luminance(colour: str) -> float:
    """WCAG relative luminance of ``#rrggbb``."""
    def linear(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4
    r, g, b = (linear(c) for c in _rgb(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two colours (1 to 21)."""
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def text_colour(background: str) -> str:
    """Black or white, whichever has the higher WCAG contrast on ``background`` (>= 4.58:1 for any colour)."""
    return "#000000" if contrast("#000000", background) >= contrast("#ffffff", background) else "#ffffff"


def on(background: str | None) -> str:
    """Terminal style for text on ``background`` (the unscored style for None)."""
    return UNSCORED_STYLE if background is None else f"{text_colour(background)} on {background}"


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)
