"""Sentence embeddings: the model, the runtimes that run it, and the helpers built on them."""
