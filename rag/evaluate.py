"""Measure retrieval and answers on a question set (RealTime QA's JSON Lines format).

Each line: ``id``, ``question``, ``answer`` (the gold string), optionally ``date`` (the as-of
date) and ``choices`` (all options; the ones other than ``answer`` make strict accuracy).
"""

from __future__ import annotations

import json
import re
import time
import unicodedata
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from rag.errors import InputError, SourceError
from rag.models import Answer, Hit, Problem
from rag.text.dates import parse_date

_PUNCTUATION = re.compile(r"[^\w\s]|_")


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    answer: str
    date: str | None = None
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Miss:
    """A question answered without its gold string, for reading why (``found_at``: the rank of
    the first passage holding the gold string, None when none did)."""

    id: str
    question: str
    gold: str
    found_at: int | None
    answer: str
    abstained: bool


@dataclass
class ModeReport:
    """Metrics of one search mode over all questions."""

    recall_at: dict[str, float]
    mrr: float
    accuracy: float | None
    strict_accuracy: float | None
    abstention_rate: float | None
    citation_validity: float | None
    latency_ms: dict[str, dict[str, float]]
    misses: list[Miss] = field(default_factory=list)
    # Share of answers each answerer wrote ({"extractive": 1.0} unless the LLM answerer ran).
    answered_by: dict[str, float] | None = None

    def to_json(self) -> dict[str, Any]:
        """The metrics as ``rag eval --json`` writes them (misses are written apart)."""
        return {"recall_at": self.recall_at, "mrr": self.mrr, "accuracy": self.accuracy,
                "strict_accuracy": self.strict_accuracy, "abstention_rate": self.abstention_rate,
                "citation_validity": self.citation_validity, "latency_ms": self.latency_ms,
                "answered_by": self.answered_by}


@dataclass
class EvalReport:
    """What ``evaluate`` measured: ``answerer`` is None when only retrieval was."""

    questions: int
    answerer: str | None
    modes: dict[str, ModeReport]

    def to_json(self) -> dict[str, Any]:
        """The report as ``rag eval --json`` writes it: metrics per mode, then misses per mode."""
        return {"questions": self.questions, "answerer": self.answerer,
                "modes": {m: r.to_json() for m, r in self.modes.items()},
                "misses": {m: [asdict(miss) for miss in r.misses] for m, r in self.modes.items()}}


def read_questions(path: str | Path) -> tuple[list[Question], list[Problem]]:
    """Questions from a JSON Lines file; bad lines come back as problems, not exceptions."""
    questions: list[Question] = []
    problems: list[Problem] = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"cannot read questions from {path}: {exc}: pass a UTF-8 JSON Lines file") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        origin = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(Problem(origin, f"malformed JSON: {exc.msg}"))
            continue
        if not isinstance(record, dict):
            problems.append(Problem(origin, "not a JSON object"))
            continue
        missing = [k for k in ("question", "answer") if not str(record.get(k) or "").strip()]
        if missing:
            problems.append(Problem(origin, f"missing {' and '.join(repr(m) for m in missing)}"))
            continue
        try:
            day = parse_date(record.get("date"), "date")
        except InputError as exc:
            problems.append(Problem(origin, str(exc)))
            continue
        questions.append(Question(
            id=str(record.get("id", number)), question=str(record["question"]),
            answer=str(record["answer"]), date=day.isoformat() if day else None,
            choices=tuple(str(c) for c in record.get("choices") or ()),
        ))
    return questions, problems


def contains(text: str, needle: str) -> bool:
    """Whether ``text`` contains the answer ``needle``, as the dataset's own baselines score it:
    case and punctuation stripped on both sides, so curly and straight quotes, "&" and hyphens
    do not decide a match.

    >>> contains("He starred in \u201cLaverne & Shirley\u201d for years.", '"Laverne & Shirley"')
    True
    >>> contains("The U.S. economy grew.", "US economy"), contains("Biden's plan", "biden")
    (True, True)
    """
    wanted = _normalised(needle)
    return bool(wanted) and wanted in _normalised(text)


def _normalised(text: str) -> str:
    """NFKC, casefolded, punctuation removed, each run of spaces one space."""
    return " ".join(_PUNCTUATION.sub("", unicodedata.normalize("NFKC", text).casefold()).split())


def evaluate_mode(questions: Sequence[Question], ks: Sequence[int],
                  retrieve: Callable[[Question, int], list[Hit]],
                  answer: Callable[[Question, list[Hit]], Answer] | None,
                  answer_k: int, progress: Callable[[Iterable[Question]], Iterable[Question]] = iter,
                  ) -> ModeReport:
    """Run every question once through retrieval (and the answerer, when given)."""
    depth = max(max(ks), answer_k)
    found_at: list[int | None] = []
    correct = strict = abstained = 0
    valid = cited = 0
    timings: dict[str, list[float]] = {"retrieve": [], "answer": []}
    misses: list[Miss] = []
    writers: dict[str, int] = {}
    if questions:  # load models and indexes outside the timed loop
        warm = retrieve(questions[0], depth)
        if answer is not None:
            answer(questions[0], warm[:answer_k])
    for q in progress(questions):
        t0 = time.perf_counter()
        hits = retrieve(q, depth)
        timings["retrieve"].append((time.perf_counter() - t0) * 1000)
        first = next((h.rank for h in hits if contains(h.chunk.text, q.answer)), None)
        found_at.append(first)
        if answer is None:
            continue
        t0 = time.perf_counter()
        result = answer(q, hits[:answer_k])
        timings["answer"].append((time.perf_counter() - t0) * 1000)
        abstained += result.abstained
        writers[result.answerer] = writers.get(result.answerer, 0) + 1
        hit_gold = contains(result.text, q.answer)
        correct += hit_gold
        others = [c for c in q.choices if c.casefold() != q.answer.casefold()]
        strict += hit_gold and not any(contains(result.text, c) for c in others)
        for c in result.citations:
            cited += 1
            article = next((h.article for h in hits if h.article.id == c.article_id), None)
            valid += article is not None and article.text[c.start:c.end] == c.quote
        if not hit_gold and len(misses) < 200:
            misses.append(Miss(q.id, q.question, q.answer, first, result.text, result.abstained))
    n = max(len(found_at), 1)
    recall = {str(k): round(sum(1 for r in found_at if r is not None and r <= k) / n, 4) for k in ks}
    mrr = round(sum(1.0 / r for r in found_at if r is not None) / n, 4)
    latency = {stage: _percentiles(values) for stage, values in timings.items() if values}
    if answer is None:
        return ModeReport(recall, mrr, None, None, None, None, latency)
    return ModeReport(recall, mrr, round(correct / n, 4), round(strict / n, 4), round(abstained / n, 4),
                      round(valid / cited, 4) if cited else 1.0, latency, misses,
                      {w: round(c / n, 4) for w, c in sorted(writers.items())})


def _percentiles(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values)
    return {"p50": round(float(np.percentile(arr, 50)), 2), "p95": round(float(np.percentile(arr, 95)), 2)}


def evaluate(pipeline: Any, questions: Sequence[Question], modes: Sequence[str] = ("hybrid",),
             ks: Sequence[int] = (1, 5, 10, 20), answer_k: int = 8, answers: bool = True,
             progress: bool = False, answerer: str = "extractive") -> EvalReport:
    """The report ``rag eval`` prints: one ModeReport per search mode.

    ``answerer="llm"`` needs the pipeline's LLM configured; a question the model fails on is
    answered extractively (as ``ask`` does); ``answered_by`` gives the share each answerer wrote.
    """
    from tqdm import tqdm

    reports: dict[str, ModeReport] = {}
    for mode in modes:
        def retrieve(q: Question, k: int, mode: str = mode) -> list[Hit]:
            return pipeline.retrieve(q.question, k=k, as_of=q.date, mode=mode)[0]

        def answer(q: Question, hits: list[Hit]) -> Answer:
            return pipeline.compose(q.question, hits, parse_date(q.date, "date") or date.today(), answerer)

        bar = (lambda qs, mode=mode: tqdm(qs, desc=f"eval {mode}", unit="q", leave=False)) if progress else iter
        reports[mode] = evaluate_mode(questions, ks, retrieve, answer if answers else None, answer_k, bar)
    return EvalReport(len(questions), answerer if answers else None, reports)
