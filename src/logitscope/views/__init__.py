"""Every view of every result, apart from the analyses that compute them.

    colours.py   every colour scale (probability, GLTR rank, entropy, KL)
    text.py      plain-text pieces: number formats, summary lines, the tree, heatmap pieces
    tables.py    every table once, as plain data (TableSpec)
    terminal.py  rich renderables (tables, the offsets-based token heatmap)   <- __rich__
    html.py      HTML fragments for Jupyter and the self-contained heatmap page <- _repr_html_
    plots.py     matplotlib figures                                          <- plot()

``results.ResultMixin`` reaches these lazily, by the result's class name, so importing a
result type (or any analysis module) never imports rich or matplotlib. To add a view for a
new result type, add its class name to ``VIEWS`` in terminal.py / html.py and ``PICTURES``
in plots.py.
"""

from __future__ import annotations


def lookup(registry: dict, result):
    """The view registered for ``result``'s class or its nearest base class, else None."""
    for cls in type(result).__mro__:
        view = registry.get(cls.__name__)
        if view is not None:
            return view
    return None
