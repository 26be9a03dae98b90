"""Calibrate the extractive answerer's abstention threshold on data.

Measures, for each question, the relevance of the best candidate sentence the shipped answerer
finds (``Pipeline.answerer()``, the same candidates and scoring as ``rag ask``):
- answerable questions: RealTime QA questions asked of the RealTime QA index, kept when the gold
  answer appears in the retrieved passages;
- unanswerable ones: the same questions asked of an index of news they are not about (BBC News
  2004-2005), plus ten general-knowledge questions asked of the RealTime QA index.
Then, per threshold, the share of each that would be declined.

Reproduces BENCHMARKS.md, "Answers and abstention" > "How the shipped settings were chosen"
(the abstention threshold; bench/results/abstention.json). Recorded before the int8 scorer and
the novelty bonus, so a run today scores with the shipped int8 model:

    .venv/bin/rag reindex ../shared/datasets/bbc-news/articles.jsonl.gz --index bench-out/bbc
    .venv/bin/python bench/calibrate_abstention.py --covered bench-out/rtqa/idx-f32 \
        --uncovered bench-out/bbc --limit 80

Options: [--limit N] [--questions FILE] [--out FILE].
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, RTQA_QUESTIONS  # noqa: E402

from rag import Pipeline, Settings  # noqa: E402
from rag.evaluate import contains, read_questions  # noqa: E402

GENERAL = [
    "What is the capital of France?", "How many legs does a spider have?", "Who wrote Hamlet?",
    "What is the boiling point of water at sea level?", "Who painted the Mona Lisa?",
    "What is the chemical symbol for gold?", "How many continents are there?",
    "What is the largest planet in the solar system?", "Who discovered penicillin?",
    "What language is spoken in Brazil?",
]


def best_relevance(pipeline: Pipeline, question: str, as_of: str | None) -> tuple[float, list]:
    hits, _ = pipeline.retrieve(question, k=8, as_of=as_of)
    quotes = pipeline.index().store.quotes_for(sorted({h.article.id for h in hits}))
    answerer = pipeline.answerer()
    candidates = answerer._candidates(hits, quotes)
    if not candidates:
        return 0.0, hits
    scored = answerer._score(question, candidates)
    return max(c.relevance for c in scored), hits


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--covered", required=True, help="the RealTime QA index")
    ap.add_argument("--uncovered", required=True, help="an index of other news (BBC News)")
    ap.add_argument("--questions", type=Path, default=RTQA_QUESTIONS)
    ap.add_argument("--limit", type=int, default=300)
    ap.add_argument("--out", type=Path, default=RESULTS / "abstention.json")
    args = ap.parse_args()
    questions, _ = read_questions(args.questions)
    questions = questions[: args.limit]
    covered = Pipeline(Settings(index_dir=Path(args.covered)))
    uncovered = Pipeline(Settings(index_dir=Path(args.uncovered)))
    pos, neg = [], []
    for q in questions:
        score, hits = best_relevance(covered, q.question, q.date)
        if any(contains(h.chunk.text, q.answer) for h in hits):
            pos.append(score)
        neg.append(best_relevance(uncovered, q.question, q.date)[0])
    general = [best_relevance(covered, q, "2022-12-31")[0] for q in GENERAL]
    neg_all = np.array(neg + general)
    pos_arr = np.array(pos)
    rows = []
    for t in np.arange(0.15, 0.5, 0.01):
        rows.append({"threshold": round(float(t), 2),
                     "answerable_abstained": round(float((pos_arr < t).mean()), 3),
                     "unanswerable_abstained": round(float((neg_all < t).mean()), 3),
                     "general_abstained": round(float((np.array(general) < t).mean()), 3)})
    best = max(rows, key=lambda r: (1 - r["answerable_abstained"]) + r["unanswerable_abstained"])
    report = {"answerable": len(pos), "unanswerable": len(neg_all), "best_balanced": best, "table": rows,
              "answerable_scores": pos, "unanswerable_scores": neg_all.tolist()}
    Path(args.out).write_text(json.dumps(report, indent=2))
    for r in rows:
        print(r)
    print("best (balanced):", best)


if __name__ == "__main__":
    main()
