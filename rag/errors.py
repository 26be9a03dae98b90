"""One hierarchy for everything the library raises on purpose.

Every message says what went wrong and what to do about it::

    RagError
    ├── InputError              bad input from a user: fix the call
    │   ├── BadQuery            empty, too long or otherwise unusable question
    │   ├── BadDate             a date that cannot be parsed, or a range that is backwards
    │   ├── BadSetting          a setting outside its allowed values
    │   └── BadSource           a URL source that cannot be added or removed as asked
    ├── SourceError             a source path that does not exist or holds nothing usable
    │   └── FetchError          a URL source that cannot be fetched or used (reported, skipped)
    ├── IndexProblem            the on-disk index cannot be used
    │   ├── IndexNotBuilt       no index yet
    │   ├── IndexCorrupt        files missing or unreadable
    │   ├── IndexMismatch       built with another model, dimension or format
    │   └── DiskFull            the disk filled up while a reindex wrote (the old index stays)
    ├── ModelError              the embedding model cannot be loaded
    ├── ClusterError            a Ray cluster cannot embed: Ray missing, unreachable, too many failures
    └── AnswererError           the answerer cannot run (e.g. no LLM configured)
        └── LLMUnavailable      the LLM server failed (the answerer falls back to extractive)

The shells (CLI, HTTP API) translate these in exactly one place each.
"""

from __future__ import annotations


class RagError(Exception):
    """Base of every error the library raises on purpose."""


class InputError(RagError):
    """The caller passed something unusable."""


class BadQuery(InputError):
    """The question or query cannot be searched."""


class BadDate(InputError):
    """A date is not ISO (YYYY-MM-DD) or a range is backwards."""


class BadSetting(InputError):
    """A setting is outside its allowed values."""


class SourceError(RagError):
    """A source folder or file cannot be read at all."""


class IndexProblem(RagError):
    """The on-disk index cannot be used."""


class IndexNotBuilt(IndexProblem):
    """There is no index in the given folder."""


class IndexCorrupt(IndexProblem):
    """The index folder exists but its files are missing or unreadable."""


class IndexMismatch(IndexProblem):
    """The index was built with another format, model or dimension."""


class ModelError(RagError):
    """The embedding model cannot be loaded."""


class AnswererError(RagError):
    """The requested answerer cannot run."""


class LLMUnavailable(AnswererError):
    """The LLM server is unreachable, timed out, or answered something unusable."""


class DiskFull(IndexProblem):
    """The disk filled up while a reindex wrote its new generation; the previous one is unchanged."""


class ClusterError(RagError):
    """A reindex on a Ray cluster could not embed its chunks: Ray is not installed, the cluster
    cannot be reached, or its workers failed more often than allowed. The previous generation
    is still the one served."""


class FetchError(SourceError):
    """A URL source could not be fetched or used (reported per source; the round goes on)."""


class BadSource(InputError):
    """A source that cannot be added or removed as asked (not an http(s) URL, or named by a list file)."""
