"""The ``rag`` command: each subcommand builds one Pipeline and prints what it returns.

Errors from the library are translated here, in one place, into a message and exit status 1;
arguments argparse refuses exit 2, and a reader that stops reading (``rag search --json | head``)
ends the command quietly with 141, as SIGPIPE ends cat.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, Sequence

from rag.embed import BACKENDS
from rag.errors import BadSetting, RagError
from rag.evaluate import EvalReport, evaluate, read_questions
from rag.export import answer_to_dict, hit_to_dict
from rag.ingest.web.config import parse_interval
from rag.models import Answer, Hit
from rag.pipeline import ANSWERERS, Pipeline
from rag.settings import (
    INDEX_TYPES,
    RANKERS,
    SCORER_CHOICES,
    SEARCH_MODES,
    Settings,
    parse_backend,
    parse_scorer_backend,
)
from rag.text.encoding import describe_surrogate, lone_surrogate

ENV_PREFIX = "RAG_"
SIGPIPE_EXIT = 128 + 13


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(ENV_PREFIX + name, default)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag", description="Ask questions of the news, with citations.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--index", default=_env("INDEX", "index"), metavar="DIR",
                       help="index folder (default: ./index, or $RAG_INDEX)")
        p.add_argument("--model", default=_env("MODEL"), metavar="NAME_OR_PATH",
                       help="embedding model (default: packaged all-MiniLM-L6-v2, or the index's)")
        p.add_argument("--backend", choices=BACKENDS, default=_env("BACKEND"),
                       help="what runs the model: torch, onnx or onnx-int8 (default: the index's, "
                            "onnx-int8 for a new index, or $RAG_BACKEND); ONNX files are cached in "
                            "$RAG_CACHE_DIR (default ~/.cache/newsrag)")

    p = sub.add_parser("reindex", help="build or update the index from folders or files")
    common(p)
    p.add_argument("sources", nargs="*", help="folders/files of articles, feed or article URLs, or text files "
                   "listing URLs (default: the last reindex's, and the feeds added with POST /sources)")
    p.add_argument("--full", action="store_true", help="re-embed everything instead of reusing vectors")
    p.add_argument("--index-type", choices=INDEX_TYPES, default="auto",
                   help="exact, hnsw, ivf (compressed), or auto (hnsw from --ann-threshold chunks, "
                        "ivf from --ivf-threshold)")
    # The four below, when not given, keep what the index was built with (200k, 1M, 1M and 200
    # for a new one): a bare reindex repeats the last build and reuses its vectors.
    p.add_argument("--ann-threshold", type=int, metavar="N", help="(default: the index's, or 200000)")
    p.add_argument("--ivf-threshold", type=int, metavar="N", help="(default: the index's, or 1000000)")
    p.add_argument("--keyword-shard-rows", type=int, metavar="N",
                   help="build the BM25 index in shards of at most N chunks, one at a time "
                        "(default: the index's, or 1000000)")
    p.add_argument("--chunk-tokens", type=int, metavar="N",
                   help="most body tokens a chunk holds (default: the index's, or 200); another "
                        "value embeds every chunk again")
    p.add_argument("--quiet", action="store_true", help="no progress bar, no per-file report")
    _ray_options(p)

    p = sub.add_parser("watch", help="refresh the URL sources (feeds, pages) and reindex, round after round")
    common(p)
    p.add_argument("--every", default="15m", metavar="INTERVAL",
                   help="time between the starts of two rounds: 90s, 15m, 1h (default 15m)")
    p.add_argument("--rounds", type=int, metavar="N", help="stop after N rounds (default: until Ctrl-C)")
    p.add_argument("--quiet", action="store_true", help="only the one line per round")

    p = sub.add_parser("search", help="retrieval only: ranked passages")
    common(p)
    p.add_argument("query", type=_text)
    _filters(p)
    p.add_argument("--json", action="store_true", help="print a JSON list")

    p = sub.add_parser("ask", help="a short answer with every sentence cited")
    common(p)
    p.add_argument("question", type=_text)
    _filters(p, k=8)
    p.add_argument("--as-of", metavar="YYYY-MM-DD", help="ask as of this date (default: today)")
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    p.add_argument("--answerer", choices=ANSWERERS, default="extractive",
                   help="extractive (sentences of the articles) or llm (written by a chat model, "
                        "then checked against the articles)")
    _scorer_option(p)
    _ranker_options(p)
    _llm_options(p)

    p = sub.add_parser("eval", help="measure recall, accuracy and latency on a question set")
    common(p)
    p.add_argument("questions", help="JSON Lines: id, question, answer, optional date and choices")
    p.add_argument("--mode", default="hybrid", help="one or more of hybrid,dense,keyword (comma-separated)")
    p.add_argument("--k", default="1,5,10,20", help="recall cut-offs (default 1,5,10,20)")
    p.add_argument("--answer-k", type=int, default=8, help="passages the answerer reads (default 8)")
    p.add_argument("--no-answers", action="store_true", help="retrieval metrics only")
    p.add_argument("--limit", type=int, help="only the first N questions")
    p.add_argument("--json", metavar="FILE", help="also write the report (with misses) as JSON")
    p.add_argument("--answerer", choices=ANSWERERS, default="extractive",
                   help="which answerer to measure (default extractive)")
    p.add_argument("--sentence-ranker", action="store_true",
                   help="choose answer sentences with the learned sentence ranker (an experiment: see BENCHMARKS.md)")
    p.add_argument("--cross-encoder", action="store_true",
                   help="weigh answer sentences with the answer cross-encoder too (see BENCHMARKS.md)")
    _scorer_option(p)
    _ranker_options(p)
    _llm_options(p)

    p = sub.add_parser("serve", help="serve the HTTP API (search, ask, articles, reindex)")
    common(p)
    p.add_argument("--host", default=_env("HOST", "127.0.0.1"),
                   help="address to bind (default 127.0.0.1, or $RAG_HOST)")
    p.add_argument("--port", type=int, default=_env("PORT", "8000"), help="port (default 8000, or $RAG_PORT)")
    p.add_argument("--retrieval-only", action="store_true",
                   help="serve /search, /health and /articles only (or $RAG_RETRIEVAL_ONLY=1)")
    p.add_argument("--refresh", metavar="INTERVAL", default=_env("REFRESH"),
                   help="refresh the URL sources and reindex every INTERVAL (15m, 1h; or $RAG_REFRESH), "
                        "as POST /reindex does")
    _scorer_option(p)
    _llm_options(p)  # for POST /ask {"answerer": "llm"}
    g = p.add_argument_group("serving on a Ray cluster (pip install 'newsrag[ray]')")
    g.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                   help="serve as a Ray Serve application on the cluster whose head is at ADDRESS (HOST:PORT; "
                        "without one, $RAY_ADDRESS, else a Ray started on this machine; 'auto': always this "
                        "machine); every node must see the index folder at the same path")
    g.add_argument("--replicas", type=int, metavar="N", help="with --ray: copies of the app across the "
                   "cluster, 1 CPU each (default 2)")
    return parser


def _text(value: str) -> str:
    """A query or question as argparse takes it: argument bytes that are not UTF-8 arrive as lone
    surrogates, which nothing downstream can read."""
    at = lone_surrogate(value)
    if at is not None:
        raise argparse.ArgumentTypeError(f"not text: {describe_surrogate(value, at)}; pass UTF-8 "
                                         "(is the terminal's or script's encoding UTF-8?)")
    return value


def _scorer_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scorer-backend", choices=SCORER_CHOICES, default=_env("SCORER_BACKEND"),
                   help="what embeds the question and candidate sentences of an answer: torch, onnx, "
                        "onnx-int8 (the default), or search (the search embedder); "
                        "or $RAG_SCORER_BACKEND")


def _ranker_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ranker", choices=RANKERS, default=_env("RANKER"),
                   help="how hybrid search orders an answer's passages: learned (the trained passage "
                        "ranker over a deep pool) or fusion (rank fusion and the recency re-rank); "
                        "default: the library's, or $RAG_RANKER")
    p.add_argument("--ranker-path", metavar="DIR", default=_env("RANKER_PATH"),
                   help="a ranker model folder of your own (model.txt, card.json; or $RAG_RANKER_PATH)")


def _llm_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("LLM answerer (any OpenAI-compatible server: Ollama, vLLM, llama.cpp, ...)")
    g.add_argument("--llm-base-url", metavar="URL", help="e.g. http://127.0.0.1:8080 (or $RAG_LLM_BASE_URL)")
    g.add_argument("--llm-model", metavar="NAME", help="model name the server knows (or $RAG_LLM_MODEL)")
    g.add_argument("--llm-api-key", metavar="KEY", help="bearer token, if the server wants one "
                   "(or $RAG_LLM_API_KEY)")
    g.add_argument("--llm-timeout", type=float, metavar="SECONDS", help="per request (default 60)")
    g.add_argument("--llm-max-tokens", type=int, metavar="N", help="longest answer (default 256)")
    g.add_argument("--llm-temperature", type=float, metavar="T", help="sampling temperature (default 0)")
    g.add_argument("--llm-unsupported", choices=("drop", "flag"),
                   help="what to do with a sentence no passage supports (default drop)")


def _ray_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("embedding on a Ray cluster (pip install 'newsrag[ray]')")
    g.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                   help="embed the new chunks on the Ray cluster whose head is at ADDRESS (HOST:PORT; "
                        "without one, $RAY_ADDRESS), or 'auto' to start Ray on this machine for the job")
    g.add_argument("--ray-actors", type=int, metavar="N",
                   help="embedding actors in all (default: as many as the nodes' CPUs hold)")
    g.add_argument("--ray-actors-per-node", type=int, metavar="N", help="embedding actors on each node")
    g.add_argument("--ray-cpus-per-actor", type=float, default=1.0, metavar="N",
                   help="CPUs (and model threads) per actor (default 1)")
    g.add_argument("--ray-batch", type=int, default=256, metavar="N",
                   help="chunks per Ray task, rounded up to whole model batches of 64 (default 256)")


def _ray_embedding(args: argparse.Namespace) -> Any:
    """The Ray embedding --ray asks for, or None for a local reindex (Ray is not imported then)."""
    if args.ray is None:
        if args.ray_actors is not None or args.ray_actors_per_node is not None:
            raise BadSetting("--ray-actors and --ray-actors-per-node need --ray ADDRESS")
        return None
    from rag.index.distributed import RayEmbedding, RayOptions

    address = args.ray or os.environ.get("RAY_ADDRESS")
    if not address:
        raise BadSetting("--ray without an address needs $RAY_ADDRESS: pass --ray HOST:PORT of the cluster's "
                         "head, or --ray auto to start Ray on this machine")
    return RayEmbedding(RayOptions(address=address, actors=args.ray_actors,
                                   actors_per_node=args.ray_actors_per_node,
                                   cpus_per_actor=args.ray_cpus_per_actor, batch=args.ray_batch))


def _llm_config(args: argparse.Namespace) -> Any:
    """LLMConfig from --llm-* options over $RAG_LLM_* variables, or None when neither sets one."""
    from rag.answer.llm import llm_config_from_env

    return llm_config_from_env(
        os.environ, prefix=ENV_PREFIX, base_url=args.llm_base_url, model=args.llm_model,
        api_key=args.llm_api_key, timeout=args.llm_timeout, max_tokens=args.llm_max_tokens,
        temperature=args.llm_temperature, on_unsupported=args.llm_unsupported)


def _filters(p: argparse.ArgumentParser, k: int = 10) -> None:
    p.add_argument("--k", type=int, default=k, help=f"how many passages (default {k})")
    p.add_argument("--mode", choices=SEARCH_MODES, default="hybrid")
    p.add_argument("--since", metavar="YYYY-MM-DD", help="published on or after")
    p.add_argument("--until", metavar="YYYY-MM-DD", help="published on or before")
    p.add_argument("--source", action="append", metavar="DOMAIN",
                   help="only this source (repeatable), e.g. bbc.co.uk")


def _settings(args: argparse.Namespace, **extra: Any) -> Settings:
    if args.backend is not None:  # argparse checks the option; only a bad $RAG_BACKEND fails here
        parse_backend(args.backend, f"{ENV_PREFIX}BACKEND")
    cache_dir = _env("CACHE_DIR")
    return Settings(index_dir=Path(args.index), model=args.model, backend=args.backend,
                    cache_dir=Path(cache_dir) if cache_dir else None, **_scorer_choice(args),
                    **_ranker_choice(args), **extra)


def _ranker_choice(args: argparse.Namespace) -> dict[str, Any]:
    """``ranker``/``ranker_path`` from the options or $RAG_RANKER/$RAG_RANKER_PATH, and
    ``sentence_ranker`` (``rag eval`` only); {} when unset."""
    choice: dict[str, Any] = {}
    ranker = getattr(args, "ranker", None)
    if ranker is not None:
        if ranker not in RANKERS:  # argparse checks the option; only a bad $RAG_RANKER gets here
            raise BadSetting(f"{ENV_PREFIX}RANKER={ranker!r} is not one of {', '.join(RANKERS)}")
        choice["ranker"] = ranker
    if getattr(args, "ranker_path", None):
        choice["ranker_path"] = Path(args.ranker_path)
    if getattr(args, "sentence_ranker", False):
        choice["sentence_ranker"] = True
    if getattr(args, "cross_encoder", False):
        choice["cross_encoder"] = True
    return choice


def _scorer_choice(args: argparse.Namespace) -> dict[str, Any]:
    """``{"scorer_backend": ...}`` from --scorer-backend or $RAG_SCORER_BACKEND; {} when unset."""
    scorer = getattr(args, "scorer_backend", None)
    if scorer is None:
        return {}
    # argparse checks the option; only a bad $RAG_SCORER_BACKEND (its default) fails here.
    return {"scorer_backend": parse_scorer_backend(scorer, f"{ENV_PREFIX}SCORER_BACKEND")}


def cmd_reindex(args: argparse.Namespace) -> int:
    settings = _settings(args, index_type=args.index_type, ann_threshold=args.ann_threshold,
                         ivf_threshold=args.ivf_threshold, keyword_shard_rows=args.keyword_shard_rows,
                         chunk_tokens=args.chunk_tokens, progress=not args.quiet and sys.stderr.isatty())
    summary = Pipeline(settings).reindex(args.sources, full=args.full, embed=_ray_embedding(args))
    if not args.quiet:
        for problem in summary.skipped:
            print(f"skipped {problem.origin}: {problem.reason}", file=sys.stderr)
        for problem in summary.warnings:
            print(f"warning {problem.origin}: {problem.reason}", file=sys.stderr)
        if summary.duplicates:
            print(f"skipped {len(summary.duplicates)} exact duplicates", file=sys.stderr)
    print(summary.line())
    return 0


def format_hit(hit: Hit) -> str:
    meta = ", ".join(x for x in (hit.article.source, hit.article.published_at or "undated") if x)
    body = textwrap.fill(" ".join(hit.chunk.text.split()), width=100, initial_indent="   ",
                         subsequent_indent="   ")
    lines = [f"{hit.rank}. {hit.article.title}  ({meta})  score {hit.score:.4f}"]
    if hit.article.url:
        lines.append(f"   {hit.article.url}")
    lines.append(f"   [{hit.chunk.id}, chars {hit.chunk.start}-{hit.chunk.end}]")
    lines.append(body)
    return "\n".join(lines)


def cmd_search(args: argparse.Namespace) -> int:
    hits = Pipeline(_settings(args)).search(args.query, k=args.k, mode=args.mode, since=args.since,
                                            until=args.until, source=args.source)
    if args.json:
        print(json.dumps([hit_to_dict(h) for h in hits], ensure_ascii=False, indent=2))
    elif not hits:
        print("no passages match: widen the filters or reindex more articles")
    else:
        print("\n\n".join(format_hit(h) for h in hits))
    return 0


def format_answer(answer: Answer) -> str:
    lines = [textwrap.fill(answer.text, width=100)]
    if answer.speakers:  # "What did X say?": the quoted people X may be
        lines += ["", textwrap.fill("Speakers: " + "; ".join(
            f"{s.name} ({s.quotes} quote{'' if s.quotes == 1 else 's'}, id {s.id})" for s in answer.speakers),
            width=100, subsequent_indent="  ")]
    if answer.abstained:
        lines += ["", "Closest passages:"] + [format_hit(h) for h in answer.passages[:3]]
        return "\n".join(lines)
    lines += ["", "Sources:"]
    for c in answer.citations:
        meta = ", ".join(x for x in (c.source, c.published_at or "undated") if x)
        lines.append(f"[{c.n}] {c.title} ({meta})" + (f" {c.url}" if c.url else ""))
        said = f"({c.speaker}) " if c.speaker else ""
        said = ("(NOT SUPPORTED: closest passage) " if not c.supported else "") + said
        lines.append(textwrap.fill(said + " ".join(c.quote.split()), width=100,
                                   initial_indent="    > ", subsequent_indent="      "))
        lines.append(f"    [{c.article_id}, chars {c.start}-{c.end}]")
    return "\n".join(lines)


def cmd_ask(args: argparse.Namespace) -> int:
    llm = _llm_config(args) if args.answerer == "llm" else None
    answer = Pipeline(_settings(args), llm=llm).ask(
        args.question, k=args.k, as_of=args.as_of, since=args.since, until=args.until,
        source=args.source, mode=args.mode, answerer=args.answerer)
    for warning in answer.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps(answer_to_dict(answer), ensure_ascii=False, indent=2))
    else:
        print(format_answer(answer))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    modes = [m.strip() for m in args.mode.split(",") if m.strip()]
    bad = [m for m in modes if m not in SEARCH_MODES]
    try:
        ks = sorted({int(k) for k in args.k.split(",")})
    except ValueError:
        ks = []
    if bad or not modes or not ks or ks[0] < 1:
        print(f"error: --mode takes {','.join(SEARCH_MODES)} and --k positive integers, e.g. 1,5,10", file=sys.stderr)
        return 2
    wants_llm = args.answerer == "llm" and not args.no_answers
    pipeline = Pipeline(_settings(args), llm=_llm_config(args) if wants_llm else None)
    if wants_llm:  # no LLM configured: say so before any question is asked
        pipeline.index()  # first, so the LLM answerer shares the index's embedder
        pipeline.llm_answerer()
    questions, problems = read_questions(args.questions)
    for problem in problems:
        print(f"skipped {problem.origin}: {problem.reason}", file=sys.stderr)
    questions = questions[: args.limit] if args.limit else questions
    report = evaluate(pipeline, questions, modes, ks, answer_k=args.answer_k,
                      answers=not args.no_answers, progress=sys.stderr.isatty(), answerer=args.answerer)
    print(format_report(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n",
                                   encoding="utf-8")
    return 0


def format_report(report: EvalReport) -> str:
    modes = report.modes
    ks = list(next(iter(modes.values())).recall_at) if modes else []
    head = ["mode"] + [f"R@{k}" for k in ks] + ["MRR", "acc", "strict", "abstain", "cite-ok",
                                                "retrieve p50/p95 ms", "answer p50/p95 ms"]
    rows = []
    for mode, m in modes.items():
        fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
        lat = lambda s: "-" if s not in m.latency_ms else "{p50:.0f}/{p95:.0f}".format(**m.latency_ms[s])  # noqa: E731
        rows.append([mode] + [fmt(m.recall_at[k]) for k in ks] + [
            fmt(m.mrr), fmt(m.accuracy), fmt(m.strict_accuracy), fmt(m.abstention_rate),
            fmt(m.citation_validity), lat("retrieve"), lat("answer")])
    widths = [max(len(str(r[i])) for r in [head] + rows) for i in range(len(head))]
    by = f", answers by {report.answerer}" if report.answerer else ""
    lines = [f"{report.questions} questions{by}"]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in [head] + rows]
    return "\n".join(lines)


def cmd_serve(args: argparse.Namespace) -> int:
    from api import ApiSettings, serve  # the web stack loads only for this command

    settings = ApiSettings.from_env(os.environ).replace(index_dir=Path(args.index), model=args.model,
                                                        backend=args.backend)
    if args.retrieval_only:
        settings = settings.replace(retrieval_only=True)
    settings = settings.replace(llm=_llm_config(args), **_scorer_choice(args))
    if args.refresh:
        settings = settings.replace(refresh_s=parse_interval(args.refresh, "--refresh"))
    if args.ray is None:
        if args.replicas is not None:
            raise BadSetting("--replicas needs --ray: a plain server is one process")
        return serve(settings, host=args.host, port=args.port)
    from api.ray_serve import RayServeOptions, serve_on_ray

    if settings.refresh_s:
        raise BadSetting("--refresh (or $RAG_REFRESH) with --ray would refresh from every replica: run "
                         "'rag watch --every INTERVAL' beside the cluster instead")
    address = args.ray or os.environ.get("RAY_ADDRESS") or None
    if address == "auto":  # as `rag reindex --ray auto`: a Ray of its own on this machine
        address = None
    options = RayServeOptions(address=address, replicas=2 if args.replicas is None else args.replicas,
                              host=args.host, port=args.port)
    return serve_on_ray(settings, options)


def cmd_watch(args: argparse.Namespace) -> int:
    every = parse_interval(args.every, "--every")
    pipeline = Pipeline(_settings(args))
    # A service manager's SIGTERM stops it as cleanly as Ctrl-C.
    signal.signal(signal.SIGTERM, _stop)
    rounds, started = 0, time.monotonic()
    midround = False
    try:
        while True:
            midround = True
            try:
                summary = pipeline.reindex()
            except RagError as exc:  # this round failed; the next may not (a site back up, a lock released)
                summary, error = None, exc
            # Counted done before it is reported: a Ctrl-C just after the report says "after N rounds".
            midround = False
            rounds += 1
            if summary is None:
                print(f"round {rounds}: error: {error}", file=sys.stderr)
            else:
                if not args.quiet:
                    for problem in summary.skipped:
                        print(f"skipped {problem.origin}: {problem.reason}", file=sys.stderr)
                print(f"round {rounds}: {summary.line()}", flush=True)
            if args.rounds and rounds >= args.rounds:
                return 0
            # Rounds start on the beat, however long each took; one that overran starts the next at once.
            time.sleep(max(0.0, started + rounds * every - time.monotonic()))
    except KeyboardInterrupt:
        if midround:
            print(f"stopped during round {rounds + 1}: the index is as of the last completed round; what this "
                  "round fetched is kept, and the next round indexes it", file=sys.stderr)
        else:
            print(f"stopped after {rounds} round{'' if rounds == 1 else 's'}", file=sys.stderr)
        return 0


def _stop(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


COMMANDS = {"reindex": cmd_reindex, "search": cmd_search, "ask": cmd_ask, "eval": cmd_eval,
            "serve": cmd_serve, "watch": cmd_watch}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rag`` console script."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if threading.current_thread() is threading.main_thread():
        # Started in the background by a shell (``rag watch &``, nohup), a process inherits
        # SIGINT ignored, and Python then never raises KeyboardInterrupt: Ctrl-C or a service
        # manager's SIGINT would not stop a reindex or ``rag watch`` cleanly.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        args = build_parser().parse_args(argv)
        try:
            code = COMMANDS[args.command](args)
        except RagError as exc:
            print(f"error: {exc}", file=sys.stderr)
            code = 1
        sys.stdout.flush()  # a reader that has gone shows here, not in Python's flush at exit
        return code
    except BrokenPipeError:
        # ``| head`` read what it wanted and left: stop quietly. Whatever is still buffered goes
        # to /dev/null, so that the flush at exit cannot raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return SIGPIPE_EXIT
    except KeyboardInterrupt:
        print("interrupted: the previous index is untouched", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
