"""URL sources: RSS/Atom feeds and article pages, fetched politely and refreshed each round.

- ``urls``: telling URLs from paths, canonical URLs (tracking parameters, AMP, ``www.``);
- ``config``: :class:`FetchSettings` (user agent, timeouts, size and redirect limits, politeness);
- ``fetch``: the :class:`~rag.ingest.web.fetch.Fetcher` (robots.txt, per-host gate, conditional GET);
- ``feeds``: feeds parsed with feedparser; ``extract``: article pages with trafilatura;
- ``state``: the fetch state in ``<index>/sources.sqlite`` (validators, entries seen, articles, errors);
- ``refresh``: one round over every URL source, the articles it yields and a report per source.

Only ``config`` is imported here: the rest loads an HTTP client and parsers, which an index of
files alone never needs.
"""

from rag.ingest.web.config import FetchSettings

__all__ = ["FetchSettings"]
