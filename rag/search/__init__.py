"""Retrieval: from a query to ranked passages.

- ``retrieve``: dense, keyword and hybrid (reciprocal rank fusion) search under a filter;
- ``asof``: a question asked as of a date: its cutoff, its time frame, then the learned ranker
  or the recency re-rank;
- ``rerank``: the learned passage ranker: a deep candidate pool, its features, the model
  (shipped in ``ranker/``, trained by ``bench/train_ranker.py``);
- ``timeframe``: the date window a question's words imply ("this week", "in March 2023");
- ``speakers``: who is quoted across the index, so "What did X say?" searches X's own quotes.

A new ranking signal is a feature in ``rerank.FEATURES`` (then retrain); a new re-ranking step
belongs in ``asof.search_as_of``, which ``Pipeline.retrieve`` calls.
"""
