"""The index on disk and in memory.

- ``build``: a reindex, from sources to a new generation folder and an atomic manifest swap;
- ``manifest``: ``manifest.json``, which names the current generation and what built it;
- ``loaded``: one generation, opened for searching;
- ``space``: a disk that fills up during a reindex, and how much room the build needs;
- ``store`` (SQLite: articles, chunks, quotes), ``dense`` (FAISS; ``ivf``: its compressed kind) and
  ``keyword`` (BM25): the three parts of a generation.

A new index type belongs in ``dense`` (chosen by ``Settings.index_type``).
"""
