"""Fine-tune the query side of all-MiniLM-L6-v2 for news questions, and measure it on the other year.

An experiment, not shipped (BENCHMARKS.md, "A query tower: what did not carry over"). The
index's passage vectors are never re-embedded: only the encoder that embeds questions is trained,
against the vectors already stored in an index built with the packaged model. Had it worked,
every existing index would have kept working and reindex speed would be unchanged.

Examples come from labelled RealTime QA questions, asked as the pipeline asks them (as of the
question's date, under its time frame):

- positives: passages that contain the gold answer (``rag.evaluate.contains``) among the
  retrievers' pool, and among the BM25 top 20 for the question's quoted ``evidence`` text. The
  second source finds positives that today's retrieval misses, which is what there is to learn;
- hard negatives: the pool's best-ranked passages that do not contain the answer.

The loss is a softmax over each question's positives, its negatives and the other questions'
passages in the batch (multiple-negatives ranking, scale 20). The last fifth of the training
questions, by date, is held back: it picks the epoch. The report year (``--report-questions`` on
``--report-index``) is read only after training, to measure dense recall with the plain and the
tuned encoder, both in float32 on PyTorch:

    .venv/bin/python bench/train_query_encoder.py --index bench-out/rtqa24/idx-i8 \
        --questions ../shared/datasets/realtimeqa-2024-2025/questions.jsonl \
        --report-index bench-out/rtqa22/idx-i8 \
        --report-questions ../shared/datasets/realtimeqa-2022/questions.jsonl --epochs 2 --lr 2e-5

Writes ``bench/results/query_tower-<epochs>-<lr>.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _common import finish, log  # noqa: E402

from rag.evaluate import contains  # noqa: E402
from rag.pipeline import Pipeline  # noqa: E402
from rag.search.asof import as_of_filter  # noqa: E402
from rag.search.rerank import candidate_pool  # noqa: E402
from rag.search.retrieve import SearchFilter, allowed_rows, hits_for  # noqa: E402
from rag.settings import Settings  # noqa: E402

EXAMPLES_FORMAT = 1
NEGATIVES = 24  # hard negatives kept per question
EVIDENCE_DEPTH = 20


def read_raw_questions(path: Path) -> list[dict[str, Any]]:
    """Questions with their evidence text (rag.evaluate's reader keeps only what eval needs)."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            q = json.loads(line)
            if q.get("question") and q.get("answer") and q.get("date"):
                out.append(q)
    return out


def build_examples(pipeline: Pipeline, questions_path: Path) -> list[dict[str, Any]]:
    """Each question's positives and hard negatives as chunk rows of the index, cached on disk."""
    index = pipeline.index()
    key = hashlib.sha1(f"{index.manifest.generation}|{questions_path.resolve()}|{EXAMPLES_FORMAT}|"
                       f"{NEGATIVES}|{EVIDENCE_DEPTH}".encode()).hexdigest()[:12]
    cache = ROOT / "bench-out" / f"query-examples-{key}.json"
    if cache.exists():
        return list(json.loads(cache.read_text(encoding="utf-8")))
    embedder = pipeline.query_embedder
    examples = []
    started = time.perf_counter()
    raw = read_raw_questions(questions_path)
    for n, q in enumerate(raw, start=1):
        as_of = date.fromisoformat(q["date"])
        flt, _ = as_of_filter(q["question"], as_of, SearchFilter())
        pool = candidate_pool(index, embedder, q["question"], flt)
        positives = {c.row for c in pool if contains(c.hit.chunk.text, q["answer"])}
        negatives = [c.row for c in pool if c.row not in positives][:NEGATIVES]
        if q.get("evidence"):
            rows, scores = index.keyword.search(q["evidence"], EVIDENCE_DEPTH, allowed_rows(index, flt))
            ranked = [(int(r), float(s)) for r, s in zip(rows, scores)]
            positives |= {r for h, (r, _) in zip(hits_for(index, ranked), ranked)
                          if contains(h.chunk.text, q["answer"])}
        examples.append({"id": q["id"], "date": q["date"], "question": q["question"],
                         "positives": sorted(positives), "negatives": negatives})
        if n % 200 == 0:
            log(f"{n}/{len(raw)} questions, {time.perf_counter() - started:.0f}s")
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(examples), encoding="utf-8")
    return examples


def dense_recall(index: Any, vectors: np.ndarray, examples: list[dict[str, Any]],
                 answers: dict[str, str], ks: tuple[int, ...] = (1, 5, 10, 20)) -> dict[str, float]:
    """Dense-only answer recall@k with the given question vectors, under each question's as-of
    filter (``examples``: dicts with id, date and question)."""
    hits = {k: 0 for k in ks}
    for vec, ex in zip(vectors, examples):
        flt, _ = as_of_filter(ex["question"], date.fromisoformat(ex["date"]), SearchFilter())
        rows, scores = index.dense.search(vec, max(ks), allowed_rows(index, flt))
        ranked = [(int(r), float(s)) for r, s in zip(rows, scores)]
        found = [contains(h.chunk.text, answers[ex["id"]]) for h in hits_for(index, ranked)]
        for k in ks:
            hits[k] += any(found[:k])
    return {f"recall@{k}": round(hits[k] / max(len(examples), 1), 4) for k in ks}


def train(model: Any, doc_vectors: np.ndarray, train_set: list[dict[str, Any]], epochs: int,
          lr: float, batch: int, scale: float, seed: int, on_epoch: Any) -> None:
    """Multiple-negatives ranking over each question's rows and the batch's other rows."""
    import torch

    torch.manual_seed(seed)
    rng = random.Random(seed)
    usable = [ex for ex in train_set if ex["positives"]]
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    steps = epochs * ((len(usable) + batch - 1) // batch)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min(1.0, (s + 1) / max(1, steps // 10)) * max(0.0, 1 - s / steps))
    docs = torch.from_numpy(doc_vectors)
    for epoch in range(1, epochs + 1):
        model.train()
        rng.shuffle(usable)
        total = 0.0
        for lo in range(0, len(usable), batch):
            part = usable[lo:lo + batch]
            rows = sorted({r for ex in part for r in ex["positives"] + ex["negatives"]})
            where = {r: i for i, r in enumerate(rows)}
            d = docs[rows]
            features = model.tokenize([ex["question"] for ex in part])
            q = model(features)["sentence_embedding"]
            q = torch.nn.functional.normalize(q, dim=-1)
            scores = scale * q @ d.T
            loss = torch.zeros(())
            for i, ex in enumerate(part):
                pos = torch.tensor([where[r] for r in ex["positives"]])
                loss = loss + torch.logsumexp(scores[i], 0) - torch.logsumexp(scores[i, pos], 0)
            loss = loss / len(part)
            optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
            schedule.step()
            total += float(loss.detach()) * len(part)
        log(f"epoch {epoch}: loss {total / len(usable):.4f}")
        on_epoch(epoch)


def encode(model: Any, texts: list[str]) -> np.ndarray:
    import torch

    model.eval()
    with torch.no_grad():
        out = model.encode(texts, batch_size=64, convert_to_numpy=True, normalize_embeddings=True)
    return np.asarray(out, dtype=np.float32)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=Path, required=True, help="index built with the packaged model")
    parser.add_argument("--questions", type=Path, required=True)
    parser.add_argument("--report-index", type=Path, required=True, help="the other year's index")
    parser.add_argument("--report-questions", type=Path, required=True, help="the other year's questions")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--scale", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--validation-share", type=float, default=0.2)
    args = parser.parse_args(argv)

    import torch
    from sentence_transformers import SentenceTransformer

    from rag.embed.model import resolve_model_path

    torch.set_num_threads(2)
    pipeline = Pipeline(Settings(index_dir=args.index))
    index = pipeline.index()
    examples = build_examples(pipeline, args.questions)
    answers = {q["id"]: q["answer"] for q in read_raw_questions(args.questions)}
    examples.sort(key=lambda ex: ex["date"])
    cut = int(len(examples) * (1 - args.validation_share))
    train_set, valid_set = examples[:cut], examples[cut:]
    with_pos = sum(bool(ex["positives"]) for ex in train_set)
    log(f"{len(train_set)} training questions ({with_pos} with a positive), {len(valid_set)} validation")
    doc_vectors = np.ascontiguousarray(index.vectors, dtype=np.float32)

    report_index = Pipeline(Settings(index_dir=args.report_index)).index()
    report = sorted(read_raw_questions(args.report_questions), key=lambda q: q["date"])
    report_texts = [q["question"] for q in report]
    report_answers = {q["id"]: q["answer"] for q in report}

    def model_of(path: str | Path) -> Any:
        return SentenceTransformer(str(path), device="cpu")

    plain = dense_recall(report_index, encode(model_of(resolve_model_path(None)), report_texts), report,
                         report_answers)
    model = model_of(resolve_model_path(None))
    history: list[dict[str, Any]] = []
    best: dict[str, Any] = {"epoch": 0, "mean": -1.0}
    # The tuned weights stay in bench-out/ for a closer look.
    keep = ROOT / "bench-out" / "query-tower-weights"
    shutil.rmtree(keep, ignore_errors=True)

    def measure(epoch: int) -> None:
        if not valid_set:
            model.save(str(keep / "best"))
            return
        recall = dense_recall(index, encode(model, [ex["question"] for ex in valid_set]), valid_set, answers)
        history.append({"epoch": epoch, **recall})
        log(f"epoch {epoch}: validation dense {recall}")
        # The epoch is chosen on the mean of recall@1..20: recall@10 alone moved within noise
        # (382 questions) while recall@1 kept rising.
        mean = sum(recall.values()) / len(recall)
        if mean > best["mean"]:
            best.update(epoch=epoch, mean=mean, **recall)
            model.save(str(keep / "best"))

    measure(0)
    started = time.perf_counter()
    train(model, doc_vectors, train_set, args.epochs, args.lr, args.batch, args.scale, args.seed, measure)
    log(f"trained in {time.perf_counter() - started:.0f}s; best epoch {best['epoch']}")

    tuned = dense_recall(report_index, encode(model_of(keep / "best"), report_texts), report, report_answers)
    result = {
        "trained_on": {"questions": str(args.questions), "train_questions": len(train_set),
                       "with_a_positive": with_pos, "validation_questions": len(valid_set),
                       "validation_from": valid_set[0]["date"] if valid_set else None},
        "params": {k: getattr(args, k) for k in ("epochs", "lr", "batch", "scale", "seed")}
        | {"negatives": NEGATIVES, "evidence_depth": EVIDENCE_DEPTH},
        "chosen_epoch": best["epoch"],
        "validation_dense": history,
        "report": {"questions": str(args.report_questions), "plain": plain, "tuned": tuned},
    }
    log(f"{args.report_questions}: plain {plain}, tuned {tuned}")
    finish(f"query_tower-{args.epochs}-{args.lr:g}", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
