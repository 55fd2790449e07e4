"""Lesson figures that the library's own views do not draw (yet).

``path_tree`` draws a ``TreeResult`` by *path* probability — the product of the conditional
probabilities from the prompt to each node — which is what lesson 4 teaches; the library's
``TreeResult.plot()`` draws each branch by its conditional probability.
"""

from __future__ import annotations

import matplotlib.pyplot as plt

STEP, LABEL = 2.0, 1.55  # x distance between depths; the width a node's label takes (data units)


def path_tree(tree, title: str | None = None):
    """The tree of possibilities, line width and darkness by path probability, each node labelled
    with its token, p(token | path) and the path probability. Returns the matplotlib Figure."""
    places: dict[int, tuple[float, float]] = {}
    leaves = [0]

    def place(nodes):
        for node in nodes:
            if node.children:
                place(node.children)
                y = sum(places[id(c)][1] for c in node.children) / len(node.children)
            else:
                y, leaves[0] = float(leaves[0]), leaves[0] + 1
            places[id(node)] = (STEP * node.depth, y)

    place(tree.children)
    top = max((n.cum_prob for _, n in tree.nodes()), default=1.0) or 1.0
    fig, ax = plt.subplots(figsize=(2.6 * tree.depth + 3.5, 0.42 * max(leaves[0], 1) + 1.2))
    root = (0.0, sum(places[id(c)][1] for c in tree.children) / max(len(tree.children), 1))
    ax.text(root[0], root[1], repr(tree.prompt), ha="right", va="center", fontsize=9,
            bbox={"boxstyle": "round", "fc": "#eeeeee"})

    def draw(nodes, parent):
        for node in nodes:
            x, y = places[id(node)]
            share = node.cum_prob / top  # 1 for the likeliest path
            ax.plot([parent[0] + 0.05, x - 0.05], [parent[1], y], color=plt.cm.viridis(0.85 - 0.75 * share),
                    lw=0.6 + 6 * share, solid_capstyle="round")
            ax.text(x, y, f"{node.text!r}  p={node.prob:.2f}  path={node.cum_prob:.3g}", va="center", fontsize=8,
                    bbox={"boxstyle": "round", "fc": "white", "ec": "#bbbbbb"})
            draw(node.children, (x + LABEL, y))

    draw(tree.children, root)
    ax.set_xlim(-1.6, STEP * tree.depth + LABEL + 0.2)
    ax.set_ylim(max(leaves[0], 1) - 0.5, -0.8)  # the first (likeliest) child on top
    ax.axis("off")
    ax.set_title(title or "the tree of possibilities: line width = path probability (product of p along the path)",
                 fontsize=10)
    fig.tight_layout()
    return fig
