"""One progress-bar helper for long library loops (tqdm on stderr, off unless asked)."""

from __future__ import annotations

import sys


def progress(items, enabled: bool, desc: str):
    """``items`` wrapped in a tqdm bar on stderr when ``enabled``, else unchanged."""
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, file=sys.stderr, leave=False)
