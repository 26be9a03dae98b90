"""Who is quoted in the index: every stored quote, findable by the person who said it.

Quotes are stored at index time with their speaker resolved within the article ("Mr Blair",
"Blair" and "the prime minister" are all stored as "Tony Blair", :mod:`rag.text.quotes`). This
index joins them across articles:

- one speaker per person key (:func:`rag.text.quotes.person_key`: case, accents, titles,
  initials and punctuation dropped), so "Tony Blair" in two articles is one speaker, with the
  readable id "tony-blair";
- a partial name stored where its article never gave the full one ("Blair") joins the one
  person it fits; when it fits two or more ("Taylor": Ann Taylor and Roger Taylor) it is left
  a speaker of its own, marked ambiguous, rather than merged into either;
- sources that are no person ("an NIS official", "the company", "NASA") are no speakers, nor
  is a lone word that no fuller name in the corpus fits ("Washington has warned").

Cost: built once per loaded generation, on its first use
(:meth:`rag.pipeline.Pipeline.speaker_index`), from one SQL pass over the quotes table, each
quote joined to the chunks that hold it through the ``chunks_article`` index. Time and memory
grow linearly with the quotes, plus a little per distinct name: 500,000 quotes by 20,000 people
take about 2 s (half of it SQLite) and 30 MB (measured; 120 MB at the peak of the build); the
test corpus takes a millisecond. Asking about someone afterwards is a few dict lookups (under
0.1 ms), and their passages are a precomputed array of chunk rows.

>>> index = SpeakerIndex.build([(1, "Tony Blair", 0, "2003-03-18"), (2, "an NIS official", 1, None),
...                             (3, "Blair", 2, "2003-03-19")])
>>> index.resolve("Mr Blair"), index.rows(index.resolve("Blair"))
([Speaker(id='tony-blair', name='Tony Blair', quotes=2)], (0, 2))
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from rag.models import Hit, Quote, Speaker
from rag.text.dates import day_number
from rag.text.quotes import name_key, person_key

__all__ = ["SpeakerIndex"]

Key = tuple[str, ...]


@dataclass(frozen=True, eq=False)  # compared by identity: it holds arrays
class _Entry:
    speaker: Speaker
    key: Key
    ambiguous: bool  # a partial name ("Taylor") that fits two or more people
    names: frozenset[str]  # the stored speaker strings credited to this speaker
    rows: np.ndarray  # sorted chunk rows that hold their quotes
    quote_ids: np.ndarray  # their quotes (store ids), newest article first


class SpeakerIndex:
    """The quoted people of one index generation; build it with :meth:`build`."""

    def __init__(self, entries: Sequence[_Entry], aliases: dict[Key, str]) -> None:
        self._entries = {e.speaker.id: e for e in entries}
        # Every stored person key, partial ones included, to the id of the speaker it names.
        self._by_key = aliases
        self._by_name = {name: e.speaker.id for e in entries for name in e.names}
        self._longer = _longer_keys(aliases)
        self.ranked = sorted((e.speaker for e in entries), key=lambda s: (-s.quotes, s.name, s.id))
        self._folded = [(s, _fold(s.name), self._entries[s.id].key) for s in self.ranked]

    @classmethod
    def build(cls, quotes: Iterable[tuple[int, str | None, int | None, str | None]]) -> SpeakerIndex:
        """The index of ``(quote_id, speaker, chunk_row, published_at)`` rows, as
        :meth:`rag.index.store.Store.quote_speakers` yields them (one per chunk holding the quote)."""
        codes: dict[str, int] = {}
        ids: list[int] = []
        code_of: list[int] = []
        rows: list[int] = []
        days: list[int] = []
        day_of: dict[str | None, int] = {}
        for quote_id, name, row, published_at in quotes:
            if not name:
                continue
            ids.append(quote_id)
            code_of.append(codes.setdefault(name, len(codes)))
            rows.append(-1 if row is None else row)
            day = day_of.get(published_at)
            if day is None:
                day = day_of[published_at] = day_number(published_at)
            days.append(day)
        quote_id_arr = np.asarray(ids, dtype=np.int64)
        code_arr = np.asarray(code_of, dtype=np.int32)
        row_arr = np.asarray(rows, dtype=np.int64)
        day_arr = np.asarray(days, dtype=np.int32)
        # One entry per quote (a quote held by two overlapping chunks is listed twice).
        _, first = np.unique(quote_id_arr, return_index=True)
        per_name = np.bincount(code_arr[first], minlength=len(codes))

        names_by_key: dict[Key, Counter[str]] = {}
        for name, code in codes.items():
            key = person_key(name)
            if key:
                names_by_key.setdefault(key, Counter())[name] = int(per_name[code])
        longer = _longer_keys(names_by_key)
        # A lone word that no fuller name in the corpus ends or starts with is a place or a
        # firm far more often than a person ("Washington has warned", "Abbott said"); a
        # one-name person ("Madonna said") is still found by passage retrieval.
        names_by_key = {k: v for k, v in names_by_key.items() if len(k) > 1 or k in longer}
        owner: dict[Key, Key] = {}  # key -> the key of the speaker its quotes go to
        ambiguous: set[Key] = set()
        for key in names_by_key:
            people = {t for t in longer.get(key, ()) if not longer.get(t)}
            if len(people) == 1:
                owner[key] = people.pop()
            else:
                owner[key] = key
                ambiguous |= {key} if people else set()

        slugs: dict[Key, str] = {}
        taken: set[str] = set()
        for key in sorted(k for k in names_by_key if owner[k] == k):
            slug = _slug(key)
            n = 1
            while (slug if n == 1 else f"{slug}-{n}") in taken:
                n += 1
            slugs[key] = slug if n == 1 else f"{slug}-{n}"
            taken.add(slugs[key])
        entry_of = {key: i for i, key in enumerate(sorted(slugs, key=slugs.__getitem__))}
        code_entry = np.full(len(codes), -1, dtype=np.int64)
        for key, counts in names_by_key.items():
            for name in counts:
                code_entry[codes[name]] = entry_of[owner[key]]

        quote_entry = code_entry[code_arr[first]]
        keep = quote_entry >= 0
        q_entry, q_id, q_day = quote_entry[keep], quote_id_arr[first][keep], day_arr[first][keep]
        order = np.lexsort((q_id, -q_day, q_entry))  # newest first; undated (-1) last
        q_entry, q_id = q_entry[order], q_id[order]
        q_bounds = np.searchsorted(q_entry, np.arange(len(entry_of) + 1))
        pair_entry = code_entry[code_arr]
        in_chunk = (pair_entry >= 0) & (row_arr >= 0)
        pairs = np.unique(np.stack([pair_entry[in_chunk], row_arr[in_chunk]], axis=1), axis=0)
        pairs = pairs.reshape(-1, 2)
        r_bounds = np.searchsorted(pairs[:, 0], np.arange(len(entry_of) + 1))

        credited: dict[Key, set[str]] = {}
        for key, counts in names_by_key.items():
            credited.setdefault(owner[key], set()).update(counts)
        entries: list[_Entry] = []
        for key, i in entry_of.items():
            own = names_by_key[key]
            # The commonest spelling; on a tie the one that kept its accents, then A-Z.
            display = min(own, key=lambda n: (-own[n], -sum(not c.isascii() for c in n), n))
            quote_ids = q_id[q_bounds[i]:q_bounds[i + 1]]
            entries.append(_Entry(
                speaker=Speaker(id=slugs[key], name=display, quotes=len(quote_ids)),
                key=key, ambiguous=key in ambiguous, names=frozenset(credited[key]),
                rows=pairs[r_bounds[i]:r_bounds[i + 1], 1].copy(), quote_ids=quote_ids.copy(),
            ))
        aliases = {key: slugs[owner[key]] for key in names_by_key}
        return cls(entries, aliases)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, speaker_id: str) -> Speaker | None:
        entry = self._entries.get(speaker_id)
        return entry.speaker if entry else None

    def find(self, query: str = "", limit: int = 20) -> list[Speaker]:
        """Speakers whose name matches ``query`` (the same person, or a part of the name, case
        and accents ignored), most quoted first; all of them for an empty query."""
        query = query.strip()
        if not query:
            return self.ranked[:limit]
        folded, key = _fold(query), name_key(query)
        return [s for s, name, own in self._folded
                if folded in name or key and _fits(key, own)][:limit]

    def resolve(self, name: str) -> list[Speaker]:
        """Who ``name`` (as a question gives it) can be, most quoted first.

        A full name, or a partial one that fits one person, gives that person; a surname shared
        by several gives each of them; a partial name known only on its own gives that speaker.
        """
        asked = name_key(name)
        if not asked:
            return []
        exact = self._by_key.get(asked)
        if exact is not None and not self._entries[exact].ambiguous:
            return [self._entries[exact].speaker]
        found = set(self._longer.get(asked, ()))
        found |= {asked[:i] for i in range(1, len(asked))} | {asked[-i:] for i in range(1, len(asked))}
        found.add(asked)
        # "Ann Taylor" is not Roger Taylor, whom a stored "Taylor" may have joined, nor is
        # "Bob Taylor" the "Taylor" who may be Ann or Roger.
        entries = {e for k in found if k in self._by_key
                   for e in [self._entries[self._by_key[k]]]
                   if _fits(asked, e.key) and not (e.ambiguous and len(e.key) < len(asked))}
        people = [e for e in entries if not e.ambiguous] or list(entries)
        return sorted((e.speaker for e in people), key=lambda s: (-s.quotes, s.name, s.id))

    def rows(self, speakers: Iterable[Speaker]) -> tuple[int, ...]:
        """The chunk rows that hold a quote by any of ``speakers``, ascending."""
        parts = [self._entries[s.id].rows for s in speakers if s.id in self._entries]
        if not parts:
            return ()
        return tuple(np.unique(np.concatenate(parts)).tolist())

    def quote_ids(self, speaker_id: str, limit: int, offset: int = 0) -> list[int]:
        """A page of the speaker's quotes (store ids), newest article first."""
        entry = self._entries.get(speaker_id)
        if entry is None:
            return []
        return entry.quote_ids[offset:offset + limit].tolist()

    def speaker_of(self, stored: str | None) -> Speaker | None:
        """The speaker a quote stored with speaker name ``stored`` is credited to, if any."""
        speaker_id = self._by_name.get(stored or "")
        return self._entries[speaker_id].speaker if speaker_id is not None else None

    def quoted_in(self, speakers: Sequence[Speaker], hits: Sequence[Hit], quotes: Sequence[Quote]) -> bool:
        """Whether any of ``hits`` holds a quote (one of ``quotes``) by one of ``speakers``."""
        wanted = {s.id for s in speakers}
        spans: dict[str, list[tuple[int, int]]] = {}
        for hit in hits:
            spans.setdefault(hit.article.id, []).append((hit.chunk.start, hit.chunk.end))
        return any(
            self._by_name.get(q.speaker or "") in wanted
            and any(start <= (q.start + q.end) // 2 < end for start, end in spans.get(q.article_id, ()))
            for q in quotes
        )


def _longer_keys(keys: Iterable[Key]) -> dict[Key, set[Key]]:
    """``{part: the given keys that start or end with it and are longer}``.

    >>> _longer_keys([("tony", "blair")])
    {('tony',): {('tony', 'blair')}, ('blair',): {('tony', 'blair')}}
    """
    longer: dict[Key, set[Key]] = {}
    for key in keys:
        for i in range(1, len(key)):
            for part in (key[:i], key[-i:]):
                longer.setdefault(part, set()).add(key)
    return longer


def _fits(a: Key, b: Key) -> bool:
    """Whether one key starts or ends the other (the rule of :func:`rag.text.quotes.same_person`)."""
    short, long_ = (a, b) if len(a) <= len(b) else (b, a)
    k = len(short)
    return long_[:k] == short or long_[-k:] == short


def _slug(key: Key) -> str:
    """A readable id: ``("tony", "blair")`` -> ``"tony-blair"``."""
    return re.sub(r"[\W_]+", "-", " ".join(key)).strip("-") or "speaker"


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))
