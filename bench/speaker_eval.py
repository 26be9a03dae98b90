"""Who said what: "What did <speaker> say about <article title>?" over all of BBC News.

Measures, through the library (``Pipeline(Settings(index_dir=...)).ask(question)``), how well
"What did X say about Y?" is answered on a corpus where X is quoted in several articles:

- recall: the answer cites one of X's own sentences in the named article, i.e. a citation of
  that article whose span overlaps a sentence of it that names X as its speaker (``recall``);
  ``recall_sampled`` counts only the one sentence the question was made from;
- precision: no cited sentence is attributed to someone other than X. Judged by hand on every
  sentence cited in an answer to a positive question (each read with the sentence before it;
  ``--sentences N`` labels a seeded sample instead; the labels and the rule are in
  bench/results/speaker_eval_labels.json), and by an automatic proxy over the same answers:
  cited sentences whose stored speaker (``citation.speaker``, the library's own attribution)
  is someone else;
- negatives: X (quoted elsewhere in the corpus) asked about an article that never mentions
  X; the right answer is a "no statement" abstention (``abstained``);
- latency: ``Pipeline.ask`` per question, p50/p95 (what ``rag ask`` runs, model load excluded;
  the machine is shared, so the load is recorded).

The questions are made from the dataset alone, independently of the library's attribution:
a sentence counts as X's when X is named as its speaker in the sentence itself, by one of
four patterns (``"...," said Mr X`` or ``..., said Mr X`` / ``"...," Mr X said`` /
``[role] X [, apposition,] said ...`` at the start of the sentence / ``according to X``) and
no one else is named before a speech verb in it; X is a person (an honorific, a first name
seen elsewhere with an honorific surname, or a full name whose surname the article uses
alone) resolved to a full name within the article, and X is so quoted in 2+ distinct stories
(near-identical copies of an article count once). Sentence boundaries
come from ``rag.text.sentences`` so that spans are comparable with the citations'. BBC News
has no dates, so every question is asked as of 2005-12-31 and a title whose words name a
period (which would leave every undated article out) is not used.

The questions are split by the person asked about into a calibration half (63 positives, 19
negatives, 46 people) and a report half (57, 21, 47), by the parity of the SHA-256 of the folded
full name (``split_of``), so nobody is asked about in both. ``calibrate`` fits each lever's
constants on the calibration half only (maximising recall + the "no statement" rate there; ties
go to the smallest threshold, then the smallest weight) and gives every lever's figures on both
halves; ``run`` reports all questions and each half (``summary_by_split``), ``report`` the
hand-labelled precision likewise. The report half is the held-out figure; a figure over all
questions includes the calibration data.

Commands (from the repository root; the index is built once, again whenever quote extraction
changes):

    .venv/bin/rag reindex ../shared/datasets/bbc-news/articles.jsonl.gz --index bench-out/bbc/index --full --quiet
    .venv/bin/python bench/speaker_eval.py questions             # -> bench/results/speaker_eval_questions.json
    # baseline: the library as of commit 01f7c12 (before the speaker index), from a snapshot
    mkdir -p bench-out/baseline-src && git archive 01f7c12 rag | tar -x -C bench-out/baseline-src
    echo 01f7c12 > bench-out/baseline-src/COMMIT
    .venv/bin/python bench/speaker_eval.py run --index bench-out/bbc/index \\
        --code bench-out/baseline-src --name speaker_eval-baseline
    .venv/bin/python bench/speaker_eval.py calibrate       # -> bench/results/speaker_calibration.json
    .venv/bin/python bench/speaker_eval.py run --index bench-out/bbc/index --name speaker_eval
    .venv/bin/python bench/speaker_eval.py run --name speaker_eval-whatif-0.30 --abstain-below 0.30
    .venv/bin/python bench/speaker_eval.py diagnose --name speaker_eval   # why positives were missed
    .venv/bin/python bench/speaker_eval.py sheet --name speaker_eval-baseline   # what to label
    # label by hand in bench/results/speaker_eval_labels.json, then:
    .venv/bin/python bench/speaker_eval.py report --name speaker_eval-baseline

Options: questions [--positives 120] [--negatives 40] [--seed 0] [--per-speaker 2];
run [--limit N] [--k 8] [--code DIR] [--abstain-below T] (a what-if: the answerer's abstention
threshold moved) [--ranker learned|fusion] (default: the library's); sheet/report
[--sentences N] [--seed 1] (label the answers, in a seeded order, until they hold N cited
sentences; default 0: every answer to a positive question); calibrate [--index DIR] [--k 8]
[--ranker learned|fusion] [--name speaker_calibration].
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import random
import re
import sys
import time
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BBC, RESULTS, ROOT, environment, finish, log, summary_ms  # noqa: E402

QUESTIONS = RESULTS / "speaker_eval_questions.json"
LABELS = RESULTS / "speaker_eval_labels.json"
AS_OF = "2005-12-31"
TARGETS = {"recall": 0.85, "precision": 0.98, "ask_p50_ms": 150.0}

# -- who is named as a sentence's speaker (independent of rag.text.quotes) ----------------------
HONORIFICS = {"Mr", "Mrs", "Ms", "Miss", "Dr", "Sir", "Lord", "Lady", "Dame", "Baroness",
              "Professor", "Prof"}
# Capitalised words that stand before a name without being part of it.
ROLES = set("""
President Prime Minister Chancellor Secretary Judge Chief Executive General Senator Governor
Coach Captain Foreign Home Deputy Commissioner Chairman Chairwoman Director Inspector Detective
Bishop Archbishop Pope King Queen Prince Princess Labour Tory Tories Conservative Liberal Democrat
Lib Dem MP MEP Shadow Culture Health Education Trade Industry Transport Defence Environment Work
Pensions Sport Sports Leader Boss Manager Vice Attorney Solicitor Justice Speaker Commons Lords
Mayor Ambassador Spokesman Spokeswoman Chief Constable Superintendent Assistant Acting Former
Senior Economic Finance Treasury Business Northern Irish Scottish Welsh Green Party UK US EU UN
Minster Constitutional Affairs Office Gen Col Capt Sgt Insp Det Supt Rev Father Brother Sister
Arsenal Chelsea Liverpool Everton England Wales Scotland Ireland France Italy Spain Germany
""".split())
# Words that mark an organisation or a place, never a person.
NOT_PERSON = set("""
United City Street Bank Mail Life Party Fein Office Group Association Council Rovers Athletic
Villa Wanderers Albion Town County Inc Corp Plc Ltd Airways Airlines Motors Telecom Entertainment
Records Union Commission Court Department Ministry Federation Conservatives Democrats News Post
Times Journal Express Mirror Reuters Institute Organisation Organization Agency Authority Service
Services Board Trust Fund Society Foundation Club Council Centre Center College University School
Police Army Navy Force Unit Industries International Holdings Capital Securities Partners Research
Energy Oil Gas Motor Music Pictures Studios Games Software Microsoft Google Apple Sony Nintendo
Yukos Gazprom Downing Whitehall Westminster Parliament Commons Government Cabinet Treasury Home
BBC ITV Sky Channel Radio Television TV Online Network Networks Europe European America American
Britain British English Scottish Welsh Irish French German Italian Spanish Russian Chinese Japanese
Indian Australian Brussels London Paris Washington Moscow Beijing Tokyo January February March
April May June July August September October November December Monday Tuesday Wednesday
Thursday Friday Saturday Sunday The This That These It He She They We I Mrs Survey Report Figures
Olympic Olympics Cup League Premiership Championship Open Games Festival Awards Oscar Oscars
Grammy Brit Brits Academy Exchange Market Markets Stock Index Nasdaq Dow Jones Ftse Footsie
""".split()) - HONORIFICS
# Verbs with a non-speech sense ("added the trophy to", "maintained its lead") count only where
# speech follows.
SPEECH_NEXT = r"(?=\s*(?:that\b|[,:\"\u201c]|$))"
VERB = (rf"(?:said|says|told|tells|(?:added|adds|maintained|declared|predicted){SPEECH_NEXT}|warned|"
        r"insisted|argued|explained|stressed|admitted|conceded|urged|commented|replied|acknowledged)")
ADVERB = r"(?:also|later|then|has|had|have|previously|earlier|recently|repeatedly|further)"
TOKEN = r"(?:Mc|Mac|O')?[A-Z\u00c0-\u00de][a-z\u00df-\u00ff'\-]*[a-z\u00df-\u00ff]"
RUN = rf"{TOKEN}(?:\s+{TOKEN}){{0,4}}"
# Lowercase role words (and up to two capitalised ones before them) between a quote or the
# start of a sentence and the name: "Arsenal boss", "Liberal Democrat leader", "analyst".
# Clause words and past tenses end such a prefix ("Mr Peston's book claimed that Mr Brown told").
# Nor may it end in a preposition: "a spokesman for Mr Prescott warned" is not Mr Prescott.
ROLE_WORD = (r"(?!(?:that|which|who|whom|and|but|as|when|after|because|if|while|comes|says|for|of|"
             r"to|by|with|from|at|in|on|about|against|like|than|behind|close)\b)(?![a-z]+ed\b)[a-z][a-z\-]*")
PREFIX = rf"(?:(?:{TOKEN}(?:'s)?\s+){{0,2}}(?:{ROLE_WORD}\s+){{1,4}})?"
QUOTE_END = "[\"\u201d]"
AFTER_NAME = r"(?=\s*(?:[,.;:]|$|\s+(?:of|at|from|in|on|who|to)\b))"
LEAD = (r"(?:(?:But|And|However|Yet|Meanwhile|Now|Earlier|Later|Instead|Today|Speaking[^,\"\u201c]{0,80}"
        r"|In [^,\"\u201c]{1,60}|On [^,\"\u201c]{1,40}),?\s+)?")
PATTERNS = {
    # "...," said Mr Maran.  /  "...," said analyst Erling Refsum at Nomura.  /  ..., said Mr Burke.
    "said X": re.compile(rf"(?:{QUOTE_END},?|,)\s+{VERB}\s+{PREFIX}(?P<run>{RUN}){AFTER_NAME}"),
    # According to Exhibitor Relations President Paul Dergarabedian, the average ...
    "according to X": re.compile(rf"\b[Aa]ccording to\s+{PREFIX}(?P<run>{RUN}){AFTER_NAME}"),
    # "...," Mr Blair said.  /  "...," Arsenal boss Arsene Wenger told BBC Sport.
    "X said": re.compile(rf"{QUOTE_END},?\s+{PREFIX}(?P<run>{RUN})\s+(?:{ADVERB}\s+){{0,2}}{VERB}\b"),
    # Mr Blair said ...  /  Tory leader Michael Howard, speaking in Leeds, said: "..."
    "start": re.compile(rf"^[\"\u201c]?{LEAD}{PREFIX}(?P<run>{RUN})(?:\s*\([^()]{{1,40}}\))?"
                        rf"(?:,\s[^,\"\u201c\u201d]{{1,80}},)?\s+(?:{ADVERB}\s+){{0,2}}{VERB}\b"),
}
ANY_SPEAKER = re.compile(rf"(?P<run>{RUN})\s+(?:{ADVERB}\s+){{0,2}}{VERB}\b")
NAME_RUN = re.compile(rf"(?<![\w'])(?:(?:{'|'.join(sorted(HONORIFICS))})\s+)?{TOKEN}(?:\s+{TOKEN}){{1,2}}(?![\w'])")


def fold(name: str) -> str:
    text = unicodedata.normalize("NFKD", name.casefold())
    return "".join(c for c in text if not unicodedata.combining(c))


def split_run(run: str) -> tuple[str | None, list[str]]:
    """(honorific, name tokens) of a capitalised run: roles before the name are dropped."""
    tokens = run.split()
    honorific = None
    for i, t in enumerate(tokens):
        if t in HONORIFICS:
            honorific, tokens = t, tokens[i + 1:]
    roles = [i for i, t in enumerate(tokens[:-1]) if t in ROLES or re.search(r"['\u2019]s?$", t)]
    if roles:  # "Exhibitor Relations President Paul Dergarabedian", "Labour's Paul Flynn"
        tokens = tokens[roles[-1] + 1:]
    return honorific, tokens


@dataclass
class Attributed:
    """A sentence of an article that names its speaker."""

    article: str
    start: int
    end: int
    text: str
    form: str  # the speaker as the sentence names them: "Mr Blair", "Arsene Wenger", "Wenger"
    person: str  # the full name it resolves to in the article: "Tony Blair"
    pattern: str


def article_names(text: str) -> tuple[dict[str, set[str]], set[str], set[str]]:
    """Full names (surname -> {"First Last"}), honorific surnames, and surnames used alone."""
    full: dict[str, set[str]] = defaultdict(set)
    titled: set[str] = set()
    for m in NAME_RUN.finditer(text):
        honorific, tokens = split_run(m.group(0))
        if honorific and tokens:
            titled.add(tokens[-1])
        if len(tokens) >= 2 and not any(t in NOT_PERSON or t in HONORIFICS for t in tokens):
            full[tokens[-1]].add(f"{tokens[0]} {tokens[-1]}")
    for m in re.finditer(rf"\b(?:{'|'.join(sorted(HONORIFICS))})\s+({TOKEN})", text):
        titled.add(m.group(1))
    alone = set()
    for surname, fulls in full.items():
        firsts = {f.split()[0] for f in fulls}
        for m in re.finditer(rf"(?<![\w'])(\w+)\s+{re.escape(surname)}\b|^{re.escape(surname)}\b", text, re.MULTILINE):
            if not m.groups() or m.group(1) is None or (m.group(1) not in firsts and m.group(1) not in HONORIFICS):
                alone.add(surname)
                break
    return full, titled, alone


def attributed_sentences(article_id: str, text: str, first_names: set[str]) -> list[Attributed]:
    """The sentences of ``text`` whose speaker is named in them, by the patterns above."""
    from rag.text.sentences import split_sentences

    full, titled, alone = article_names(text)
    found = []
    for start, end in split_sentences(text, 0, len(text)):
        sentence = text[start:end]
        if len(sentence.split()) < 6:
            continue
        hits = []
        for name, pattern in PATTERNS.items():
            for m in pattern.finditer(sentence):
                hits.append((name, m.group("run")))
        people = set()
        best = None
        for name, run in hits:
            honorific, tokens = split_run(run)
            if not tokens or len(tokens) > 3 or any(t in NOT_PERSON or t in ROLES for t in tokens):
                continue
            surname = tokens[-1]
            if len(tokens) >= 2:
                person = f"{tokens[0]} {surname}"
            else:
                options = full.get(surname, set())
                if len(options) == 1:
                    person = next(iter(options))
                elif not options and honorific in ("Lord", "Lady", "Baroness"):
                    person = f"{honorific} {surname}"  # peers are named by title alone
                else:
                    continue
            first = person.split()[0]
            is_person = bool(honorific) or surname in titled or first in first_names \
                or (surname in alone and len(full.get(surname, ())) == 1)
            if not is_person:
                continue
            form = " ".join(([honorific] if honorific else []) + tokens)
            people.add(fold(person))
            best = best or (form, person, name)
        # Anyone else named right before a speech verb anywhere in the sentence ("Mr Blair has
        # insisted ... while Mr Brown says ...") makes it no clean example either.
        for m in ANY_SPEAKER.finditer(sentence):
            _, tokens = split_run(m.group("run"))
            if tokens and best and not any(fold(tokens[-1]) == w for w in fold(best[1]).split()):
                people.add(fold(tokens[-1]))
        if best and len(people) == 1:  # two different speakers named: not a clean example
            found.append(Attributed(article_id, start, end, sentence, *best))
    return found


def merged_spans(rows: list[dict[str, Any]]) -> dict[str, int]:
    """A rough count of the spans ``rag.text.sentences`` leaves holding three or more sentences
    (two or more "end mark, space, capital" inside): BBC copy runs a quotation over several
    paragraphs, opening each with a quote mark and closing only the last."""
    from rag.text.sentences import split_sentences

    inner = re.compile("[.!?][\"\u201d]?\\s+[\"\u201c]?[A-Z]")
    spans, articles = 0, 0
    for r in rows:
        text = r["text"]
        n = sum(len(inner.findall(text[a:b])) >= 2 for a, b in split_sentences(text, 0, len(text)))
        spans += n
        articles += n > 0
    return {"spans": spans, "articles": articles, "of_articles": len(rows)}


def learn_first_names(articles: list[dict[str, Any]]) -> set[str]:
    """First names: X in "X Surname" where the same article also says "Mr/Ms/... Surname"."""
    names: set[str] = set()
    for a in articles:
        full, titled, _ = article_names(a["text"])
        for surname, fulls in full.items():
            if surname in titled:
                names.update(f.split()[0] for f in fulls)
    return names - NOT_PERSON - ROLES


# -- questions ----------------------------------------------------------------------------------
def read_bbc(path: Path) -> list[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def make_questions(args: argparse.Namespace) -> None:
    from rag.search.asof import as_of_filter
    from rag.search.retrieve import SearchFilter

    rows = read_bbc(BBC)
    # The reader stores exact duplicates once (the first copy): ask about that one.
    first_by_text: dict[str, dict[str, Any]] = {}
    for r in rows:
        first_by_text.setdefault(r["text"].strip(), r)
    articles = list(first_by_text.values())
    first_names = learn_first_names(articles)
    by_person: dict[str, list[Attributed]] = defaultdict(list)
    names: dict[str, Counter[str]] = defaultdict(Counter)
    merged = merged_spans(rows)
    for a in articles:
        for s in attributed_sentences(a["id"], a["text"], first_names):
            by_person[fold(s.person)].append(s)
            names[fold(s.person)][s.person] += 1
    titles = {a["id"]: a["title"] for a in articles}
    text_of = {a["id"]: a["text"] for a in articles}
    category = {a["id"]: a.get("category") for a in articles}
    words = {a["id"]: set(re.findall(r"\w+", a["text"].casefold())) for a in articles}

    def stories(ids: set[str]) -> list[list[str]]:
        """Articles grouped into stories: near-identical copies (the same story re-filed under
        another title, word Jaccard >= 0.6) are one."""
        groups: list[list[str]] = []
        for i in sorted(ids):
            for g in groups:
                w = words[g[0]]
                if len(w & words[i]) / len(w | words[i]) >= 0.6:
                    g.append(i)
                    break
            else:
                groups.append([i])
        return groups

    quoted_in = {p: stories({s.article for s in ss}) for p, ss in by_person.items()}
    speakers = sorted(p for p, ts in quoted_in.items() if len(ts) >= 2)
    log(f"{len(articles)} distinct articles, {len(first_names)} first names learnt, "
        f"{sum(len(v) for v in by_person.values())} attributed sentences, "
        f"{len(by_person)} speakers, {len(speakers)} quoted in 2+ articles")

    def period_free(question: str) -> bool:
        flt, _ = as_of_filter(question, _date(AS_OF), SearchFilter())
        return flt.undated

    rng = random.Random(args.seed)
    candidates = []  # (person, article, sentences)
    for p in speakers:
        per_article: dict[str, list[Attributed]] = defaultdict(list)
        for s in by_person[p]:
            per_article[s.article].append(s)
        for story in quoted_in[p]:
            candidates.append((p, story[0], per_article[story[0]]))
    rng.shuffle(candidates)
    used: Counter[str] = Counter()
    asked_articles: set[str] = set()
    positives, dropped_period = [], 0
    for p, art, ss in candidates:
        if len(positives) >= args.positives:
            break
        if used[p] >= args.per_speaker or art in asked_articles:
            continue
        chosen = rng.choice(ss)
        q = f"What did {chosen.form} say about {titles[art].strip()}?"
        if not period_free(q):
            dropped_period += 1
            continue
        used[p] += 1
        asked_articles.add(art)
        positives.append({
            "id": f"pos-{len(positives) + 1:03d}", "kind": "positive", "question": q,
            "speaker": chosen.form, "person": names[p].most_common(1)[0][0], "article_id": art,
            "title": titles[art].strip(), "category": category[art],
            "sentence": {"start": chosen.start, "end": chosen.end, "text": chosen.text,
                         "pattern": chosen.pattern},
            "expected": [{"start": s.start, "end": s.end, "text": s.text, "pattern": s.pattern}
                         for s in ss],
            "speaker_articles": len(quoted_in[p]),
        })
    stop = set("a an the of to in on for at by with from and or but is are was were be has have "
               "had it its as over after into up out new says say said".split())

    def content(title: str) -> set[str]:
        return {w for w in re.findall(r"\w+", title.casefold()) if w not in stop and len(w) > 2}

    df: Counter[str] = Counter(w for a in articles for w in words[a["id"]])

    def mentions(surname: str) -> list[str]:
        return [i for i in article_ids if re.search(rf"\b{re.escape(surname)}\b", text_of[i])]

    # Negatives: a speaker of the positives, asked about an article that never names them,
    # half from the same category as one they are quoted in (harder), half from another one.
    negatives = []
    pool = sorted({q["person"] for q in positives})
    rng.shuffle(pool)
    article_ids = sorted(text_of)
    for i, person in enumerate(pool):
        if len(negatives) >= args.negatives:
            break
        p = fold(person)
        surname = person.split()[-1]
        cats = {category[s.article] for s in by_person[p]}
        forms = sorted({s.form for s in by_person[p]})
        same = i % 2 == 0
        for _ in range(200):
            art = rng.choice(article_ids)
            if (category[art] in cats) != same or art in asked_articles:
                continue
            if re.search(rf"\b{re.escape(surname)}\b", text_of[art] + " " + titles[art]):
                continue
            # Nor may the story be told elsewhere with X in it (another article that names X
            # and shares the title's words or most of the text).
            # The title's distinctive words (in under 2% of articles) must not occur in any
            # article that names X: "Tories plan migrant health checks" is no negative for
            # David Davis, who speaks on migration elsewhere.
            topic = {w for w in content(titles[art]) if df[w] < 0.02 * len(articles)}
            if not topic or any(topic & words[o] or
                                len(words[o] & words[art]) / len(words[o] | words[art]) >= 0.35
                                for o in mentions(surname)):
                continue
            form = rng.choice(forms)
            q = f"What did {form} say about {titles[art].strip()}?"
            if not period_free(q):
                continue
            asked_articles.add(art)
            negatives.append({
                "id": f"neg-{len(negatives) + 1:03d}", "kind": "negative", "question": q,
                "speaker": form, "person": person, "article_id": art, "title": titles[art].strip(),
                "category": category[art], "same_category": same,
                "speaker_articles": len(quoted_in[p]),
            })
            break
    out = {
        "about": "What did <speaker> say about <article title>? over BBC News (bench/speaker_eval.py)",
        "seed": args.seed, "as_of": AS_OF, "dataset": "bbc-news/articles.jsonl.gz",
        "counts": {"articles": len(articles), "attributed_sentences": sum(len(v) for v in by_person.values()),
                   "speakers": len(by_person), "speakers_in_2plus_articles": len(speakers),
                   "positives": len(positives), "negatives": len(negatives),
                   "distinct_speakers_asked": len({q["person"] for q in positives}),
                   "left_out_for_naming_a_period": dropped_period,
                   "sentence_spans_holding_3plus_sentences": merged},
        "patterns": {k: v.pattern for k, v in PATTERNS.items()},
        "questions": positives + negatives,
    }
    QUESTIONS.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    log(f"wrote {QUESTIONS.relative_to(ROOT)}: {out['counts']}")


# -- asking -------------------------------------------------------------------------------------
def overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def norm(text: str) -> str:
    return " ".join(re.findall(r"\w+", unicodedata.normalize("NFKC", text).casefold()))


# -- the calibration split ----------------------------------------------------------------------
SPLITS = ("calibration", "report")


def split_of(person: str) -> str:
    """The half a question belongs to, by the person it asks about, so that nobody is asked about
    in both: the parity of the SHA-256 of the folded full name (fixed before anything was fitted).

    >>> split_of("Tony Blair") in SPLITS
    True
    """
    return SPLITS[int(hashlib.sha256(fold(person).encode()).hexdigest(), 16) % 2]


def judge(q: dict[str, Any], answer: Any) -> dict[str, Any]:
    """What an answer to question ``q`` scores: abstained, and for a positive whether it cites
    one of X's own sentences in the named article (``hit``), as ``run`` records it."""
    cites = [{"n": c.n, "article_id": c.article_id, "start": c.start, "end": c.end,
              "quote": c.quote, "speaker": c.speaker} for c in answer.citations]
    out: dict[str, Any] = {"abstained": answer.abstained, "citations": cites}
    if q["kind"] == "positive":
        spans = [(e["start"], e["end"]) for e in q["expected"]]
        texts = {norm(e["text"]) for e in q["expected"]}
        own = [c for c in cites if c["article_id"] == q["article_id"]]
        out["hit"] = any(overlaps((c["start"], c["end"]), sp) for c in own for sp in spans)
        out["hit_sampled"] = any(overlaps((c["start"], c["end"]), (q["sentence"]["start"], q["sentence"]["end"]))
                                 for c in own)
        # The same sentence cited in a near-identical copy of the article.
        out["hit_any_copy"] = out["hit"] or any(norm(c["quote"]) in texts for c in cites)
        out["cites_named_article"] = bool(own)
    return out


def run(args: argparse.Namespace) -> None:
    if args.code:
        sys.path.insert(0, str(Path(args.code).resolve()))
    import rag
    from rag import Pipeline, Settings
    from rag.text.quotes import same_person

    log(f"library: {rag.__file__}")
    data = json.loads(QUESTIONS.read_text(encoding="utf-8"))
    questions = data["questions"][: args.limit] if args.limit else data["questions"]
    env = environment()
    pipeline = Pipeline(_settings(Settings, args))
    if args.abstain_below is not None:  # a what-if: the answerer's abstention threshold moved
        from dataclasses import replace

        answerer = pipeline.answerer()
        answerer.settings = replace(answerer.settings, abstain_below=args.abstain_below)
    for q in questions[:2]:  # load the model, the index and the scorer; not timed
        pipeline.ask(q["question"], k=args.k, as_of=AS_OF)
    records = []
    for i, q in enumerate(questions, 1):
        t = time.perf_counter()
        answer = pipeline.ask(q["question"], k=args.k, as_of=AS_OF)
        seconds = time.perf_counter() - t
        judged = judge(q, answer)
        cites = judged.pop("citations")
        for c in cites:
            other = c["speaker"] is not None and not (
                same_person(q["person"], c["speaker"]) or same_person(q["speaker"], c["speaker"]))
            c["stored_speaker_is_other"] = other
            c["stored_speaker_is_asked"] = c["speaker"] is not None and not other
        rec: dict[str, Any] = {
            "id": q["id"], "kind": q["kind"], "split": split_of(q["person"]), "question": q["question"],
            "person": q["person"], "article_id": q["article_id"], "answer": answer.text,
            "citations": cites, "ms": round(seconds * 1000, 1),
            "retrieved_named_article": any(h.article.id == q["article_id"] for h in answer.passages),
            **judged,
        }
        if hasattr(answer, "speakers"):
            rec["speakers"] = [{"id": s.id, "name": s.name, "quotes": s.quotes} for s in answer.speakers]
        records.append(rec)
        if i % 20 == 0:
            log(f"{i}/{len(questions)} asked")
    result = {
        "about": "bench/speaker_eval.py run: What did <speaker> say about <title>? over BBC News",
        "command": " ".join(sys.argv),
        "library": rag.__file__, "code": args.code or "working tree",
        # The snapshot's commit, when it records one (echo <commit> > DIR/COMMIT).
        "code_commit": (Path(args.code) / "COMMIT").read_text().strip()
        if args.code and (Path(args.code) / "COMMIT").exists() else env["git_commit"],
        "index": args.index,
        "k": args.k, "as_of": AS_OF, "abstain_below": args.abstain_below,
        "ranker": getattr(pipeline.settings, "ranker", None), "environment": env,
        "summary": summarise(records),
        # The halves of bench/speaker_eval.py calibrate: constants are fitted on "calibration";
        # "report" is the held-out figure, "summary" (all questions) includes calibration data.
        "summary_by_split": {name: summarise([r for r in records if r["split"] == name]) for name in SPLITS},
        "records": records,
    }
    old = RESULTS / f"{args.name}.json"
    if old.exists():  # keep the labelled sample the report added to an earlier run
        result["labelled"] = json.loads(old.read_text(encoding="utf-8")).get("labelled")
        # (a diagnosis is of one run's answers: run ``diagnose`` again after a run)
    finish(args.name, result)
    print(json.dumps(result["summary"], indent=1))


def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    pos = [r for r in records if r["kind"] == "positive"]
    neg = [r for r in records if r["kind"] == "negative"]
    answered = [r for r in pos if not r["abstained"]]
    cites = [c for r in answered for c in r["citations"]]
    neg_answered = [r for r in neg if not r["abstained"]]

    def share(n: int, d: int) -> float | None:
        return round(n / d, 3) if d else None

    return {
        "positives": len(pos), "negatives": len(neg),
        "recall": share(sum(r["hit"] for r in pos), len(pos)),
        "recall_sampled": share(sum(r["hit_sampled"] for r in pos), len(pos)),
        "recall_any_copy": share(sum(r["hit_any_copy"] for r in pos), len(pos)),
        "cites_named_article": share(sum(r["cites_named_article"] for r in pos), len(pos)),
        "retrieved_named_article": share(sum(r["retrieved_named_article"] for r in pos), len(pos)),
        "positives_abstained": share(sum(r["abstained"] for r in pos), len(pos)),
        "proxy": {
            "cited_sentences": len(cites),
            "stored_speaker_other": sum(c["stored_speaker_is_other"] for c in cites),
            "stored_speaker_asked": sum(c["stored_speaker_is_asked"] for c in cites),
            "stored_speaker_none": sum(c["speaker"] is None for c in cites),
            "precision_sentences": share(sum(not c["stored_speaker_is_other"] for c in cites), len(cites)),
            "precision_answers": share(sum(not any(c["stored_speaker_is_other"] for c in r["citations"])
                                           for r in answered), len(answered)),
        },
        "negatives_no_statement": share(sum(r["abstained"] for r in neg), len(neg)),
        "negatives_answered_citing_asked": sum(any(c["stored_speaker_is_asked"] for c in r["citations"])
                                               for r in neg_answered),
        "latency_ms": {"all": summary_ms([r["ms"] / 1000 for r in records]),
                       "positives": summary_ms([r["ms"] / 1000 for r in pos]),
                       "negatives": summary_ms([r["ms"] / 1000 for r in neg])},
    }


# -- labelling ----------------------------------------------------------------------------------
LABEL_RULE = (
    "Each cited sentence is read with the sentence before it, and labelled by who the sentence "
    "itself presents as the speaker of its words: 'asked' = explicitly the asked person (named, "
    "or 'he'/'she' or a run-on quotation whose speaker, from the sentence before, is the asked "
    "person); 'other' = explicitly someone else (another named person, an organisation, 'a "
    "spokesman', 'analysts', or a pronoun/run-on quotation that refers to someone else); 'none' "
    "= the reporter's narration, attributed to nobody (a sentence that only mentions the asked "
    "person is 'none'); 'unclear' = cannot tell from the two sentences. Precision counts 'other' "
    "as a wrong attribution; everything else as not wrong."
)


def label_key(person: str, c: dict[str, Any]) -> str:
    return f"{person}|{c['article_id']}|{c['start']}-{c['end']}"


def sample(records: list[dict[str, Any]], min_sentences: int, seed: int) -> list[dict[str, Any]]:
    """Answers to positive questions, in a seeded order, until they hold ``min_sentences``
    citations (0: all of them)."""
    answered = [r for r in records if r["kind"] == "positive" and not r["abstained"]]
    random.Random(seed).shuffle(answered)
    if min_sentences <= 0:
        return answered
    chosen, n = [], 0
    for r in answered:
        if n >= min_sentences:
            break
        chosen.append(r)
        n += len(r["citations"])
    return chosen


def sheet(args: argparse.Namespace) -> None:
    from rag.text.sentences import split_sentences

    result = json.loads((RESULTS / f"{args.name}.json").read_text(encoding="utf-8"))
    labels = json.loads(LABELS.read_text(encoding="utf-8"))["labels"] if LABELS.exists() else {}
    texts = {a["id"]: a["text"] for a in read_bbc(BBC)}
    todo = []
    for r in sample(result["records"], args.sentences, args.seed):
        for c in r["citations"]:
            key = label_key(r["person"], c)
            if key in labels:
                continue
            text = texts[c["article_id"]]
            assert text[c["start"]:c["end"]] == c["quote"], key
            before = [text[a:b] for a, b in split_sentences(text, 0, c["start"])][-1:]
            todo.append({"key": key, "asked": r["person"], "question": r["question"],
                         "before": before[0] if before else "", "sentence": c["quote"],
                         "stored_speaker": c["speaker"]})
    out = ROOT / "bench-out" / f"{args.name}-to-label.json"
    out.write_text(json.dumps(todo, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    log(f"{len(todo)} sentences to label: {out.relative_to(ROOT)}")


def report(args: argparse.Namespace) -> None:
    path = RESULTS / f"{args.name}.json"
    result = json.loads(path.read_text(encoding="utf-8"))
    labels = json.loads(LABELS.read_text(encoding="utf-8"))["labels"]
    answers = sample(result["records"], args.sentences, args.seed)
    result["labelled"] = {"rule": LABEL_RULE, "seed": args.seed, **labelled(answers, labels)}
    if all("split" in r for r in answers):
        result["labelled"]["by_split"] = {
            name: labelled([r for r in answers if r["split"] == name], labels) for name in SPLITS}
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result["labelled"], indent=1, ensure_ascii=False))


def labelled(answers: list[dict[str, Any]], labels: dict[str, Any]) -> dict[str, Any]:
    """Hand-labelled precision of ``answers``' cited sentences, and the wrong ones."""
    counts: Counter[str] = Counter()
    wrong_answers, missing, examples = 0, 0, []
    for r in answers:
        wrong = False
        for c in r["citations"]:
            label = labels.get(label_key(r["person"], c))
            if label is None:
                missing += 1
                continue
            counts[label["label"]] += 1
            if label["label"] == "other":
                wrong = True
                examples.append({"question": r["question"], "sentence": c["quote"],
                                 "said_by": label.get("said_by"), "stored_speaker": c["speaker"]})
        wrong_answers += wrong
    n = sum(counts.values())
    return {
        "answers": len(answers), "sentences": n, "unlabelled": missing, "labels": dict(counts),
        "precision_sentences": round(1 - counts["other"] / n, 3) if n else None,
        "precision_answers": round(1 - wrong_answers / len(answers), 3) if answers else None,
        "attributed_to_someone_else": examples,
    }


# -- calibration ---------------------------------------------------------------------------------
# Fixed before any half's figures were read, and not changed since: a lever's constants maximise
# recall + the "no statement" rate on the calibration half; among equals, the smallest threshold
# (the most answers), then the smallest weight.
THRESHOLDS = tuple(round(0.15 + 0.01 * i, 2) for i in range(51))  # 0.15 .. 0.65
WEIGHTS = (0.0, 0.25, 0.5, 1.0)


class _Memo:
    """The answerer's embedder, embedding each distinct text once: the grid re-scores the same
    sentences hundreds of times."""

    def __init__(self, embedder: Any) -> None:
        self.embedder, self.name, self.dimension = embedder, embedder.name, embedder.dimension
        self._vectors: dict[str, Any] = {}

    def embed_batch(self, texts: list[str]) -> Any:
        import numpy as np

        todo = [t for t in dict.fromkeys(texts) if t not in self._vectors]
        if todo:
            self._vectors.update(zip(todo, self.embedder.embed_batch(todo)))
        return np.stack([self._vectors[t] for t in texts])


@dataclass
class _Prepared:
    """One question, retrieved once: what ``Pipeline.compose`` hands the answerer."""

    q: dict[str, Any]
    split: str
    hits: list[Any]
    quotes: list[Any]
    asked: Any
    topic: list[float] | None  # closeness of Y to the passages' stored vectors (what ships)
    topic_free: list[float] | None  # ... to the passage text alone, without the article title


def _rates(rows: list[tuple[_Prepared, dict[str, Any]]]) -> dict[str, Any]:
    pos = [j for p, j in rows if p.q["kind"] == "positive"]
    neg = [j for p, j in rows if p.q["kind"] == "negative"]
    return {"positives": len(pos), "negatives": len(neg),
            "recall": round(sum(j["hit"] for j in pos) / len(pos), 3) if pos else None,
            "no_statement": round(sum(j["abstained"] for j in neg) / len(neg), 3) if neg else None,
            "hits": sum(j["hit"] for j in pos), "negatives_abstained": sum(j["abstained"] for j in neg)}


def calibrate(args: argparse.Namespace) -> None:
    """Fit each lever's constants on the calibration half, through the library's own answerer
    (``ExtractiveAnswerer.answer`` and ``settle``, as ``Pipeline.compose`` calls them, on
    passages retrieved once), and give every lever's figures on both halves at those constants."""
    from dataclasses import replace

    from rag import Pipeline, Settings
    from rag.answer.extractive import ABSTAIN_TEXT, AnswerSettings, ExtractiveAnswerer
    from rag.text.words import content_words

    questions = json.loads(QUESTIONS.read_text(encoding="utf-8"))["questions"]
    pipeline = Pipeline(_settings(Settings, args))
    memo = _Memo(pipeline.answerer().embedder)
    prepared: list[_Prepared] = []
    for q in questions:
        hits, _ = pipeline.retrieve(q["question"], args.k, AS_OF)
        quotes = pipeline.index().store.quotes_for(sorted({h.article.id for h in hits}))
        asked = pipeline._asked(q["question"], hits, quotes)
        topic = pipeline._topic(asked, hits)
        free = None
        if topic is not None:
            vectors = pipeline.query_embedder.embed_batch([asked.topic] + [h.chunk.text for h in hits])
            free = (vectors[1:] @ vectors[0]).tolist()
        prepared.append(_Prepared(q, split_of(q["person"]), hits, quotes, asked, topic, free))
    log(f"{len(prepared)} questions retrieved")

    def answers(settings: AnswerSettings, topic: str | None) -> list[tuple[_Prepared, Any]]:
        answerer = ExtractiveAnswerer(memo, content_words, settings)
        out = []
        for p in prepared:
            closeness = {"stored": p.topic, "title-free": p.topic_free, None: None}[topic]
            answer = answerer.answer(p.q["question"], p.hits, p.quotes, as_of=AS_OF,
                                     speaker=p.asked.speaker if p.asked else None, topic=closeness)
            out.append((p, answer))
        return out

    def figures(answered: list[tuple[_Prepared, Any]]) -> dict[str, dict[str, Any]]:
        judged = [(p, judge(p.q, p.asked.settle(a) if p.asked else a)) for p, a in answered]
        return {name: _rates([(p, j) for p, j in judged if p.split == name]) for name in SPLITS} | {
            "all (includes calibration)": _rates(judged)}

    def fit(grid: list[tuple[dict[str, float], dict[str, dict[str, Any]]]]) -> dict[str, Any]:
        def objective(item: tuple[dict[str, float], dict[str, dict[str, Any]]]) -> tuple[float, ...]:
            constants, f = item
            cal = f["calibration"]
            j = cal["hits"] / cal["positives"] + cal["negatives_abstained"] / cal["negatives"]
            return (-round(j, 9), *constants.values())
        constants, f = min(grid, key=objective)
        return {"fitted": constants, **f}

    base = AnswerSettings()
    levers: dict[str, Any] = {}
    # Levers 1 and 2, and the rule before, re-decide the answerer's own scores: it composes as
    # usual without abstaining, and the lever abstains when the relevance it reads is below T
    # (the best-scored sentence's, as before this change; or that of X's best sentence).
    never = replace(base, abstain_below=-1.0)
    plain = answers(never, None)
    answerer = ExtractiveAnswerer(memo, content_words, never)
    anchor_rel: list[float] = []
    own_rel: list[float] = []
    for p, _ in plain:
        speaker = p.asked.speaker if p.asked else None
        scored = answerer._score(p.q["question"], answerer._candidates(p.hits, p.quotes), speaker)
        anchor = max(scored, key=lambda c: c.score - c.novelty) if scored else None
        theirs = answerer._theirs(p.q["question"], scored, speaker)
        anchor_rel.append(anchor.relevance if anchor else -1.0)
        own_rel.append(max(c.relevance for c in theirs) if theirs else anchor_rel[-1])

    def declined(answer: Any) -> Any:
        return replace(answer, text=ABSTAIN_TEXT, abstained=True, citations=[])

    def decided(relevance: list[float], t: float) -> list[tuple[_Prepared, Any]]:
        return [(p, a if r >= t else declined(a)) for (p, a), r in zip(plain, relevance)]

    levers["before: the general threshold on the best-scored sentence"] = {
        "fitted": {"abstain_below": base.abstain_below}, **figures(decided(anchor_rel, base.abstain_below))}
    levers["1. a speaker threshold on the best-scored sentence"] = fit(
        [({"abstain_below": t}, figures(decided(anchor_rel, t))) for t in THRESHOLDS])
    levers["2. a speaker threshold on X's best sentence"] = fit(
        [({"abstain_below": t}, figures(decided(own_rel, t))) for t in THRESHOLDS])
    log("levers 1-2 done")
    # The story levers run the answerer itself, with the settings that ship changed.
    stories = (
        ("3. the story alone: X quoted in a passage close to Y", "stored", (0.0,), 9.0),
        (f"4. X's best sentence relevant (general {base.abstain_below}) or in a story close to Y, "
         "X's sentences from it first (what ships)", "stored", WEIGHTS, base.abstain_below),
        ("control: 4 with the passage text alone, without its article title (not shippable: "
         "embeds 8 passages per question)", "title-free", WEIGHTS, base.abstain_below))
    for name, topic, weights, below in stories:
        levers[name] = fit([
            ({"speaker_topic_min": t, "speaker_topic_weight": w},
             figures(answers(replace(base, abstain_below=below, speaker_topic_min=t,
                                     speaker_topic_weight=w), topic)))
            for w in weights for t in THRESHOLDS])
        log(f"{name[:40]} done")
    shipped = levers[stories[1][0]]["fitted"]
    levers["the library's defaults (AnswerSettings)"] = {
        "fitted": {"speaker_topic_min": base.speaker_topic_min, "speaker_topic_weight": base.speaker_topic_weight},
        **figures(answers(base, "stored"))}
    # The questions name the article's own title as Y, and a stored passage vector embeds that
    # title: the positives' closeness is higher than a question worded otherwise would get. A
    # bound: the shipped constants on closeness to the passage text alone.
    levers["stress: 4 at its fitted constants, on closeness to the passage text alone (as if the "
           "title matched Y no better than the text)"] = {
        "fitted": shipped, **figures(answers(replace(base, **shipped), "title-free"))}
    defaults = {"speaker_topic_min": base.speaker_topic_min, "speaker_topic_weight": base.speaker_topic_weight}
    sweep = {f"{t:.2f}": figures(answers(replace(base, speaker_topic_min=t,
                                                 speaker_topic_weight=shipped["speaker_topic_weight"]), "stored"))
             ["calibration"] for t in THRESHOLDS}
    closeness = {kind: {split: [round(max((t for h, t in zip(p.hits, p.topic) if _quotes_asked(p, h)),
                                          default=float("nan")), 3)
                                for p in prepared if p.q["kind"] == kind and p.split == split and p.topic]
                        for split in SPLITS} for kind in ("positive", "negative")}
    result = {
        "about": "bench/speaker_eval.py calibrate: each lever's constants fitted on the calibration half",
        "command": " ".join(sys.argv), "index": args.index, "k": args.k, "as_of": AS_OF,
        "ranker": pipeline.settings.ranker,
        "split": "by the person asked about: parity of sha256(folded full name); 0 = calibration",
        "criterion": "max recall + no-statement rate on the calibration half; ties: smallest threshold, "
                     "then smallest weight",
        "counts": {name: {"positives": sum(p.split == name and p.q["kind"] == "positive" for p in prepared),
                          "negatives": sum(p.split == name and p.q["kind"] == "negative" for p in prepared),
                          "people": len({p.q["person"] for p in prepared if p.split == name})}
                   for name in SPLITS},
        "levers": levers,
        "shipped": {"fitted": shipped, "library_defaults": defaults, "defaults_match": shipped == defaults},
        "sweep_calibration_at_fitted_weight": sweep,
        "closeness_of_xs_best_passage": {k: {s: sorted(v) for s, v in d.items()} for k, d in closeness.items()},
        "environment": environment(),
    }
    finish(args.name, result)
    for name, lever in levers.items():
        print(f"{name}\n   {lever['fitted']}  " + "  ".join(
            f"{k}: recall {v['recall']} / no statement {v['no_statement']}"
            for k, v in lever.items() if k != "fitted"))
    print("library defaults match the fit:", shipped == defaults, defaults)


def _quotes_asked(p: _Prepared, hit: Any) -> bool:
    """Whether ``hit`` holds a stored quote by a person the question may mean."""
    ids = {s.id for s in p.asked.candidates}
    return any(p.asked.speakers.speaker_of(q.speaker) is not None
               and p.asked.speakers.speaker_of(q.speaker).id in ids
               and q.article_id == hit.article.id and hit.chunk.start <= q.start < hit.chunk.end
               for q in p.quotes)


# -- why positives are declined ----------------------------------------------------------------
def diagnose(args: argparse.Namespace) -> None:
    """For each positive question the run missed (declined, or answered without X's sentence of
    the named article): whether the named article was retrieved, whether X's expected sentence was
    among the answerer's candidates and its shortlist, its relevance and its passage's closeness to
    Y, and the relevance and closeness the answer was decided on (X's best). It reaches into the
    answerer (``_candidates``, ``_score``, ``_theirs``) and the pipeline (``_asked``, ``_topic``)
    on purpose, to read the very scores ``ask`` used; working tree only."""
    from rag import Pipeline, Settings

    path = RESULTS / f"{args.name}.json"
    result = json.loads(path.read_text(encoding="utf-8"))
    questions = {q["id"]: q for q in json.loads(QUESTIONS.read_text(encoding="utf-8"))["questions"]}
    pipeline = Pipeline(Settings(index_dir=Path(result["index"])))
    answerer = pipeline.answerer()
    rows = []
    for r in result["records"]:
        if r["kind"] != "positive" or r["hit"]:
            continue
        q = questions[r["id"]]
        hits, _ = pipeline.retrieve(q["question"], result["k"], AS_OF)
        quotes = pipeline.index().store.quotes_for(sorted({h.article.id for h in hits}))
        asked = pipeline._asked(q["question"], hits, quotes)
        speaker = asked.speaker if asked else None
        topic = pipeline._topic(asked, hits)
        closeness = {h.chunk.id: t for h, t in zip(hits, topic)} if topic is not None else {}
        spans = [(e["start"], e["end"]) for e in q["expected"]]

        def expected(c: Any, q: dict[str, Any] = q, spans: list[tuple[int, int]] = spans) -> bool:
            return c.hit.article.id == q["article_id"] and any(overlaps((c.start, c.end), sp) for sp in spans)

        candidates = answerer._candidates(hits, quotes)
        shortlist = answerer._score(q["question"], candidates, speaker, closeness or None)
        theirs = answerer._theirs(q["question"], shortlist, speaker)
        own = [c for c in shortlist if expected(c)]
        rows.append({
            "id": r["id"], "split": r.get("split"), "question": q["question"], "abstained": r["abstained"],
            "named_article_retrieved": any(h.article.id == q["article_id"] for h in hits),
            "expected_in_candidates": any(expected(c) for c in candidates),
            "expected_in_shortlist": bool(own),
            "expected_relevance": round(max(c.relevance for c in own), 3) if own else None,
            "expected_closeness": round(max(closeness.get(c.hit.chunk.id, 0.0) for c in own), 3)
            if own and closeness else None,
            "x_best_relevance": round(max(c.relevance for c in theirs), 3) if theirs else None,
            "x_best_closeness": round(max(closeness.get(c.hit.chunk.id, 0.0) for c in theirs), 3)
            if theirs and closeness else None,
            "cited": [c["quote"][:160] for c in r["citations"]],
        })
    result["diagnosis"] = {
        "abstain_below": answerer.settings.abstain_below,
        "speaker_topic_min": answerer.settings.speaker_topic_min,
        "missed_positives": len(rows),
        "declined": sum(x["abstained"] for x in rows),
        "named_article_retrieved": sum(x["named_article_retrieved"] for x in rows),
        "expected_in_shortlist": sum(x["expected_in_shortlist"] for x in rows),
        "questions": rows,
    }
    result.pop("abstention_diagnosis", None)
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result["diagnosis"], indent=1, ensure_ascii=False))


def _settings(settings: Any, args: argparse.Namespace) -> Any:
    """The library's Settings for ``args.index``: its defaults, but the passage ranker when
    ``--ranker`` names one (a snapshot of an older library may have no such setting)."""
    chosen = {"ranker": args.ranker} if getattr(args, "ranker", None) else {}
    return settings(index_dir=Path(args.index), **chosen)


def _date(day: str) -> date:
    return date.fromisoformat(day)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    q = sub.add_parser("questions")
    q.add_argument("--positives", type=int, default=120)
    q.add_argument("--negatives", type=int, default=40)
    q.add_argument("--per-speaker", type=int, default=2)
    q.add_argument("--seed", type=int, default=0)
    r = sub.add_parser("run")
    r.add_argument("--index", default="bench-out/bbc/index")
    r.add_argument("--name", default="speaker_eval")
    r.add_argument("--code", help="import rag from this folder (a snapshot of another commit)")
    r.add_argument("--limit", type=int)
    r.add_argument("--k", type=int, default=8)
    r.add_argument("--abstain-below", type=float, help="what-if: the extractive answerer's "
                   "abstention threshold (AnswerSettings.abstain_below) set to this")
    r.add_argument("--ranker", choices=("learned", "fusion"), help="the passage ranker (default: the library's)")
    for name in ("sheet", "report"):
        p = sub.add_parser(name)
        p.add_argument("--name", default="speaker_eval")
        p.add_argument("--sentences", type=int, default=0, help="label the answers (in a seeded "
                       "order) that hold at least this many cited sentences; 0: every answer")
        p.add_argument("--seed", type=int, default=1)
    d = sub.add_parser("diagnose")
    d.add_argument("--name", default="speaker_eval")
    c = sub.add_parser("calibrate")
    c.add_argument("--index", default="bench-out/bbc/index")
    c.add_argument("--k", type=int, default=8)
    c.add_argument("--ranker", choices=("learned", "fusion"), help="the passage ranker (default: the library's)")
    c.add_argument("--name", default="speaker_calibration")
    args = parser.parse_args()
    {"questions": make_questions, "run": run, "sheet": sheet, "report": report,
     "diagnose": diagnose, "calibrate": calibrate}[args.cmd](args)


if __name__ == "__main__":
    main()
