"""Answers: from ranked passages to a few sentences, each cited to exact words in an article.

- ``extractive``: the default answerer, made only of the articles' own sentences;
- ``llm``: a chat model writes, and ``verify`` keeps only the sentences an article supports;
- ``citing``: what both share: the passages' sentences, who said each, citation numbers.

A new answerer is a module (or package) here with an ``answer(question, hits, quotes, as_of)``
method, named in ``rag.pipeline.ANSWERERS``.
"""
