"""Answers to "What did X say ...?": who X is, and an honest "no" when the news has nothing by X.

The answerer composes as usual, preferring X's own sentences and never crediting X with anyone
else's (:mod:`rag.answer.extractive`). :func:`settle` then holds the answer to X:

- X is a quoted person (the speaker index knows X): the answer must cite at least one sentence
  credited to X, else it abstains with ``NO_STATEMENT_ABOUT`` ("No statement by X about this in
  the indexed news.") when the passages hold X's quotes, or with ``NO_STATEMENT`` ("No statement
  by X in the indexed news.") when the as-of cutoff or the filters leave none of them;
- X is quoted nowhere (a firm, a place, someone never credited with a quote): the answer must
  cite a sentence by X or one that names X in full, else it abstains with ``NO_STATEMENT``;
- X fits several quoted people: the answerer quotes the one whose statement matches best, and
  a warning names them all (:func:`several_people`).

>>> NO_STATEMENT.format(name="Jacinda Ardern")
'No statement by Jacinda Ardern in the indexed news.'
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import replace
from typing import Callable, Sequence

from rag.models import Answer, Speaker
from rag.text.quotes import same_person

__all__ = ["NO_STATEMENT", "NO_STATEMENT_ABOUT", "mentions", "settle", "several_people"]

NO_STATEMENT = "No statement by {name} in the indexed news."
NO_STATEMENT_ABOUT = "No statement by {name} about this in the indexed news."

_COUNTS = "Two Three Four Five Six Seven Eight Nine Ten".split()
# A common surname can fit hundreds of people: an answer lists the most quoted of them.
LISTED_IN_ANSWER = 20
NAMED_IN_WARNING = 5


def settle(answer: Answer, asked: str, candidates: Sequence[Speaker], quoted: bool,
           speaker_of: Callable[[str | None], Speaker | None]) -> Answer:
    """``answer`` held to the person asked about, with ``speakers`` and warnings filled in.

    ``asked``: the name as the question gives it; ``candidates``: the quoted people it fits,
    most quoted first (empty when X is no known speaker); ``quoted``: whether the passages hold
    a quote by one of them; ``speaker_of(stored)``: the speaker a citation's stored speaker name
    is credited to.
    """
    person: Speaker | None = None
    if candidates:
        ids = {s.id for s in candidates}
        person = next((p for c in answer.citations for p in [speaker_of(c.speaker)]
                       if p is not None and p.id in ids), None)
        kept = person is not None
        name = candidates[0].name if len(candidates) == 1 else asked
        refusal = (NO_STATEMENT_ABOUT if quoted else NO_STATEMENT).format(name=name)
    else:
        kept = any(same_person(asked, c.speaker) or mentions(c.quote, asked) for c in answer.citations)
        refusal = NO_STATEMENT.format(name=asked)
    kept = kept and not answer.abstained
    warnings = list(answer.warnings)
    if len(candidates) > 1:
        warnings.append(several_people(asked, candidates, person if kept else None))
    listed = list(candidates[:LISTED_IN_ANSWER])
    if kept:
        return replace(answer, warnings=warnings, speakers=listed)
    return replace(answer, text=refusal, abstained=True, citations=[], warnings=warnings, speakers=listed)


def several_people(asked: str, candidates: Sequence[Speaker], quoted: Speaker | None) -> str:
    """The warning for a name that fits several quoted people.

    >>> people = [Speaker("ann-taylor", "Ann Taylor", 5), Speaker("roger-taylor", "Roger Taylor", 2)]
    >>> several_people("Taylor", people, people[0])
    'Two people named Taylor are quoted: Ann Taylor (5 quotes), Roger Taylor (2); this answer quotes Ann Taylor'
    >>> several_people("Smith", [Speaker(f"smith-{i}", f"{n} Smith", 1) for i, n in enumerate("ABCDEFG")], None)
    'Seven people named Smith are quoted: A Smith (1 quote), B Smith (1), C Smith (1), D Smith (1), E Smith (1) and 2 more'
    """
    n = len(candidates)
    count = _COUNTS[n - 2] if 2 <= n <= len(_COUNTS) + 1 else str(n)
    listed = ", ".join(
        f"{s.name} ({s.quotes}{(' quote' if s.quotes == 1 else ' quotes') if i == 0 else ''})"
        for i, s in enumerate(candidates[:NAMED_IN_WARNING]))
    more = f" and {n - NAMED_IN_WARNING} more" if n > NAMED_IN_WARNING else ""
    said = f"; this answer quotes {quoted.name}" if quoted is not None else ""
    return f"{count} people named {asked} are quoted: {listed}{more}{said}"


def mentions(text: str, name: str) -> bool:
    """Whether ``text`` names ``name``: all of its words in a row, case and accents ignored.

    >>> mentions("Secretary Antony Blinken said so.", "antony blinken"), mentions("Blinken left.", "Antony Blinken")
    (True, False)
    """
    words, wanted = _words(text), _words(name)
    k = len(wanted)
    return k > 0 and any(words[i:i + k] == wanted for i in range(len(words) - k + 1))


def _words(text: str) -> list[str]:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return re.findall(r"\w+", "".join(c for c in decomposed if not unicodedata.combining(c)))
