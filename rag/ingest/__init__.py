"""From files to articles to chunks: the first stage of a reindex.

- ``files``: the files a source names (folders walked, links followed only inside them);
- ``readers``: files and folders (text, Markdown, HTML, JSON, JSONL, gzip) into ``Article``s, with
  a ``Problem`` for every record that cannot be used; ``frontmatter``: YAML front matter, safely;
- ``chunking``: articles into token-bounded passages that keep their offsets.

A new input format is a new reader in ``readers``.
"""

from rag.ingest.files import iter_source_files
from rag.ingest.readers import Deduplicator, IngestReport, iter_articles, read_sources, stream_sources

__all__ = ["Deduplicator", "IngestReport", "iter_articles", "iter_source_files", "read_sources", "stream_sources"]
