"""Who said what: speaker attribution for news sentences, in pure Python and ``re``.

It runs at index time and its results are stored, so that for "What did X say about Y?" the
answerer can prefer X's own statements and never pass someone else's words off as X's.

>>> text = ('Foreign Minister Park Jin met Antony Blinken. '
...         'Minister Park said, \u201cWe agree.\u201d He added that talks went well.')
>>> [(q.speaker, q.kind) for q in extract_quotes(Article("a", "", text))]
[('Park Jin', 'direct'), ('Park Jin', 'continued')]

How a sentence gets its speaker:

1. names: every capitalised run in the article ("U.S. Secretary of State Antony Blinken") is
   collected without its titles ("Antony Blinken"). A short mention ("Secretary Blinken",
   "Powell") then resolves to the full name that ends with it, or starts with it when that name
   came with a title or looks surname-first ("Minister Park" -> "Park Jin", "Kim" -> "Kim Jong
   Un"); among several, the most mentioned, then the titled, then the latest one wins.
   A bare title ("the minister", "the Fed chair") resolves to the last person who carried it.
2. attribution: a speech verb outside quotation marks, with its subject before it ("X said",
   "X, the company's CEO, said", "an NIS official said") or after it ("..., said X",
   "according to X"). A phrase after a preposition ("deposed by the committee") is no subject.
3. context: "he"/"she" take the latest person named as a speaker or as a sentence's subject
   whose pronoun is not known to be the other one (from "Ms.", "spokesman", or an earlier
   "he"/"she"); "it"/"they" take the last speaker that is not a person. A bare quotation
   continues the statement right before it (in its paragraph, or across a paragraph break when
   both are quotations, which is how wire copy runs a quote on).

Choices:

- ``kind`` is "direct" when the sentence holds a quotation and names its speaker, "reported"
  when it names the speaker without quotation marks, and "continued" when the speaker comes
  from context (a pronoun or a bare quotation), whatever the form.
- A quotation nobody is credited with (a scare quote, a song title, a pull quote) is not
  returned, nor is a pronoun with nobody to refer to: a statement without a speaker cannot help
  to answer "what did X say", and leaving it out keeps the stored table small.
- Names lose their titles and a leading "The" ("National Intelligence Service"). Sources that
  are not names keep their own words, with a lowercase determiner ("the company",
  "an NIS official", "South Korea's spy agency"); :func:`same_person` never matches those.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

from rag.models import Article, Quote
from rag.text.sentences import split_sentences
from rag.text.words import FUNCTION_WORDS, NAME_ABBREVIATIONS, NAME_LEAD_WORDS

__all__ = ["asked_speaker", "asked_topic", "asks_what_was_said", "extract_quotes", "name_key", "person_key", "same_person"]

Kind = Literal["direct", "reported", "continued"]

# -- vocabulary ---------------------------------------------------------------------------------
# Words that stand before a name without being part of it. Country words ("Foreign", "State")
# only count when a name follows, so "Penn State" and "Stephen King" stay whole.
_TITLES = frozenset("""
president vice prime minister secretary secretary-general undersecretary chair chairman
chairwoman chairperson senator sen sens representative rep reps congressman congresswoman
governor gov lieutenant lt mayor councillor councilor councilman councilwoman councilmember
alderman judge justice chief director commissioner general gen colonel col captain capt sergeant
sgt major maj admiral adm commander cmdr ambassador envoy spokesperson spokesman spokeswoman king
queen prince princess emperor empress pope cardinal bishop archbishop father rev reverend rabbi
imam sheikh dr doctor mr mrs ms mx miss sir dame lord lady professor prof sheriff officer
detective det inspector superintendent supt deputy attorney solicitor prosecutor speaker leader
coach manager ceo cfo coo cto chancellor premier executive head founder co-founder state foreign
defense defence finance health interior treasury home trade economy education energy labor labour
agriculture transport transportation commerce national security adviser advisor press majority
minority whip former acting interim incoming outgoing then u.s. us u.k. uk un eu fed democrat
democratic republican gop independent conservative first second chairman-elect president-elect
actor actress singer rapper comedian author writer novelist artist musician analyst economist
strategist lawyer reporter journalist host anchor producer filmmaker designer chef quarterback
pitcher striker player golfer goalkeeper driver star activist researcher scientist owner investor
billionaire entrepreneur historian clerk recorder auditor treasurer assessor comptroller
administrator superintendent surgeon provost dean rector trustee regent correspondent exchequer shadow
tory lib dem
""".split())

# Party words: before a name they are a title ("Tory Dominic Grieve", "Lib Dem Norman Baker"),
# and a run made of them is a party, never a person ("the Lib Dems say", "New Labour", "Senior
# Tories"). No one's surname is one of them.
_PARTY = frozenset("""
tory tories labour conservative conservatives democrat democrats dem dems lib liberal liberals
republican republicans unionist unionists nationalist nationalists
""".split())
# Offices that are never a surname: a run that ends with one names the office, not its holder
# ("the Culture Secretary", "Scottish Finance Minister"), unlike "Mervyn King" or "Jim Press".
_OFFICES = frozenset("""
minister secretary undersecretary secretary-general president vice-president premier chancellor
spokesman spokeswoman spokesperson chairman chairwoman chairperson commissioner ambassador
correspondent exchequer
""".split())
# The same offices in the plural: a group ("MPs said", "Ministers say"), never one person.
_OFFICE_GROUPS = frozenset("""
ministers secretaries presidents spokesmen chairmen commissioners ambassadors correspondents mps
msps meps
""".split())
# Honours after a name, no part of it: "Guy Mansfield QC". ("MP" is left alone: "the Salford MP"
# is a seat.)
_POST_NOMINALS = frozenset("QC KC OBE MBE CBE".split())

# A word in a run that marks an organisation or a place: such runs are not collected as people.
_NOT_PERSON = frozenset("""
korea korean north south east west northeast northwest southeast southwest united states kingdom
republic union nations european america american americans china chinese russia russian japan
japanese ukraine ukrainian europe asia africa african pacific atlantic middle university college
school institute ministry department council committee commission service services agency
authority party bank court house senate congress parliament assembly association society
foundation center centre company corporation corp inc ltd llc group holdings news times post
journal daily street road avenue square county city province national international federal
reserve security affairs airport hospital office force forces army navy police church club team
cup league day week year motors electric airlines media network studios pictures records games
olympics olympic championship series festival award awards prize museum island islands river lake
mountain valley bay beach coast sea ocean region peninsula covid covid-19 omicron coronavirus
twitter facebook instagram youtube google apple microsoft amazon tesla state global world
organization organisation administration bureau program programme project fund board alliance
coalition federation system systems laboratory laboratories clinic archives centers institutes
""".split()) | {m for m in NAME_LEAD_WORDS if m.isalpha() and len(m) > 2 and m not in {"may", "the"}} \
    | _PARTY | _OFFICE_GROUPS

# The shared word lists (rag.text.words) as this module matches them: a regex, and a set.
_FUNC = "(?:" + "|".join(FUNCTION_WORDS) + ")"
_FUNCTION_WORDS = frozenset(FUNCTION_WORDS)

_SOURCE_NOUNS = (
    r"(?:officials|experts|analysts|researchers|scientists|police|authorities|sources|prosecutors|"
    r"investigators|lawmakers|legislators|doctors|economists|critics|officers|organi[sz]ers|"
    r"advocates|residents|witnesses|activists|observers|opponents|supporters|protesters|historians|"
    r"executives|employees|workers|parents|teachers|students|nurses|regulators|diplomats|"
    r"spokespeople|representatives|members|leaders|scholars|aides|insiders|allies|people|others|"
    r"proponents|democrats|republicans|americans|"
    r"spokesperson|spokesman|spokeswoman|official|statement|report|study|survey|data|documents|"
    r"filings|records|reports)"
)
_SOURCE_MODS = (
    r"(?:[A-Z][\w.\-\u2019']*|senior|top|health|government|administration|federal|state|local|"
    r"military|intelligence|defen[cs]e|security|election|company|school|city|county|public|"
    r"campaign|industry|party|other|some|many|several|two|three|court|law|enforcement|police|"
    r"western|foreign|u\.s\.|us|uk|eu|un)"
)

# Speech verbs. Those that are also nouns or have a non-speech sense ("adds a feature",
# "claimed the title", "false claims") only count where speech usually follows.
_SPEECH = (
    r"said|says|say|stated|added|adds(?=\s*(?:that\b|[,:\u201c\"]))|told|tells|emphasi[sz]ed|"
    r"emphasi[sz]es|stressed|stresses|expressed|expresses|warned|warns|warn|noted|"
    r"notes(?=\s+(?:that|how)\b|[,:])|argued|argues|argue|"
    r"claimed(?!\s+(?:the|a|an|his|her|their|its|\d)\b)|claims(?=\s+(?:that|to)\b|[,:])|"
    r"insisted|insists|insist|explained|explains|announced|announces|asked|asks|urged|"
    r"urges|described|describes|called(?=\s+(?:for|on|it|him|her|them|this|that|the|a|an)\b)|"
    r"calls(?=\s+(?:for|on|it|him|her|them|this|that|the|a|an)\b)|wrote|writes|tweeted|tweets|"
    r"replied|replies|responded|acknowledged|acknowledges|admitted|admits|confirmed|confirms|"
    r"denied|denies|declared|declares|remarked|commented|predicted|predicts|recalled|recalls|"
    r"cautioned|cautions|contended|contends|maintained|maintains|observed|reiterated|reiterates|"
    r"assured|promised|promises|vowed|vows|pledged|pledges|conceded|concedes|testified|disclosed|"
    r"revealed|reveals|alleges|boasted|complained|complains|lamented|countered|quipped|"
    r"joked|concluded|believes|thinks|recounted|accused|criticized|criticised|pointed\s+out|"
    r"points\s+out|went\s+on\s+to\s+say|wondered"
)
_PARTICIPLES = (
    r"saying|adding|noting|arguing|warning|stressing|insisting|explaining|telling|writing|"
    r"tweeting|urging|claiming|declaring|emphasi[sz]ing|acknowledging|calling\s+(?:for|on)"
)
_ADVERBS = (
    r"(?:also|later|then|has|have|had|previously|once|again|further|recently|repeatedly|publicly|"
    r"privately|earlier|separately|reportedly|simply|flatly|bluntly|frankly|openly|initially|first|"
    r"often|similarly|likewise|even|already|would|will|long|always|still|just|explicitly|"
    r"specifically|clearly|correctly|falsely|wrongly|since|told)"
)

_QUESTION_VERBS = (
    r"say|said|think|thought|describe|described|tell|told|warn|warned|claim|mean|meant|announce|"
    r"announced|argue|call|feel|felt|propose|react|respond|reply|write|wrote|tweet|post|state|"
    r"reveal|suggest|predict|explain|add|ask|urge|promise|pledge|vow|admit|deny|believe|comment|"
    r"insist|emphasi[sz]e|stress|express|note|characteri[sz]e|criticize|criticise|blame|accuse|"
    r"recommend|advise|testify|disclose|confirm|acknowledge|concede|reveal|predict|assess"
)
_STATEMENT_NOUNS = (
    r"message|response|reaction|warning|statement|remarks?|comments?|views?|position|stance|"
    r"argument|claim|explanation|answer|reply|assessment|prediction|promise|pledge|vow|plea|"
    r"call|demand|excuse|defen[cs]e|justification|words|take|opinion|verdict|advice|criticism"
)

# -- patterns -----------------------------------------------------------------------------------
_UP = "A-Z\u00c0-\u00d6\u00d8-\u00de" + "".join(
    chr(c) for c in range(0x100, 0x17F) if chr(c).isupper()
)
_ABBR = "(?:" + "|".join(NAME_ABBREVIATIONS) + r")\."
_TOKEN = (
    rf"(?:{_ABBR}|[{_UP}]\.(?:[{_UP}]\.)+|[{_UP}]\.(?=[ \t\u00a0]+[{_UP}])"
    rf"|[{_UP}](?:[\w\-]|&(?=[{_UP}])|[\u2019'](?=\w\w))*)"
)
_CONNECTOR = r"(?:de|da|del|della|der|den|van|von|di|du|la|le|bin|ibn|al|el|dos|das|of|for)"
_RUN = rf"{_TOKEN}(?:[ \t\u00a0]+(?:(?:{_CONNECTOR}|and|&)[ \t\u00a0]+)?{_TOKEN})*"
_W = r"[\w.\-\u2019'&]+"
_WORD = rf"(?!(?:{_FUNC}|{_ADVERBS})\b){_W}"
_DET = (
    r"(?:[Tt]he|[Aa]n?|[Oo]ne|[Aa]nother|[Tt]wo|[Tt]hree|[Ss]everal|[Ss]ome|[Mm]any|[Mm]ost"
    r"|[Oo]ther|[Hh]is|[Hh]er|[Tt]heir|[Ii]ts)"
)
_PRON = r"(?:[Hh]e|[Ss]he|[Tt]hey|[Ii]t)"
_POSSESSIVE = r"[\u2019']s?"

_SPEAKER = (
    rf"(?P<pron>{_PRON})"
    rf"|(?P<poss>{_RUN}{_POSSESSIVE}(?:\s+{_WORD}){{1,4}})"
    rf"|(?P<det>{_DET}(?:\s+{_WORD}){{1,5}}?"
    rf"(?:\s+(?:of|for|at|from|with|in)\s+(?:the\s+)?{_WORD}(?:\s+{_WORD}){{0,3}}){{0,2}})"
    rf"|(?P<source>(?:{_SOURCE_MODS}\s+){{0,3}}(?i:{_SOURCE_NOUNS}))"
    rf"|(?P<name>{_RUN}(?:\s+(?:of|with|at|from|in)\s+(?:the\s+)?{_RUN})?)"
)
# The subject right before a speech verb: "X said", "X, the CEO, said", "X (NIS) told".
_BEFORE = re.compile(
    rf"(?:^|(?<=[\s,;:(\u2014\u2013\u201c\u201d\"\u2018\x01]))(?:{_SPEAKER})"
    r"(?:\s*\([^()]{1,40}\))?"
    r"(?P<appos>(?:,\s[^,\u201c\u201d\"\x01]{1,120}){1,3},)?"
    rf"(?:,?\s+who)?\s+(?:{_ADVERBS}\s+){{0,3}}\Z"
)
_VERB = re.compile(
    rf"\b(?:{_SPEECH})\b|\b(?P<acc>[Aa]ccording to)\b|,\s+(?P<part>{_PARTICIPLES})\b"
)
_PHRASE_AFTER = re.compile(rf"\s+({_W}(?:[ \t\u00a0]+{_W}){{0,9}})")
_IRREGULAR = (
    r"told|wrote|took|made|spoke|met|held|gave|went|came|sent|left|said|did|had|was|is|has|put|"
    r"set|hit|cut|led|won|lost|became|began|brought|got|kept|ran|saw|stood|struck|threw|fought|"
    r"sought|thought|felt|found|will|would|can|could|may|might|must|should"
)
# A sentence's grammatical subject, for "X criticised the plan, saying ...".
_SUBJECT = re.compile(
    rf"(?:[{_UP}][^,\x01]{{0,60}},\s+)?(?:{_SPEAKER})(?:\s*\([^()]{{1,40}}\))?"
    r"(?P<appos>(?:,\s[^,\u201c\u201d\"\x01]{1,80}){1,3},)?"
    rf"\s+(?:{_ADVERBS}\s+){{0,3}}(?!(?i:{_SOURCE_NOUNS})\b)(?:[a-z]+(?:ed|s)|{_IRREGULAR})\b"
)
_RUN_RE = re.compile(_RUN)
_LONG_RUN = re.compile(rf"{_TOKEN}(?:[ \t\u00a0]+(?:(?:{_CONNECTOR}|and|&)[ \t\u00a0]+)?{_TOKEN})+")
_NAME_AT_START = re.compile(rf"[^\w\x01\"\u201c]*(?:[{_UP}][^,\x01]{{0,40}},\s+)?({_RUN})\s+[a-z]")
# "Lib Dem leader Charles Kennedy repeated ...": a name after a party or body and a role.
# After "said": a capitalised team or firm, one or two lower-case role words, then a name.
_HELD_ROLE = re.compile(rf"(?:[A-Z][\w'\u2019.&-]*\s+){{1,3}}((?:[a-z][\w-]*\s+){{1,2}})({_RUN})")
_ROLE_NAME = re.compile(rf"\s+((?:[a-z][\w\-]*\s+){{1,3}})({_RUN})\s+[a-z]")
_LINE = re.compile(r"[^\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]+")
_QUOTE_MARK = re.compile("[\u201c\u201d\"\u2018\u2019']")
_OPENS_WITH_QUOTE = re.compile("[\\s\u2014\u2013-]*[\u201c\u201d\"\u2018']")

_ASK_VERB = re.compile(
    r"(?i:\b(?:did|does|do|has|have|had)\s+)(?P<who>[^?,]{1,80}?)\s+(?:(?:just|recently|publicly|"
    r"reportedly|previously|first|also|officially|actually|really|once|ever|have|had|been)\s+)*"
    rf"(?:{_QUESTION_VERBS})\b"
)
_ASK_NOUN = re.compile(
    r"\b(?:what|how)\s+(?:was|were|is|are|has been|have been)\s+(?:the\s+)?(?P<who>[^?,]{1,80}?)"
    rf"{_POSSESSIVE}\s+(?:\w+\s+){{0,2}}(?:{_STATEMENT_NOUNS})\b",
    re.I,
)
_ASK_ACCORDING = re.compile(r"\baccording to\s+(?P<who>[^?,]{1,80}?)\s*(?:,|\?|$)", re.I)
# The topic of "What did X say about Y?": "about" (or "regarding", "concerning") anywhere after
# the verb, else "on", "of" or "over" right after it ("What does X think of Y?").
_ASK_ABOUT = re.compile(
    rf"^\W*(?:what|how)\b.{{0,120}}?\b(?:{_QUESTION_VERBS})\b.*?\b(?:about|regarding|concerning)\s+"
    r"(?P<topic>[^?]*?\w[^?]*?)[\s?.!]*$", re.I | re.S)
_ASK_ON = re.compile(
    rf"^\W*(?:what|how)\b.{{0,120}}?\b(?:{_QUESTION_VERBS})\s+(?:on|of|over)\s+"
    r"(?P<topic>[^?]*?\w[^?]*?)[\s?.!]*$", re.I | re.S)

_QUOTE_CLOSERS = "\u201d\"\u2019'"
_CLAUSE_BREAKS = ",;:(\u2014\u2013" + _QUOTE_CLOSERS
_LAST_WORD = re.compile(r"[\w\-\u2019']+$")
_PREPOSITIONS = frozenset(
    "by to with for of from at in on about against into onto over under toward towards than like "
    "between among including via per upon within without behind".split()
)
_PRONOUN_LEADS = frozenset(
    "and but then so now yet also later instead still today yesterday".split()
)


# -- public API ---------------------------------------------------------------------------------
def extract_quotes(article: Article) -> list[Quote]:
    """Every sentence of ``article.text`` that carries a statement, with its speaker.

    Spans come from :func:`rag.text.sentences.split_sentences`, so ``article.text[q.start:q.end]
    == q.text`` always.

    >>> text = '\u201cWe are not done,\u201d said Chair Jerome Powell. Rates rose.'
    >>> [(q.speaker, q.kind, q.text) for q in extract_quotes(Article("a", "", text))]
    [('Jerome Powell', 'direct', '\u201cWe are not done,\u201d said Chair Jerome Powell.')]
    """
    text = article.text
    names = _Names(text)
    context = _Context(names)
    quotes: list[Quote] = []
    previous: tuple[str, bool, bool] | None = None  # (speaker, had a quotation, ended a paragraph)
    for line in _LINE.finditer(text):
        line_start, line_end = line.span()
        regions = _quotations(text, line_start, line_end)
        masked = _mask(text, line_start, line_end, regions)
        spans = split_sentences(text, line_start, line_end)
        for n, (start, end) in enumerate(spans):
            sentence = masked[start - line_start:end - line_start]
            quoted = any(a < end and (b is None or b > start) for a, b in regions)
            found = _attribute(sentence, start, names, context)
            speaker: str | None = None
            kind: Kind | None = None
            if found is not None:
                speaker, from_context = found
                if speaker is not None:
                    kind = "continued" if from_context else ("direct" if quoted else "reported")
            elif previous is not None and _is_bare_quotation(sentence, start, regions):
                said_by, had_quote, ended_paragraph = previous
                if not ended_paragraph or (n == 0 and had_quote):
                    speaker, kind = said_by, "continued"
            if speaker is not None and kind is not None:
                quotes.append(Quote(article.id, start, end, text[start:end], speaker, kind))
                previous = (speaker, quoted, n == len(spans) - 1)
            else:
                previous = None
                context.subject(sentence, start, names)
    return quotes


def asked_speaker(question: str) -> str | None:
    """The person (or named body) whose statement ``question`` asks about, else None.

    >>> asked_speaker("What did Blinken say about China?")
    'Blinken'
    >>> asked_speaker("What does Secretary Antony Blinken think of the deal?")
    'Antony Blinken'
    >>> asked_speaker("What did the Fed chair warn about?") is None
    True
    >>> asked_speaker("Which new treat did McDonald's add to its menu?") is None
    True
    """
    for pattern in (_ASK_VERB, _ASK_NOUN, _ASK_ACCORDING):
        m = pattern.search(question)
        if m:
            if pattern is _ASK_VERB and re.search(_POSSESSIVE + r"$", m.group("who").strip()):
                continue  # "did McDonald's add": a firm named in the possessive, not a speaker
            return _proper_name(m.group("who"), lowercase_ok=question == question.lower())
    return None


def asks_what_was_said(question: str) -> bool:
    """Whether ``question`` asks what someone said ("What did X say?", "What was X's response?"),
    rather than asking a question on someone's authority ("According to X, how many ...?").

    >>> asks_what_was_said("What did Blinken say about China?")
    True
    >>> asks_what_was_said("According to the BBC, how many staff will walk out?")
    False
    """
    return _ASK_VERB.search(question) is not None or _ASK_NOUN.search(question) is not None


def asked_topic(question: str) -> str | None:
    """What a "What did X say about Y?" question asks X's words to be about (Y), else None.

    >>> asked_topic("What did Blinken say about China's role?")
    "China's role"
    >>> asked_topic("What does Secretary Blinken think of the deal?"), asked_topic("What did Blinken say?")
    ('the deal', None)
    """
    for pattern in (_ASK_ABOUT, _ASK_ON):
        m = pattern.match(question)
        if m:
            return m.group("topic").strip()
    return None


def same_person(asked: str, speaker: str | None) -> bool:
    """Whether ``speaker`` (as stored) is the person ``asked`` names.

    Token-based and case-insensitive, titles ignored; one name must be the start or the end of
    the other, so a surname alone matches and two different people never do. Sources that are
    not names ("an NIS official", "Blinken's spokesman") match nobody.

    >>> same_person("Blinken", "Antony Blinken"), same_person("Park", "Park Jin")
    (True, True)
    >>> same_person("Park Jin", "Antony Blinken"), same_person("Blinken", "Blinken's spokesman")
    (False, False)
    """
    if not speaker or any(
        t[:1].islower() and t not in _JOINERS for t in speaker.split()
    ) or re.search(_POSSESSIVE + r"(?:\s|$)", speaker):
        return False
    a, b = _name_key(asked), _name_key(speaker)
    if not a or not b:
        return False
    short, long_ = (a, b) if len(a) <= len(b) else (b, a)
    k = len(short)
    return long_[:k] == short or long_[-k:] == short


def person_key(speaker: str | None) -> tuple[str, ...]:
    """The comparable form of a stored speaker who is a person: casefolded, accents, titles,
    initials and punctuation dropped; ``()`` for a source that is no person ("an NIS official",
    "the company", "National Intelligence Service", "NASA"). Equal keys name the same person.

    >>> person_key("Mr. Tony Blair"), person_key("José Pérez"), person_key("Joe R. Biden")
    (('tony', 'blair'), ('jose', 'perez'), ('joe', 'biden'))
    >>> person_key("an NIS official"), person_key("National Intelligence Service"), person_key("Lib Dems")
    ((), (), ())
    """
    if not speaker or not same_person(speaker, speaker):
        return ()
    words = speaker.split()
    while len(words) > 1 and _is_title(words[0]):
        words.pop(0)  # "Tory Dominic Grieve", as indexes built before party words were titles hold it
    if any(_norm(t) in _NOT_PERSON or (len(t) > 1 and t.isupper() and t.isalpha()) for t in words) \
            or _norm(words[-1]) in _OFFICES:
        return ()
    return name_key(speaker)


def name_key(name: str) -> tuple[str, ...]:
    """The comparable words of any name, as :func:`same_person` compares them.

    >>> name_key("Secretary Antony J. Blinken"), name_key("pérez")
    (('antony', 'blinken'), ('perez',))
    """
    return tuple(_name_key(name))


# -- names ----------------------------------------------------------------------------------------
_CONNECTORS = frozenset(re.findall(r"\w+", _CONNECTOR))
_JOINERS = _CONNECTORS | {"and", "&"}  # inside an organisation's name
_TIME_WORDS = frozenset(
    "monday tuesday wednesday thursday friday saturday sunday today yesterday tonight tomorrow "
    "morning afternoon evening night week weekend month year earlier later last".split()
)


def _norm(token: str) -> str:
    return token.rstrip(".,").lower()


def _is_title(token: str) -> bool:
    t = _norm(token)
    return t in _TITLES or ("-" in t and all(p in _TITLES for p in t.split("-")))


def _split_run(run: str) -> tuple[list[str], list[str]]:
    """A capitalised run as (titles, name): "Foreign Minister Park Jin" -> (titles, [Park, Jin])."""
    tokens = run.split()
    while tokens and (_norm(tokens[0]) in NAME_LEAD_WORDS or tokens[0] in _CONNECTORS):
        tokens.pop(0)
    while tokens and (_norm(tokens[-1]) in _TIME_WORDS or tokens[-1] in _JOINERS
                      or (len(tokens) > 1 and tokens[-1] in _POST_NOMINALS)):
        tokens.pop()
    cut = -1
    for i, token in enumerate(tokens[:-1]):
        if _is_title(token) or (len(token) > 1 and token.isupper() and token.isalpha()) \
                or (re.search(_POSSESSIVE + "$", token) and len(tokens) - i > 2):
            cut = i  # "Minister Park Jin", "Tesla TSLA Dan Ives", "Politico’s Jack Shafer"
    if all(_is_title(t) for t in tokens) or (tokens and _norm(tokens[-1]) in _OFFICES):
        return tokens, []  # "Minister", "the Culture Secretary": an office, whoever holds it
    name = tokens[cut + 1:]
    if name and name[0] in ("of", "for") and len(name) > 3:
        name = name[-2:]  # "Director of National Intelligence Avril Haines"
    if cut >= 0 and any(_norm(t) in _NOT_PERSON for t in name):
        return [], tokens  # "General Motors", "State Department"
    while name and name[0] in _CONNECTORS:
        name.pop(0)
    for i, token in enumerate(name):
        if token in ("of", "for") and not any(_norm(t) in _NOT_PERSON for t in name[:i]):
            name = name[:i]  # "Ted O’Meara of Frenchman’s Bay United", not "Bank of America"
            break
    return tokens[:cut + 1], name


_GENDERED = {
    **dict.fromkeys("mr sir king prince lord father chairman spokesman congressman councilman "
                    "actor pope rabbi".split(), "he"),
    **dict.fromkeys("mrs ms miss dame queen princess lady chairwoman spokeswoman congresswoman "
                    "councilwoman actress".split(), "she"),
}


def _looks_like_person(name: list[str]) -> bool:
    return (
        2 <= len(name) <= 4
        and not any(_norm(t) in _NOT_PERSON for t in name)
        and not any(len(t) > 1 and t.isupper() and "." not in t for t in name)
        and all(t[:1].isupper() or t in _CONNECTORS for t in name)
        and not any(t in ("and", "&") or "&" in t for t in name)
    )


class _Names:
    """The people an article names, for turning short mentions into full names."""

    def __init__(self, text: str) -> None:
        self.by_edge: dict[str, list[tuple[int, tuple[str, ...]]]] = {}
        self.by_title: dict[str, list[tuple[int, list[str]]]] = {}
        self.people: set[tuple[str, ...]] = set()
        self.pronouns: dict[str, str] = {}  # surname -> "he" / "she"
        self.titled_people: set[tuple[str, ...]] = set()
        for m in _LONG_RUN.finditer(text):  # a lone word is neither a full name nor titled
            titles, name = _split_run(m.group())
            if not name:
                continue
            if _looks_like_person(name):
                full = tuple(name)
                self.people.add(full)
                if titles:
                    self.titled_people.add(full)
                self.by_edge.setdefault(full[-1], []).append((m.start(), full))
                if full[0] != full[-1] and (titles or len(full) > 2 or "-" in full[-1]):
                    # A name cited by its first token ("Minister Park" for "Park Jin", "Kim"
                    # for "Kim Jong Un") must look like one, or "Ford" becomes "Ford Mustangs".
                    self.by_edge.setdefault(full[0], []).append((m.start(), full))
            for title in titles:
                t = _norm(title)
                if t not in NAME_LEAD_WORDS:
                    self.by_title.setdefault(t, []).append((m.start(), name))
                if t in _GENDERED:
                    self.pronouns[name[-1]] = _GENDERED[t]

    def resolve(self, name: list[str], at: int) -> str:
        """The full name that ``name`` is short for, or ``name`` itself.

        Of the names that start or end with it: the one mentioned most, then one introduced
        with a title ("Biden" is "President Joe Biden" rather than Jill Biden, named once
        each), then the latest before ``at``.
        """
        key = tuple(name)
        k = len(key)
        seen: dict[tuple[str, ...], set[int]] = {}
        for edge in {key[0], key[-1]}:
            for pos, full in self.by_edge.get(edge, ()):
                if len(full) > k and (full[:k] == key or full[-k:] == key):
                    seen.setdefault(full, set()).add(pos)
        if not seen:
            return " ".join(name)

        def rank(full: tuple[str, ...]) -> tuple[int, bool, int, int]:
            positions = seen[full]
            before = [p for p in positions if p <= at]
            recency = (1, max(before)) if before else (0, -min(positions))
            return (len(positions), full in self.titled_people, *recency)

        return " ".join(max(seen, key=rank))

    def titled(self, title: str, at: int) -> str | None:
        """The last person before ``at`` introduced with ``title`` ("the minister")."""
        earlier = [name for pos, name in self.by_title.get(title, []) if pos < at]
        return self.resolve(earlier[-1], at) if earlier else None


class _Context:
    """Who "he", "she", "it" and "they" can refer to, as the article goes on.

    "he" and "she" take the most recent person not already known as the other one: a person's
    pronoun is learnt from a title ("Ms.", "spokeswoman") or from the last time it resolved.
    """

    def __init__(self, names: _Names) -> None:
        self.people: list[str] = []  # most recent last
        self.source: str | None = None
        self.pronouns = dict(names.pronouns)

    def said(self, speaker: str, is_person: bool) -> None:
        if is_person:
            self._mention(speaker)
        else:
            self.source = speaker

    def pronoun(self, word: str) -> str | None:
        word = word.lower()
        if word not in ("he", "she"):
            return self.source
        for person in reversed(self.people[-4:]):
            known = self.pronouns.get(person.split()[-1])
            if known in (None, word):
                self.pronouns[person.split()[-1]] = word
                self._mention(person)
                return person
        return None

    def subject(self, sentence: str, start: int, names: _Names) -> None:
        """Note a person who opens a sentence, as "He said ..." may follow."""
        m = _NAME_AT_START.match(sentence)
        if m:
            at = m.start(1)
            _, name = _split_run(m.group(1))
            lead = any(_norm(t) not in NAME_LEAD_WORDS for t in m.group(1).split())
            if lead and (not name or _norm(name[-1]) in _NOT_PERSON):
                role = _ROLE_NAME.match(sentence, m.end(1))
                if role and not any(w in _FUNCTION_WORDS for w in role.group(1).split()):
                    at = role.start(2)
                    _, name = _split_run(role.group(2))
            if name:
                full = names.resolve(name, start + at)
                if tuple(full.split()) in names.people:
                    self._mention(full)

    def _mention(self, person: str) -> None:
        if person in self.people:
            self.people.remove(person)
        self.people.append(person)


# -- attribution ----------------------------------------------------------------------------------
def _attribute(sentence: str, start: int, names: _Names, context: _Context
               ) -> tuple[str | None, bool] | None:
    """(speaker, from_context) for the first speech verb with a subject, or None."""
    participle: int | None = None
    for m in _VERB.finditer(sentence):
        if m.group("part"):
            participle = participle if participle is not None else m.start()
            continue
        if m.group("acc"):
            found = _phrase_after(sentence, m.end(), start, names, context)
        else:
            found = _speaker_before(sentence, m.start(), start, names, context)
            if found is None and _inverted(sentence, m.start()):
                found = _phrase_after(sentence, m.end(), start, names, context)
        if found is not None:
            return found
    if participle is not None:
        s = _SUBJECT.match(sentence, 0, participle)
        if s:
            return _resolve_match(s, start, names, context)
    return None


def _inverted(sentence: str, verb_start: int) -> bool:
    before = sentence[:verb_start].rstrip()
    return not before or before[-1] in ",\u2014\u2013" + _QUOTE_CLOSERS


def _speaker_before(sentence: str, verb_start: int, start: int, names: _Names,
                    context: _Context) -> tuple[str | None, bool] | None:
    window_start = max(0, verb_start - 200)
    window = sentence[window_start:verb_start]
    pos = 0
    while (m := _BEFORE.search(window, pos)) is not None:
        if not _is_subject(sentence[:window_start + m.start()], bool(m.group("pron"))):
            return None
        found = _resolve_match(m, start + window_start, names, context)
        if found is not None:
            return found
        pos = m.start() + 1  # "For his part, Dr. Jay Portnoy, ..., says": "For" names nobody
    return None


def _is_subject(before: str, pronoun: bool) -> bool:
    """Whether a phrase after ``before`` can be a speaker, not the object of a preposition.

    "deposed by the committee told" and "a call in which he asked" do not name who spoke.
    """
    stripped = before.rstrip()
    if not stripped or stripped[-1] in _CLAUSE_BREAKS or stripped != before and stripped[-1] == ")":
        return True
    last = _LAST_WORD.search(stripped)
    word = last.group().lower() if last else ""
    if word in _PREPOSITIONS:
        return False
    if not pronoun:
        return True
    return word in _PRONOUN_LEADS or last is not None and last.start() == 0


def _resolve_match(m: re.Match[str], offset: int, names: _Names, context: _Context
                   ) -> tuple[str | None, bool] | None:
    if m.group("pron"):
        return context.pronoun(m.group("pron")), True
    group = next(g for g in ("poss", "det", "source", "name") if m.group(g))
    at = offset + m.start(group)
    speaker, is_person = _classify(m.group(group), group, at, names)
    appos = m.group("appos")
    if appos and (not is_person or _bare_office(m.group(group))):
        # "Carragher's attorney, Donald Temple, said": the apposition names the speaker; so it
        # does after an office ("The Higher Education Minister, Kim Howells, said"), whoever
        # held that office earlier in the article. An apposition's seat letters are no part of
        # the name ("Scottish Finance Minister, Tom McCabe MSP, said").
        inner = re.sub(r"\s+(?:MP|MSP|MEP|MLA)$", "", appos.strip(", "))
        if _RUN_RE.fullmatch(inner):
            named, person = _classify(inner, "name", at, names)
            if person:
                speaker, is_person = named, True
    if speaker is None:
        return None
    context.said(speaker, is_person)
    return speaker, False


def _bare_office(phrase: str) -> bool:
    """Whether ``phrase`` names an office and nobody in it: "The Culture Secretary", "Minister"."""
    tokens = [t for t in phrase.split() if t.lower() not in _DETERMINERS]
    return bool(tokens) and all(t[:1].isupper() for t in tokens) and not _split_run(" ".join(tokens))[1]


def _phrase_after(sentence: str, verb_end: int, start: int, names: _Names, context: _Context
                  ) -> tuple[str | None, bool] | None:
    """The speaker named after the verb: "..., said Defense Minister Lee", "according to X"."""
    m = _PHRASE_AFTER.match(sentence, verb_end)
    if not m:
        return None
    words = m.group(1).split()
    first = words[0].rstrip(".,;:!?)")
    if re.fullmatch(_PRON, first):
        return context.pronoun(first), True
    # After "according to" only a noun phrase can follow; after "said" a name may be followed
    # by the verb of the next clause.
    tokens = _noun_phrase(words, strict=sentence[verb_end - 2:verb_end] != "to")
    if not tokens:
        return None
    group = "name" if all(t[:1].isupper() or t in _JOINERS for t in tokens) else "det"
    held = _HELD_ROLE.match(sentence, m.start(1))
    if held and not any(w in _FUNCTION_WORDS or w in _TIME_WORDS for w in held.group(1).split()):
        # "said Wales physio Mark Davies": a team or firm, a role, then who holds it.
        run, at = held.group(2), held.start(2)
        _, name = _split_run(run)
        if len(name) >= 2:
            speaker, is_person = _classify(" ".join(name), "name", start + at, names)
            if speaker is not None and is_person:
                context.said(speaker, is_person)
                return speaker, False
    speaker, is_person = _classify(" ".join(tokens), group, start + m.start(1), names)
    if speaker is not None and not is_person:
        # "said his longtime office manager, Amy Hunt."
        comma = sentence.find(",", verb_end, m.end(1) + 1)
        named = _APPOSITION_NAME.match(sentence, comma) if comma >= 0 else None
        if named:
            person, is_person = _classify(named.group(1), "name", start + named.start(1), names)
            speaker = person if is_person else speaker
    if speaker is None:
        return None
    context.said(speaker, is_person)
    return speaker, False


def _noun_phrase(words: list[str], strict: bool) -> list[str]:
    """The noun phrase that opens ``words``, up to a verb, a clause word or punctuation."""
    tokens: list[str] = []
    for i, raw in enumerate(words):
        word = raw.rstrip(".,;:!?)")
        low = word.lower()
        if not tokens:
            if (low in _FUNCTION_WORDS and low not in _DETERMINERS) or low in _TIME_WORDS \
                    or re.match(_PRON + "[\u2019']", word):
                return []  # "said Tuesday that", "says he's glad"
        elif _ends_phrase(word, tokens[-1], words[i + 1] if i + 1 < len(words) else "", strict):
            break
        tokens.append(word)
        if word != raw and not _DOTTED_ABBR.fullmatch(raw):
            break  # "said Hicks, who ..."
    while tokens and tokens[-1].lower() in _FUNCTION_WORDS:
        tokens.pop()
    return tokens


def _ends_phrase(word: str, last: str, following: str, strict: bool) -> bool:
    """Whether ``word`` no longer belongs to the noun phrase that ended with ``last``."""
    low = word.lower()
    after_name = last[:1].isupper() and not re.search(_POSSESSIVE + "$", last)
    if low in _TIME_WORDS:
        return True
    if low in ("and", "&"):
        return not (after_name and following[:1].isupper())  # "Food and Drug Administration"
    if low == "of":
        if _norm(last) in _OFFICES and following == "the":
            return False  # "Chancellor of the Exchequer Gordon Brown"
        # "Jepsen of the Xerces Society", "Alex McLeish of Novo's punishment"
        named = _norm(last) not in _NOT_PERSON and not _is_title(last)
        return after_name and (following[:1].islower()
                               or named and re.search(_POSSESSIVE + "$", following) is not None)
    if low in ("for", "from", "by"):
        return after_name  # "a spokesperson for the ministry", "a survey by ECA"
    if low in _FUNCTION_WORDS:
        return low not in _DETERMINERS
    if not word.islower():
        return False
    if low.endswith("ed") and last.lower() not in _DETERMINERS:
        return True  # "a survey by ECA International published on ...", not "a retired nurse"
    # After a name only a role goes on ("GM spokesman Jim Cain", "CNN meteorologists"), not
    # a verb ("said Kern attended ...", "says Democrats share the blame"); after a title the
    # role may go on ("said Tory shadow local government secretary Caroline Spelman").
    return strict and after_name and not _is_title(last) and not _is_title(word) \
        and low not in _SOURCE_WORDS and _ROLE.fullmatch(low) is None


def _name_tail(tokens: list[str]) -> int:
    """Where the capitalised run that ends ``tokens`` starts (``len(tokens)`` if there is none)."""
    j = len(tokens)
    while j > 0:
        token = tokens[j - 1]
        if re.search(_POSSESSIVE + "$", token) or not (
            token[:1].isupper() or (token in _JOINERS and j < len(tokens))
        ):
            break
        j -= 1
    return j


def _titled_person(tokens: list[str]) -> bool:
    """Whether ``tokens`` are titles, then a full name: "Exchequer Gordon Brown"."""
    titles, name = _split_run(" ".join(tokens))
    return bool(titles) and _looks_like_person(name)


def _classify(phrase: str, group: str, at: int, names: _Names) -> tuple[str | None, bool]:
    """(speaker, is_person) for a subject phrase found next to a speech verb."""
    phrase = " ".join(phrase.split())
    if group == "name":
        head = re.split(r"\s+(?:with|at|from|in)\s+(?:the\s+)?|\s+of\s+the\s+", phrase)[0]
        titles, name = _split_run(head)
        office = re.fullmatch(r"(.+?)\s+of\s+the\s+(.+)", phrase)
        if not name and office and _titled_person(office.group(2).split()):
            # "Chancellor of the Exchequer Gordon Brown": the office, then its holder.
            head = office.group(2)
            titles, name = _split_run(head)
        if not name:
            title = next((_norm(t) for t in reversed(titles) if _norm(t) not in NAME_LEAD_WORDS), None)
            found = names.titled(title, at) if title else None
            return (found, True) if found else (None, False)
        full = names.resolve(name, at)
        person = not any(_norm(t) in _NOT_PERSON or (len(t) > 1 and t.isupper() and t.isalpha())
                         for t in full.split())
        if head != phrase and not person:
            return phrase if not phrase.lower().startswith("the ") else phrase[4:], False
        return full, person
    tokens = phrase.split()
    # "the Fed chair Jerome Powell", "GM spokesman Jim Cain": a name closes the phrase.
    j = _name_tail(tokens)
    tail = tokens[j:] if group != "source" else []
    before = tokens[j - 1] if j > 0 else ""
    if tail and (j == 0 or before.lower() == "the" and j == 1
                 or (before.lower() not in _FUNCTION_WORDS and before.islower())
                 or (before.lower() == "the" and _titled_person(tail))):
        # ... or a titled name after "of the": "UK Chancellor of the Exchequer Gordon Brown".
        return _classify(" ".join(tail), "name", at, names)
    if tail and re.search(_POSSESSIVE + "$", before):
        named, person = _classify(" ".join(tail), "name", at, names)
        if person and named is not None and " " in named:
            return named, True  # "the Fed's Jerome Powell", not "the League's Center"
    if tokens[0].lower() == "the" and 2 <= len(tokens) <= 4 and not re.search(
        _POSSESSIVE + r"(?:\s|$)", phrase
    ):
        title = _norm(tokens[-1])
        if title in _TITLES:
            found = names.titled(title, at)
            if found:
                return found, True
    if tokens[0].lower() in _DETERMINERS or tokens[0][:1].isupper() and \
            tokens[0].lower() in _SOURCE_WORDS - {"democrats", "republicans", "americans"}:
        tokens[0] = tokens[0].lower()
    return " ".join(tokens), False


_SOURCE_WORDS = frozenset(re.findall(r"[a-z]+", _SOURCE_NOUNS))
_DOTTED_ABBR = re.compile(rf"{_ABBR}|(?:[{_UP}]\.)+")
_APPOSITION_NAME = re.compile(rf",\s+({_RUN})\s*(?:[.,;]|$)")
_ROLE = re.compile(r"[\w\-]+(?:ist|er|or|ian|man|woman|person|people|aide|ant|ent)s?")
_DETERMINERS = frozenset(
    "the a an one another two three several some many most other his her their its".split()
)


# -- quotations -----------------------------------------------------------------------------------
def _quotations(text: str, start: int, end: int) -> list[tuple[int, int | None]]:
    """(open, close) positions of the quotations in one line; close is None if it runs on."""
    regions: list[tuple[int, int | None]] = []
    double: int | None = None
    single: int | None = None
    for m in _QUOTE_MARK.finditer(text, start, end):
        i = m.start()
        mark = text[i]
        prev = text[i - 1] if i > start else " "
        nxt = text[i + 1] if i + 1 < end else " "
        if mark in "\u201c\u201d\"":
            if double is None:
                if mark != "\u201d" or (prev.isspace() and not nxt.isspace()):
                    double, single = i, None
            elif mark != "\u201c":
                regions.append((double, i))
                double = None
        elif double is not None:
            continue  # single quotes inside a double quotation change nothing
        elif prev.isalnum() and nxt.isalnum():
            continue  # an apostrophe: Korea’s, don't
        elif mark == "\u2018" or (mark == "'" and not prev.isalnum() and not nxt.isspace()):
            if single is None:
                single = i
        elif single is not None and not nxt.isalnum():
            regions.append((single, i))
            single = None
    if double is not None:
        regions.append((double, None))
    return regions


def _mask(text: str, start: int, end: int, regions: list[tuple[int, int | None]]) -> str:
    """The line with every quotation's words blanked out, offsets unchanged."""
    parts = []
    cursor = start
    for a, b in regions:
        b = end if b is None else b
        parts.append(text[cursor:a + 1])
        parts.append("\x01" * (b - a - 1))
        cursor = b
    parts.append(text[cursor:end])
    return "".join(parts)


def _is_bare_quotation(sentence: str, start: int, regions: list[tuple[int, int | None]]) -> bool:
    """Whether the sentence is a quotation alone: it opens with a quote mark or inside one."""
    if _OPENS_WITH_QUOTE.match(sentence):
        return True
    return any(a < start and (b is None or b > start) for a, b in regions)


# -- questions ------------------------------------------------------------------------------------
def _proper_name(phrase: str, lowercase_ok: bool) -> str | None:
    """The name that ends ``phrase``, titles stripped; None when it ends with a common noun."""
    phrase = re.sub(_POSSESSIVE + r"$", "", phrase.strip())
    tokens = phrase.split()
    if not tokens:
        return None
    if lowercase_ok:
        if tokens[0] in _FUNCTION_WORDS or len(tokens) > 3 or any(t in _FUNCTION_WORDS for t in tokens):
            return None
        if re.fullmatch(_SOURCE_NOUNS, tokens[-1]) or tokens[-1] in _TITLES:
            return None
        return " ".join(t for t in tokens if not _is_title(t)) or None
    j = _name_tail(tokens)
    if j == len(tokens):
        return None
    _, name = _split_run(" ".join(tokens[j:]))
    return " ".join(name) or None


def _name_key(name: str) -> list[str]:
    """Comparable tokens of a name: folded, without leading titles, initials or punctuation."""
    folded = unicodedata.normalize("NFKD", name.casefold())
    folded = "".join(c for c in folded if not unicodedata.combining(c)).replace("\u2019", "'")
    tokens = [t.strip(".,'") for t in folded.split()]
    tokens = [t for t in tokens if len(t) > 1 and t not in _JOINERS and t not in ("the", "a", "an")]
    while len(tokens) > 1 and _is_title(tokens[0]):
        tokens.pop(0)  # "Secretary Blinken", but "Stephen King" keeps "King"
    return tokens
