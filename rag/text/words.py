"""The word lists of every stage, and the word normaliser the answerers compare text with.

Every list is plain words, each with a note on what it is for:

- stop words: :data:`STOP_WORDS` (the few dropped before any comparison), :data:`FUNCTION_WORDS`
  (where a speaker's description stops), :data:`NAME_LEAD_WORDS` and :data:`SENTENCE_OPENERS`
  (capitalised words that are no name);
- question words: :data:`ASKING_WORDS`, and what each answerer builds from them:
  :data:`QUESTION_WORDS` (the extractive answerer) and :data:`CLAIMLESS_WORDS` (the verifier);
- abbreviations: :data:`ABBREVIATIONS` (the sentence splitter), :data:`HEADLINE_ABBREVIATIONS`
  (titles made from a lead sentence) and :data:`NAME_ABBREVIATIONS` (titles inside a name).

The answerers compare stems, so a list is stemmed once, with :func:`stems`, where it is loaded:

>>> content_words("Based on the passages, Powell recently said rates will rise.")
['base', 'passag', 'powel', 'recent', 'said', 'rate', 'rise']
>>> sorted(stems({"passage", "recently", "articles"}))
['articl', 'passag', 'recent']

The keyword index has its own tokenizer (:func:`rag.index.keyword.terms`), frozen with the
index's format. ``content_words`` gives the same tokens today; it is a separate function so
that the answerers can change how they compare words without invalidating built indexes.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Iterable

__all__ = [
    "ABBREVIATIONS",
    "ASKING_WORDS",
    "CLAIMLESS_WORDS",
    "FUNCTION_WORDS",
    "HEADLINE_ABBREVIATIONS",
    "NAME_ABBREVIATIONS",
    "NAME_LEAD_WORDS",
    "QUESTION_WORDS",
    "SENTENCE_OPENERS",
    "STOP_WORDS",
    "content_words",
    "stem",
    "stems",
]

# -- stop words ---------------------------------------------------------------------------------
# Dropped from text before the answerers compare it. The keyword index drops the same words
# (bm25s's English list, which is Lucene's), so the answerers' words and the index's agree; it is
# so short that "what" and "about" stay, which is why the answerers keep lists of their own below.
STOP_WORDS = frozenset("""
a an and are as at be but by for if in into is it no not of on or such that the their then
there these they this to was will with
""".split())

# Words that hold a clause together: pronouns, auxiliaries, conjunctions, prepositions and verbs
# of saying. Quote attribution reads a speaker's description up to the first of them ("a senior
# official who ...", "the company said"). A tuple: quotes.py makes a regex of it, in this order.
FUNCTION_WORDS: tuple[str, ...] = tuple("""
that which who whom whose he she they it we i you and or but nor was were is are be been being
has have had do does did not no when while if as than then there this these those to in on at by
with after before since because also will would can could should may might must its his her
their our my your a an the said says say told tells according about over into during where what
why how so last saying of for from via amid among against
""".split())

# Capitalised words that can open a run of capitalised words without being part of a name
# ("Meanwhile Powell said", "Monday Biden met", "Read More"): quote attribution strips them
# from a run's start, and a run holding one of the longer ones is no person.
NAME_LEAD_WORDS = frozenset("""
the a an in on at but and or so as if when while after before since until during despite although
though because for from with without by to of that this these those then now still yet also
meanwhile however moreover earlier later last next yesterday today tonight tomorrow asked speaking
according here there it he she they we i you his her their our my your its some many most other
another several one two both all each every no not what which who why how where mr. ms. mrs.
monday tuesday wednesday thursday friday saturday sunday january february march april may june
july august september october november december jan feb mar apr jun jul aug sep sept oct nov dec
read watch photo photos video image getty related more like follow sign click see listen
subscribe advertisement skip whether unless whereas once perhaps maybe even only just unlike under
over among through across about above below between beyond against toward within upon including
following amid thanks given instead rather indeed thus hence therefore besides otherwise overall
currently recently finally first second third plus any such much few either neither nor whose
whom whoever whatever wherever dear hey hello yes oh please thank let let's don't do does did
is are was were has have had will would can could should must ever never always
citing responding referring addressing testifying appearing others
""".split())

# Words that, capitalised at the start of an answer's sentence, name nobody: the verifier does
# not ask the passages to back them as names ("However, ..."). Every one is in NAME_LEAD_WORDS,
# but the verifier keeps its shorter list: each word added exempts a sentence-opening word
# ("May", "Monday", "Read") from the name check, which changes verdicts it was calibrated on.
SENTENCE_OPENERS = frozenset("""
the a an this that these those it its he she they we i you his her their there here in on at
for from by with after before during as while when if but and or so yet however according
yes no not
""".split())

# -- question words -----------------------------------------------------------------------------
# Words that shape a question about the news but name nothing in it: wh-words, auxiliaries,
# verbs of saying, "according to", "news", "recent". Both answerers drop them.
# "why" and "does" are missing on purpose: the lists these came from held unstemmed words, so
# their stems ("whi", "doe") never matched, and the answerer and verifier were calibrated with
# them counted as words of the topic (BENCHMARKS.md). Adding them changes answers.
ASKING_WORDS = frozenset("""
what which who whom whose when where how did do is are was were has have had say said says tell
told according this that these those news report reported recent recently
""".split())

# The words of a question that say nothing about its topic, for the extractive answerer: also
# its framing in opinion and time ("What do experts think ...", "this week", "the latest",
# "new"), which in an answer's sentence can be the very claim, so the verifier keeps them.
QUESTION_WORDS = ASKING_WORDS | frozenset("think thought week weeks latest new".split())

# Words of an answer's sentence that claim nothing, for the verifier: the question's words,
# pronouns, auxiliaries, modal verbs, and a model's talk of its sources ("Based on the passage,
# the article mentions ..."). "sai" is no word: it is kept because the verifier was calibrated
# with it, so "Sai" (as in Sai Kung) is not checked as a name.
CLAIMLESS_WORDS = ASKING_WORDS | frozenset("""
be been being also would could can will may might must shall not no yes there here it its they
them their he she his her we our you your one passage answer question based article mention sai
""".split())

# -- abbreviations ------------------------------------------------------------------------------
# The sentence splitter's: a full stop after one of these does not end a sentence. Compared
# case-sensitively, so "no." and "co." still end one; a lowercase entry also matches
# capitalised, as when it opens a sentence ("Vs.", "Etc."), except "al", so "Al." stays a name.
_SPLITTER_ABBREVIATIONS = """
Mr Mrs Ms Dr Prof Sen Rep Gov Gen Lt Col Capt Sgt Maj Adm Rev St Mt Ft Jr Sr Inc Corp Co Ltd Bros
No Nos vs etc approx est Jan Feb Mar Apr Jun Jul Aug Sep Sept Oct Nov Dec Ave Blvd Dept Univ Pres
Supt Cmdr Fig al
""".split()
ABBREVIATIONS = frozenset(
    _SPLITTER_ABBREVIATIONS + [w.capitalize() for w in _SPLITTER_ABBREVIATIONS if w.islower() and w != "al"]
)

# Where the first sentence of an article's lead ends, when a title is made from it; compared
# casefolded. Shorter than ABBREVIATIONS, which holds all of these: titles are made at ingest
# and stored, and widening the list would retitle articles read again from the same files.
HEADLINE_ABBREVIATIONS = frozenset("""
mr mrs ms dr st jr sr gen col sen rep gov lt sgt capt prof inc co corp ltd no vs jan feb mar apr
aug sept sep oct nov dec
""".split())

# Abbreviated titles and suffixes that belong to a name ("Sen. Warren", "Martin Luther King
# Jr."): quote attribution reads "X." as a word of the name, never as a sentence's end. A tuple:
# quotes.py makes a regex of it, in this order.
NAME_ABBREVIATIONS: tuple[str, ...] = tuple("""
Mr Mrs Ms Mx Dr Sen Sens Rep Reps Gov Gen Lt Col Capt Sgt Maj Adm Cmdr Prof Rev Supt Det Jr Sr St
""".split())


# -- normalising --------------------------------------------------------------------------------
# What a word is, as scikit-learn's CountVectorizer (and so bm25s) has it: two word characters
# or more, so "I" and "a" are never words.
_WORD = re.compile(r"(?u)\b\w\w+\b")


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


def stem(word: str) -> str:
    """The Snowball (Porter2) English stem of a lowercase word.

    >>> stem("passages"), stem("recently"), stem("news")
    ('passag', 'recent', 'news')
    """
    return _stemmer().stemWord(word)


def stems(words: Iterable[str]) -> frozenset[str]:
    """The stems of a word list, to compare :func:`content_words` with.

    >>> sorted(stems(["says", "said", "saying"]))
    ['said', 'say']
    """
    return frozenset(_stemmer().stemWords(list(words)))


def content_words(text: str) -> list[str]:
    """The words of ``text`` as the answerers compare them: lowercased, stop words out, stemmed.

    >>> content_words("What did Blinken say about China's policies?")
    ['what', 'did', 'blinken', 'say', 'about', 'china', 'polici']
    """
    words = [w for w in _WORD.findall(text.lower()) if w not in STOP_WORDS]
    return _stemmer().stemWords(words) if words else []
