"""The LLM answerer against the extractive one, on RealTime QA, with SmolLM2-135M on CPU.

Measures answer accuracy, what the verifier keeps, re-cites and drops, citation precision before
and after verification, and latency. Reproduces BENCHMARKS.md, "The LLM answerer and its
verifier" (bench/results/llm_eval.json), on the float32 RealTime QA index (BENCHMARKS.md, "Setup"):

    .venv/bin/python bench/llm_eval.py generate --n 100 --index bench-out/rtqa/idx-f32   # runs the model (slow)
    .venv/bin/python bench/llm_eval.py report --n 100 --index bench-out/rtqa/idx-f32     # re-verifies, no model

and the verifier's threshold (bench/results/llm_verifier_labels.json, hand-labelled):

    .venv/bin/python bench/llm_eval.py generate --n 40 --offset 200     # calibration questions only
    .venv/bin/python bench/llm_eval.py candidates --n 40 --offset 200   # pairs to label
    .venv/bin/python bench/llm_eval.py calibrate                        # threshold sweep on the labels

Options: [--n 120] [--offset 0] [--index DIR] [--base-url URL] [--model NAME] [--threads 1] [--drafts FILE].

``generate`` samples questions (a fixed shuffle of questions.jsonl, seed 0; ``--offset`` skips
the first ones, which is how the calibration questions are kept apart from the measured ones),
retrieves k=8 passages from the RealTime QA index (``--index``, built by ``rag reindex``)
as of each question's date, and answers each question twice on the same passages: extractive,
and LLM (streamed through ``Pipeline.compose_stream``, so the timing includes verification).
Each question's draft, the model's text before verification, is appended to
bench-out/llm/drafts.jsonl (resumable).

``report`` verifies every stored draft again with the current verifier, in both modes ("drop"
and "flag"), and writes bench/results/llm_eval.json: answer accuracy (gold answer string in
the answer text, as ``rag eval``), the share of sentences kept / re-cited / dropped, latency, and
citation precision before and after verification from the hand-checked sample in
bench/results/llm_citation_check.json (30 sentences; ``report`` writes the sample to label,
bench-out/llm/check_sample.json, when the file has no judgements yet).

``calibrate`` sweeps the verifier's threshold and weights over hand labels of
(sentence, best passage sentence) pairs, bench/results/llm_verifier_labels.json, written from
questions of the calibration offset (``--offset 200``), never the measured ones.

The server is started here (scripts/llm_server.py: llama-cpp-python, one thread) unless
``--base-url`` names one.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, ROOT, RTQA_QUESTIONS, environment, finish, log, summary_ms  # noqa: E402

from rag.evaluate import contains, read_questions  # noqa: E402
from rag.answer.llm import LLMConfig  # noqa: E402
from rag.pipeline import Pipeline  # noqa: E402
from rag.settings import Settings  # noqa: E402
from rag.answer.verify import VerifySettings, Verifier, echoes_question, evidence_for, parse_claims  # noqa: E402

INDEX = ROOT / "bench-out" / "rtqa" / "idx-f32"  # rag reindex realtimeqa articles.jsonl.gz --index ...
OUT = ROOT / "bench-out" / "llm"  # git-ignored scratch space: drafts, samples to label
DRAFTS = OUT / "drafts.jsonl"
CHECK_SAMPLE = OUT / "check_sample.json"
CHECKED = RESULTS / "llm_citation_check.json"
LABELS = RESULTS / "llm_verifier_labels.json"
K = 8


def load_server_module() -> Any:
    spec = importlib.util.spec_from_file_location("llm_server", ROOT / "scripts" / "llm_server.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["llm_server"] = module  # dataclasses look their module up there  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def sample(n: int, offset: int) -> list[Any]:
    questions, _ = read_questions(RTQA_QUESTIONS)
    order = list(range(len(questions)))
    random.Random(0).shuffle(order)
    return [questions[i] for i in order[offset:offset + n]]


def read_drafts(path: Path = DRAFTS) -> dict[str, dict[str, Any]]:
    if not path.exists():
        return {}
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {r["id"]: r for r in rows}


# -- generate ------------------------------------------------------------------------------------
def generate(args: argparse.Namespace) -> None:
    server = None
    base_url = args.base_url
    if base_url is None:
        server = load_server_module().start(threads=args.threads)
        base_url = server.url
        log(f"started SmolLM2 server at {base_url}")
    try:
        config = LLMConfig(base_url=base_url, model=args.model, timeout=120.0)
        pipeline = Pipeline(Settings(index_dir=args.index), llm=config)
        questions = sample(args.n, args.offset)
        done = read_drafts(args.drafts)
        args.drafts.parent.mkdir(parents=True, exist_ok=True)
        warm = questions[0]
        hits, as_of = pipeline.retrieve(warm.question, K, warm.date)
        pipeline.compose(warm.question, hits, as_of)
        pipeline.compose(warm.question, hits, as_of, answerer="llm")
        with open(args.drafts, "a", encoding="utf-8") as out:
            for i, q in enumerate(questions, start=1):
                if q.id in done:
                    continue
                t0 = time.perf_counter()
                hits, as_of = pipeline.retrieve(q.question, K, q.date)
                retrieve_s = time.perf_counter() - t0
                t0 = time.perf_counter()
                extractive = pipeline.compose(q.question, hits, as_of)
                extractive_s = time.perf_counter() - t0
                t0 = time.perf_counter()
                first_token_s = None
                draft: list[str] = []
                final = None
                for item in pipeline.compose_stream(q.question, hits, as_of, answerer="llm"):
                    if isinstance(item, str):
                        first_token_s = first_token_s or time.perf_counter() - t0
                        draft.append(item)
                    else:
                        final = item
                llm_s = time.perf_counter() - t0
                assert final is not None
                row = {"id": q.id, "offset": args.offset, "question": q.question, "gold": q.answer,
                       "choices": list(q.choices), "date": q.date, "draft": "".join(draft),
                       "extractive_answer": extractive.text, "extractive_abstained": extractive.abstained,
                       "retrieve_s": round(retrieve_s, 4), "extractive_s": round(extractive_s, 4),
                       "llm_first_token_s": round(first_token_s, 4) if first_token_s else None,
                       "llm_s": round(llm_s, 4), "llm_warnings": final.warnings,
                       "passages": [h.chunk.id for h in hits]}
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
                out.flush()
                log(f"{i}/{len(questions)} {q.id} {llm_s:.1f}s {row['draft'][:80]!r}")
    finally:
        if server is not None:
            server.stop()


# -- report --------------------------------------------------------------------------------------
def _accuracy(rows: list[dict[str, Any]], key: str) -> dict[str, float]:
    correct = strict = 0
    for r in rows:
        text = r[key]
        hit = contains(text, r["gold"])
        correct += hit
        others = [c for c in r["choices"] if c.casefold() != r["gold"].casefold()]
        strict += hit and not any(contains(text, c) for c in others)
    n = max(len(rows), 1)
    return {"accuracy": round(correct / n, 4), "strict_accuracy": round(strict / n, 4)}


def verify_all(pipeline: Pipeline, rows: list[dict[str, Any]], on_unsupported: str,
               settings: VerifySettings | None = None) -> list[dict[str, Any]]:
    """Each draft verified again (no model call), as the answerer would."""
    answerer = pipeline.llm_answerer()
    if settings is not None:
        answerer.verifier = Verifier(pipeline.embedder, settings=settings)
    answerer.client.config = replace(answerer.client.config, on_unsupported=on_unsupported)
    out = []
    for r in rows:
        hits, as_of = pipeline.retrieve(r["question"], K, r["date"])
        quotes = pipeline.index().store.quotes_for(sorted({h.article.id for h in hits}))
        t0 = time.perf_counter()
        answer = answerer.finish(r["question"], hits, quotes, as_of.isoformat(), r["draft"])
        verify_s = time.perf_counter() - t0
        for c in answer.citations:
            article = pipeline.article(c.article_id)
            assert article is not None and article.text[c.start:c.end] == c.quote
        out.append({**r, "final": answer.text, "answerer": answer.answerer, "fell_back": answer.answerer != "llm",
                    "llm_text": answer.text if answer.answerer == "llm" else "",
                    "sentences": [asdict(s) for s in answer.sentences], "verify_s": verify_s,
                    "citations": [asdict(c) for c in answer.citations], "hits": hits})
    return out


def report(args: argparse.Namespace) -> None:
    pipeline = Pipeline(Settings(index_dir=args.index), llm=LLMConfig("http://127.0.0.1:9", "unused"))
    wanted = {q.id for q in sample(args.n, args.offset)}
    rows = [r for r in read_drafts(args.drafts).values() if r["id"] in wanted]
    log(f"{len(rows)} drafts")
    result: dict[str, Any] = {"questions": len(rows), "k": K, "index": str(args.index),
                              "model": "SmolLM2-135M-Instruct Q4_1 (llama-cpp-python server, 1 thread)",
                              "verifier": asdict(VerifySettings()), "llm_config": asdict(pipeline.llm),
                              "environment": environment()}
    result["accuracy"] = {
        "extractive": _accuracy(rows, "extractive_answer"),
        "llm_draft_unverified": _accuracy(rows, "draft"),
    }
    result["extractive_abstention_rate"] = round(sum(r["extractive_abstained"] for r in rows) / len(rows), 4)
    verified: dict[str, list[dict[str, Any]]] = {}
    for mode in ("drop", "flag"):
        vs = verify_all(pipeline, rows, mode)
        verified[mode] = vs
        actions = [s["action"] for v in vs for s in v["sentences"]]
        total = max(len(actions), 1)
        result[f"verified_{mode}"] = {
            **_accuracy(vs, "final"),
            "accuracy_llm_sentences_only": _accuracy(vs, "llm_text")["accuracy"],
            "fell_back_to_extractive": round(sum(v["fell_back"] for v in vs) / len(vs), 4),
            "sentences": len(actions),
            "share": {a: round(actions.count(a) / total, 4) for a in ("kept", "recited", "flagged", "dropped")},
            "sentences_with_llm_marker": round(sum(bool(s["cited"]) for v in vs for s in v["sentences"]) / total, 4),
            "verify_latency": summary_ms([v["verify_s"] for v in vs]),
        }
    result["latency"] = {
        "retrieve": summary_ms([r["retrieve_s"] for r in rows]),
        "extractive_answer": summary_ms([r["extractive_s"] for r in rows]),
        "llm_answer_incl_verification": summary_ms([r["llm_s"] for r in rows]),
        "llm_first_token": summary_ms([r["llm_first_token_s"] for r in rows if r["llm_first_token_s"]]),
        "llm_fell_back_at_generation": sum(bool(r["llm_warnings"]) for r in rows),
    }
    result["citation_precision"] = citation_precision(verified["flag"])
    print(json.dumps({k: v for k, v in result.items() if k != "environment"}, indent=2))
    finish("llm_eval", result)


def citation_precision(verified: list[dict[str, Any]]) -> dict[str, Any]:
    """Precision before and after verification, from the hand-checked sample.

    ``verified`` is the "flag" run, where every sentence keeps a citation: its own marker when
    the model wrote one, else the closest passage sentence. Before verification every sentence
    is shown with that citation; after it, only the kept and re-cited ones are.
    """
    rng = random.Random(1)
    pool = [(v, i) for v in verified for i in range(len(v["sentences"]))]
    picked = rng.sample(pool, min(30, len(pool)))
    sample_rows = []
    for v, i in picked:
        s = v["sentences"][i]
        hits = v["hits"][:4]
        cited = [{"n": n, "title": hits[n - 1].article.title, "passage": hits[n - 1].chunk.text}
                 for n in s["cited"] if 1 <= n <= len(hits)]
        quote = next((c["quote"] for c in v["citations"] if c["n"] == s["citation"]), None)
        sample_rows.append({"key": f"{v['id']}#{i}", "question": v["question"], "gold": v["gold"],
                            "sentence": s["text"], "llm_cited": cited, "action": s["action"],
                            "support": s["support"], "quote": quote,
                            "passages": [f"[{n}] {h.article.title}: {h.chunk.text}" for n, h in enumerate(hits, 1)]})
    CHECK_SAMPLE.parent.mkdir(parents=True, exist_ok=True)
    CHECK_SAMPLE.write_text(json.dumps(sample_rows, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if not CHECKED.exists():
        return {"status": f"label {CHECK_SAMPLE.relative_to(ROOT)} into {CHECKED.relative_to(ROOT)}"}
    labels = {r["key"]: r for r in json.loads(CHECKED.read_text(encoding="utf-8"))["sentences"]}
    missing = [r["key"] for r in sample_rows if r["key"] not in labels]
    if missing:
        return {"status": f"{len(missing)} sampled sentences have no judgement: {missing[:3]}"}
    judged = [(r, labels[r["key"]]) for r in sample_rows]
    marked = [j for r, j in judged if r["llm_cited"]]
    after = [j for r, j in judged if r["action"] in ("kept", "recited")]
    dropped = [j for r, j in judged if r["action"] not in ("kept", "recited")]

    def share(items: list[dict[str, Any]], key: str) -> float | None:
        return round(sum(j[key] is True for j in items) / len(items), 4) if items else None

    return {
        "sentences_checked": len(judged),
        "llm_markers": {"sentences_with_a_marker": len(marked),
                        "cited_passage_supports": sum(j.get("llm_cited_supports") is True for j in marked)},
        "before": {"sentences": len(judged), "quote_supports": sum(j["quote_supports"] for _, j in judged),
                   "precision": share([j for _, j in judged], "quote_supports")},
        "after": {"sentences_kept_or_recited": len(after), "quote_supports": sum(j["quote_supports"] for j in after),
                  "precision": share(after, "quote_supports")},
        "dropped": {"sentences": len(dropped),
                    "some_passage_supports_it": sum(j["any_passage_supports"] is True for j in dropped)},
    }


# -- calibrate -----------------------------------------------------------------------------------
def candidates(args: argparse.Namespace) -> None:
    """Write, for each claim of the calibration drafts, its top passage sentences to label."""
    pipeline = Pipeline(Settings(index_dir=args.index))
    verifier = Verifier(pipeline.embedder)
    wanted = {q.id for q in sample(args.n, args.offset)}
    rows = [r for r in read_drafts(args.drafts).values() if r["id"] in wanted]
    out = []
    for r in rows:
        hits, _ = pipeline.retrieve(r["question"], K, r["date"])
        shown = hits[:4]
        claims = parse_claims(r["draft"])
        evidence = evidence_for(shown)
        if not claims or not evidence:
            continue
        for claim, row in zip(claims, verifier.score(claims, evidence, r["question"])):
            tops = {}
            for key in (lambda s: s.score, lambda s: s.lexical, lambda s: s.semantic):
                best = max(row, key=key)
                tops[(best.evidence.passage, best.evidence.start)] = best
            for best in tops.values():
                out.append({"key": f"{r['id']}|{claim.text[:60]}|{best.evidence.passage}:{best.evidence.start}",
                            "question": r["question"], "sentence": claim.text, "evidence": best.evidence.text,
                            "score": best.score, "lexical": best.lexical, "semantic": best.semantic,
                            "numbers_ok": best.numbers_ok, "names_ok": best.names_ok,
                            "supports": None})
    path = OUT / "label_candidates.json"
    path.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    log(f"wrote {len(out)} pairs to {path}")


def calibrate(args: argparse.Namespace) -> None:
    """Precision/recall of "supported" over the labelled pairs, for a grid of weights and thresholds."""
    labels = [p for p in json.loads(LABELS.read_text(encoding="utf-8"))["pairs"] if p["supports"] is not None]
    rows = []
    for w in (0.3, 0.4, 0.5, 0.6, 0.7):
        for t in [x / 100 for x in range(40, 86, 5)]:
            tp = fp = fn = tn = 0
            for p in labels:
                score = w * p["semantic"] + (1 - w) * p["lexical"]
                said = (p["numbers_ok"] and p["names_ok"] and score >= t
                        and not echoes_question(p["sentence"], p["question"]))
                tp += said and p["supports"]
                fp += said and not p["supports"]
                fn += (not said) and p["supports"]
                tn += (not said) and not p["supports"]
            precision = tp / (tp + fp) if tp + fp else 1.0
            recall = tp / (tp + fn) if tp + fn else 0.0
            f05 = (1.25 * precision * recall / (0.25 * precision + recall)) if precision + recall else 0.0
            rows.append({"weight_semantic": w, "threshold": t, "precision": round(precision, 3),
                         "recall": round(recall, 3), "f0.5": round(f05, 3), "tp": tp, "fp": fp, "fn": fn, "tn": tn})
    rows.sort(key=lambda r: -r["f0.5"])
    for r in rows[:12]:
        print(r)
    data = json.loads(LABELS.read_text(encoding="utf-8"))
    data["sweep_top"] = rows[:12]
    data["default"] = next(r for r in rows if r["weight_semantic"] == VerifySettings().weight_semantic
                           and abs(r["threshold"] - VerifySettings().threshold) < 1e-9)
    LABELS.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("phase", choices=("generate", "report", "candidates", "calibrate"))
    parser.add_argument("--n", type=int, default=120, help="questions (default 120)")
    parser.add_argument("--index", type=Path, default=INDEX, help=f"RealTime QA index (default {INDEX})")
    parser.add_argument("--offset", type=int, default=0, help="skip this many of the shuffled questions")
    parser.add_argument("--base-url", help="an already running OpenAI-compatible server")
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--drafts", type=Path, default=DRAFTS)
    args = parser.parse_args()
    {"generate": generate, "report": report, "candidates": candidates, "calibrate": calibrate}[args.phase](args)


if __name__ == "__main__":
    main()
