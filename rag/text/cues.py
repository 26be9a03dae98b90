"""What shape of sentence answers a question: cues read from the question's own words.

A "why" question is answered by a cause ("because", "after"), "how many" by a number, "when" by
a date, "who" by a name. Both the extractive answerer and the learned ranker use these cues;
they are regular expressions, cheap enough to run on every candidate.
"""

from __future__ import annotations

import re
from typing import Callable

__all__ = ["answer_cue", "asks_reason_or_manner", "novelty", "question_words"]

_CUES: list[tuple[re.Pattern[str], re.Pattern[str]]] = [
    (re.compile(r"^\s*why\b|\bwhat (?:caused|led to)\b|\bfor what reason\b", re.I),
     re.compile(r"\b(?:because|due to|after|following|amid|as a result|caused by|over|since|so that|in order to)\b", re.I)),
    (re.compile(r"\bhow (?:many|much|long|old|far)\b|\bwhat (?:percentage|share|number|amount)\b", re.I),
     re.compile(r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|dozen|hundred|thousand|million|billion|trillion)\b", re.I)),
    (re.compile(r"^\s*when\b|\bwhat (?:year|day|date|month)\b", re.I),
     re.compile(r"\b(?:(?:19|20)\d\d|January|February|March|April|May|June|July|August|September|October|November|December|Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday|yesterday|today)\b")),
    (re.compile(r"^\s*(?:who|whom)\b|\bwhich (?:person|leader|company|country|team)\b", re.I),
     re.compile(r"\b[A-Z][a-z]+ [A-Z][a-z]+\b")),
]


def answer_cue(question: str) -> re.Pattern[str] | None:
    """A pattern that sentences answering this kind of question tend to match, if any.

    >>> answer_cue("Why was the plant closed?").search("It shut after bacteria were found") is not None
    True
    """
    for asks, answers in _CUES:
        if asks.search(question):
            return answers
    return None


# Questions answered by a reason (the "why" cue's questions) or a manner, not by a name or a
# number.
_REASON_OR_MANNER = re.compile(_CUES[0][0].pattern + r"|^\s*how\b(?!\s+(?:many|much|long|old|far|often|big))",
                               re.I)
_WORD = re.compile(r"[\w'’-]+")
_NAME_OR_NUMBER = re.compile(r"\b(?:[A-Z][\w'’-]*|\d[\d,.]*%?)")


def novelty(sentence: str, asked_words: set[str], terms: Callable[[str], list[str]]) -> float:
    """0, 0.5 or 1: how many names or numbers (up to two) ``sentence`` has that the question,
    given as its casefolded words, does not; capitalised stopwords ("The") do not count.

    >>> novelty("Blink-182 is coming to a city near you.", {"which", "band", "will", "tour"}, str.split)
    0.5
    """
    found = set()
    for m in _NAME_OR_NUMBER.finditer(sentence):
        word = m.group(0).rstrip(".,")
        key = word.casefold()
        if key and key not in asked_words and (word[0].isdigit() or terms(word)):
            found.add(key)
            if len(found) == 2:
                return 1.0
    return len(found) / 2


def asks_reason_or_manner(question: str) -> bool:
    """Whether ``question`` wants a reason or a manner ("why", "how did") rather than a name or number.

    >>> asks_reason_or_manner("Why was the plant closed?"), asks_reason_or_manner("How many died?")
    (True, False)
    """
    return _REASON_OR_MANNER.search(question) is not None


def question_words(question: str) -> set[str]:
    """The question's words, casefolded, as :func:`novelty` takes them.

    >>> sorted(question_words("Which band will tour?"))
    ['band', 'tour', 'which', 'will']
    """
    return {w.casefold() for w in _WORD.findall(question)}
