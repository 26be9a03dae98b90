"""Accuracy, abstention and latency of extractive-answerer settings on RealTime QA 2022.

Every variant is the shipped ``ExtractiveAnswerer`` with some ``AnswerSettings`` overridden (see
VARIANTS), answering the same retrieved passages (k=8, as of each question's date, retrieved once
through ``Pipeline.retrieve``). Accuracy is comparable across variants; the latency column only
within one run (same load). Needs the float32 RealTime QA index (BENCHMARKS.md, "Setup").

Reproduces BENCHMARKS.md, "Answers and abstention" > "How the shipped settings were chosen"
(bench/results/answer_sweep.json):

    # the novelty bonus and sentence count
    .venv/bin/python bench/answer_sweep.py --index bench-out/rtqa/idx-f32 --backend torch --limit 732 \
        --variants novelty_0,novelty_0.05,default,novelty_0.15,keep_0.5,max_5
    # the number of candidate sentences (recorded when 32 was the default, before the int8
    # scorer and the novelty bonus, so today's settings give other absolute figures)
    .venv/bin/python bench/answer_sweep.py --index bench-out/rtqa/idx-f32 --limit 150 \
        --variants candidates_32,candidates_24,candidates_16,candidates_12

Options: [--limit N] [--variants a,b,...] [--backend B] [--questions FILE] [--out FILE].
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, RTQA_QUESTIONS  # noqa: E402

from rag import Pipeline, Settings  # noqa: E402
from rag.answer.extractive import AnswerSettings, ExtractiveAnswerer  # noqa: E402
from rag.evaluate import contains, read_questions  # noqa: E402
from rag.index.keyword import terms  # noqa: E402

VARIANTS = {
    "default": {},
    "keep_all_3": {"keep_ratio": 0.0},
    "keep_0.8": {"keep_ratio": 0.8},
    "keep_0.5": {"keep_ratio": 0.5},
    "no_cues": {"cue_bonus": 0.0},
    "max_5": {"max_sentences": 5, "keep_ratio": 0.0},
    # Fewer sentences embedded per answer: the answer's latency is mostly that embedding.
    "candidates_32": {"max_candidates": 32},
    "candidates_24": {"max_candidates": 24},
    "candidates_16": {"max_candidates": 16},
    "candidates_12": {"max_candidates": 12},
    # Names and numbers the question does not mention (the default is 0.1).
    "novelty_0": {"novelty_bonus": 0.0},
    "novelty_0.05": {"novelty_bonus": 0.05},
    "novelty_0.1": {"novelty_bonus": 0.1},
    "novelty_0.2": {"novelty_bonus": 0.2},
    "novelty_0.15": {"novelty_bonus": 0.15},
    "novelty_0.1_c24": {"novelty_bonus": 0.1, "max_candidates": 24},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", required=True)
    ap.add_argument("--questions", type=Path, default=RTQA_QUESTIONS)
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--out", type=Path, default=RESULTS / "answer_sweep.json")
    ap.add_argument("--backend", help="search embedder backend (default: the index's)")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of the variants")
    args = ap.parse_args()
    pipeline = Pipeline(Settings(index_dir=Path(args.index), backend=args.backend))
    questions, _ = read_questions(args.questions)
    questions = questions[: args.limit]
    prepared = []
    for q in questions:
        hits, _ = pipeline.retrieve(q.question, k=8, as_of=q.date)
        quotes = pipeline.index().store.quotes_for(sorted({h.article.id for h in hits}))
        prepared.append((q, hits, quotes))
    results = {}
    for name in args.variants.split(","):
        overrides = VARIANTS[name]
        answerer = ExtractiveAnswerer(pipeline.scorer, terms, replace(AnswerSettings(), **overrides))
        correct = strict = abstained = sentences = 0
        millis = []
        for q, hits, quotes in prepared:
            t0 = time.perf_counter()
            a = answerer.answer(q.question, hits, quotes, as_of=q.date)
            millis.append((time.perf_counter() - t0) * 1000)
            ok = contains(a.text, q.answer)
            correct += ok
            others = [c for c in q.choices if c.casefold() != q.answer.casefold()]
            strict += ok and not any(contains(a.text, c) for c in others)
            abstained += a.abstained
            sentences += a.text.count("] ") + (0 if a.abstained else 1)
        n = len(prepared)
        results[name] = {"accuracy": round(correct / n, 3), "strict": round(strict / n, 3),
                         "abstained": round(abstained / n, 3), "sentences_per_answer": round(sentences / n, 2),
                         "answer_ms_p50": round(statistics.median(millis), 1)}
        print(name, results[name], flush=True)
    Path(args.out).write_text(json.dumps({"questions": len(prepared), "variants": results}, indent=2))


if __name__ == "__main__":
    main()
