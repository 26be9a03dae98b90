"""Retrieval: from a query to ranked passages.

- ``retrieve``: dense, keyword and hybrid (reciprocal rank fusion) search under a filter;
- ``asof``: a question asked as of a date: its cutoff, its time frame, the recency re-rank;
- ``timeframe``: the date window a question's words imply ("this week", "in March 2023");
- ``speakers``: who is quoted across the index, so "What did X say?" searches X's own quotes.

A new re-ranking step belongs beside the recency re-rank in ``asof``, which ``Pipeline.retrieve``
calls.
"""
