"""Why answers miss: each question whose answer lacks the gold string, put in one class.

Asks every question as ``rag eval`` does (as of its date, 8 passages, the shipped rankers) and
sorts the misses:

- ``not retrieved``: no passage of the 8 holds the gold string;
- ``abstained``: a passage holds it, and the answerer declined;
- ``not shortlisted``: a passage holds it, but no sentence the answerer embedded and scored does
  (it spans sentences, or the cheap pre-ranking left it out);
- ``outranked``: a scored sentence holds it, and others were chosen; with its rank among them;
- ``speaker``: a "What did X say?" question (the speaker path, not the sentence ranker).

    .venv/bin/python bench/classify_misses.py --index bench-out/rtqa22/idx-i8 \\
        --questions ../shared/datasets/realtimeqa-2022/questions.jsonl --out bench/results/misses-rtqa22.json

Writes the counts and up to 5 samples per class.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag.evaluate import contains, read_questions  # noqa: E402
from rag.pipeline import Pipeline  # noqa: E402
from rag.settings import Settings  # noqa: E402
from rag.text.quotes import asked_speaker  # noqa: E402

ANSWER_K = 8


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--questions", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args(argv)

    pipeline = Pipeline(Settings(index_dir=args.index))
    questions, _ = read_questions(args.questions)
    questions = questions[: args.limit] if args.limit else questions
    answerer = pipeline.answerer()
    classes: Counter[str] = Counter()
    outranked_at: Counter[int] = Counter()
    samples: dict[str, list[dict]] = defaultdict(list)
    for q in questions:
        hits, as_of = pipeline.retrieve(q.question, k=ANSWER_K, as_of=q.date)
        answer = pipeline.compose(q.question, hits, as_of)
        if contains(answer.text, q.answer):
            classes["answered"] += 1
            continue
        sample = {"id": q.id, "question": q.question, "gold": q.answer, "answer": answer.text[:300]}
        if asked_speaker(q.question) is not None:
            kind = "speaker"
        elif not any(contains(h.chunk.text, q.answer) for h in hits):
            kind = "not retrieved"
        elif answer.abstained:
            kind = "abstained"
        else:
            quotes = pipeline.index().store.quotes_for(sorted({h.article.id for h in hits}))
            shortlist, matrix = answerer.features(q.question, hits, quotes, as_of.isoformat())
            holding = [n for n, c in enumerate(shortlist) if contains(c.text, q.answer)]
            if not holding:
                kind = "not shortlisted"
            else:
                kind = "outranked"
                scores = answerer.ranker.predict(matrix) if answerer.ranker else None
                if scores is not None:
                    order = sorted(range(len(shortlist)), key=lambda i: -scores[i])
                    rank = min(order.index(i) for i in holding) + 1
                    outranked_at[rank] += 1
                    sample["rank_of_answer_sentence"] = rank
                    sample["answer_sentence"] = shortlist[holding[0]].text[:300]
        classes[kind] += 1
        if len(samples[kind]) < 5:
            samples[kind].append(sample)
    report = {"questions": len(questions), "classes": dict(classes.most_common()),
              "outranked_at_rank": dict(sorted(outranked_at.items())), "samples": samples}
    text = json.dumps(report, indent=2, ensure_ascii=False)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    print(json.dumps({k: report[k] for k in ("questions", "classes", "outranked_at_rank")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
