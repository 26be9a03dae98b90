"""Retrieval: from a query to ranked passages.

- ``retrieve``: dense, keyword and hybrid (reciprocal rank fusion) search under a filter;
- ``timeframe``: the date window a question's words imply ("this week", "in March 2023").
"""
