"""Views of results: terminal (rich), HTML and matplotlib plots. Analysis modules never import these."""
