"""rag eval: answer recall@k, MRR, accuracy, strict accuracy, abstention, citation validity and
latency, per search mode, on a question file in RealTime QA's format."""

from __future__ import annotations

import json

import pytest

from api.cli import main
from rag.errors import SourceError
from rag.evaluate import Question, contains, evaluate_mode, read_questions
from rag.models import Answer, Article, Chunk, Citation, Hit, Problem

QUESTIONS = [
    {"id": "q1", "date": "2022-06-10", "question": "Which city was ranked the world's most expensive for expats?",
     "choices": ["Hong Kong", "New York", "Geneva", "Tokyo"], "answer": "Hong Kong"},
    {"id": "q2", "date": "2023-11-20", "question": "How many artillery shells has North Korea sent to Russia?",
     "choices": ["a million", "ten thousand", "two million", "a hundred"], "answer": "a million"},
    {"id": "q3", "date": "2022-06-10", "question": "What did an FDA inspection find at Abbott's Sturgis plant?",
     "choices": ["bacteria", "mould", "lead", "rats"], "answer": "bacteria"},
    {"id": "q4", "date": "2022-06-20", "question": "What is the capital of France?",
     "choices": ["Paris", "Lyon", "Nice", "Lille"], "answer": "Paris"},
]
BAD_LINES = ['{not json', '{"id": "q6", "question": "Who won?"}',
             '{"id": "q7", "date": "June 2022", "question": "Who won?", "answer": "nobody"}']
METRICS = ["recall_at", "mrr", "accuracy", "strict_accuracy", "abstention_rate", "citation_validity",
           "latency_ms", "answered_by"]


@pytest.fixture()
def questions_file(tmp_path):
    path = tmp_path / "questions.jsonl"
    path.write_text("\n".join([json.dumps(q) for q in QUESTIONS] + BAD_LINES) + "\n", encoding="utf-8")
    return path


def test_eval_over_the_seeds_reports_each_mode_and_skips_bad_lines(built, questions_file, tmp_path, capsys):
    pipeline, _, _ = built
    out = tmp_path / "report.json"
    code = main(["eval", str(questions_file), "--index", str(pipeline.settings.index_dir),
                 "--mode", "hybrid,keyword", "--k", "1,5", "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr()
    assert printed.err.splitlines() == [
        f"skipped {questions_file}:5: malformed JSON: Expecting property name enclosed in double quotes",
        f"skipped {questions_file}:6: missing 'answer'",
        f"skipped {questions_file}:7: date: 'June 2022' is not a date: use YYYY-MM-DD, e.g. 2023-11-09",
    ]
    lines = printed.out.splitlines()
    assert lines[0] == "4 questions, answers by extractive"
    assert lines[1].split() == ["mode", "R@1", "R@5", "MRR", "acc", "strict", "abstain", "cite-ok",
                                "retrieve", "p50/p95", "ms", "answer", "p50/p95", "ms"]
    assert [line.split()[0] for line in lines[2:]] == ["hybrid", "keyword"]

    report = json.loads(out.read_text())
    assert list(report) == ["questions", "answerer", "modes", "misses"]
    assert (report["questions"], report["answerer"], list(report["modes"])) == (4, "extractive", ["hybrid", "keyword"])
    for mode in report["modes"].values():
        latency = mode.pop("latency_ms")
        assert list(latency) == ["retrieve", "answer"]
        assert all(list(s) == ["p50", "p95"] and 0 < s["p50"] <= s["p95"] for s in latency.values())
        # Three questions the corpus answers, found at rank 1 and answered; France is not covered.
        assert mode == {"recall_at": {"1": 0.75, "5": 0.75}, "mrr": 0.75, "accuracy": 0.75,
                        "strict_accuracy": 0.75, "abstention_rate": 0.25, "citation_validity": 1.0,
                        "answered_by": {"extractive": 1.0}}
    miss = report["misses"]["hybrid"]
    assert miss == [{"id": "q4", "question": "What is the capital of France?", "gold": "Paris", "found_at": None,
                     "answer": "The indexed news does not cover this question. The closest passages are listed below.",
                     "abstained": True}]


def test_retrieval_only_eval_has_no_answer_metrics(built, questions_file, tmp_path):
    pipeline, _, _ = built
    out = tmp_path / "report.json"
    assert main(["eval", str(questions_file), "--index", str(pipeline.settings.index_dir), "--mode", "dense",
                 "--k", "1", "--no-answers", "--limit", "2", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    dense = report["modes"]["dense"]
    assert (report["questions"], report["answerer"]) == (2, None)
    assert list(dense) == METRICS
    assert {k: dense[k] for k in METRICS if k != "latency_ms"} == {
        "recall_at": {"1": 1.0}, "mrr": 1.0, "accuracy": None, "strict_accuracy": None,
        "abstention_rate": None, "citation_validity": None, "answered_by": None}
    assert list(dense["latency_ms"]) == ["retrieve"]


def test_the_llm_answerer_needs_an_llm(built, questions_file, capsys, monkeypatch):
    for name in ("RAG_LLM_BASE_URL", "RAG_LLM_MODEL"):
        monkeypatch.delenv(name, raising=False)
    pipeline, _, _ = built
    assert main(["eval", str(questions_file), "--index", str(pipeline.settings.index_dir), "--answerer", "llm"]) == 1
    assert capsys.readouterr().err == (
        "error: no LLM is configured for the 'llm' answerer: pass --llm-base-url and --llm-model, or set "
        "RAG_LLM_BASE_URL and RAG_LLM_MODEL (library: Pipeline(..., llm=LLMConfig(base_url, model)))\n")


@pytest.mark.parametrize("args", [["--mode", "fuzzy"], ["--k", "0,5"], ["--k", "ten"]])
def test_bad_modes_and_cutoffs_are_refused(built, questions_file, capsys, args):
    pipeline, _, _ = built
    assert main(["eval", str(questions_file), "--index", str(pipeline.settings.index_dir), *args]) == 2
    assert capsys.readouterr().err == (
        "error: --mode takes hybrid,dense,keyword and --k positive integers, e.g. 1,5,10\n")


def test_an_unreadable_question_file_is_an_error(tmp_path):
    with pytest.raises(SourceError) as caught:
        read_questions(tmp_path / "missing.jsonl")
    assert str(caught.value).startswith(f"cannot read questions from {tmp_path / 'missing.jsonl'}: ")
    assert str(caught.value).endswith(": pass a UTF-8 JSON Lines file")


# -- the scoring itself, on crafted passages and answers ------------------------------------------

ARTICLE = Article(id="a", title="Fed raises rates", text="The Fed raised rates by 75 basis points. Powell spoke.")


def _hit(rank: int, text: str) -> Hit:
    start = ARTICLE.text.find(text)
    return Hit(Chunk(f"a#{rank}", "a", rank, start, start + len(text), text), 1.0 / rank, ARTICLE, rank)


def _answer(text: str, quote: str, start: int) -> Answer:
    return Answer("q", text, False, [Citation(1, "a", ARTICLE.title, None, None, None, quote, start,
                                              start + len(quote))])


def test_strict_accuracy_wants_no_other_choice_and_citations_are_checked_at_their_offsets():
    questions = [Question("1", "How much did the Fed raise rates?", "75 basis points", None,
                          ("75 basis points", "50 basis points")),
                 Question("2", "Who spoke?", "Powell", None, ("Powell", "Yellen"))]
    hits = {"1": [_hit(1, "Powell spoke."), _hit(2, "The Fed raised rates by 75 basis points.")],
            "2": [_hit(1, "Powell spoke.")]}
    answers = {
        # Right, but hedged with the other choice: accurate, not strictly accurate. Valid citation.
        "1": _answer("By 75 basis points, not 50 basis points [1]", "The Fed raised rates by 75 basis points.", 0),
        # Right, with a citation whose offsets do not hold its quote.
        "2": _answer("Powell [1]", "Powell spoke.", 3),
    }
    report = evaluate_mode(questions, [1, 2], lambda q, k: hits[q.id], lambda q, h: answers[q.id], answer_k=2)
    assert (report.recall_at, report.mrr) == ({"1": 0.5, "2": 1.0}, 0.75)
    assert (report.accuracy, report.strict_accuracy, report.abstention_rate) == (1.0, 0.5, 0.0)
    assert report.citation_validity == 0.5
    assert report.answered_by == {"extractive": 1.0}


def test_bad_question_lines_are_problems_not_exceptions(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text('[1, 2]\n\n{"question": " ", "answer": "x"}\n{"question": "Who?", "answer": "Ann", "id": 7}\n')
    questions, problems = read_questions(path)
    assert questions == [Question("7", "Who?", "Ann")]
    assert problems == [Problem(f"{path}:1", "not a JSON object"), Problem(f"{path}:3", "missing 'question'")]


@pytest.mark.parametrize("text, answer, found", [
    ("Penny Marshall starred in \u201cLaverne & Shirley\u201d.", '"Laverne & Shirley"', True),  # quotes differ
    ("Penny Marshall starred in Laverne & Shirley.", "laverne & shirley", True),  # case differs
    ("The U.S. economy grew 2.6%.", "US economy", True),  # dots in an abbreviation
    # Loose, as the dataset's own scoring is: "2.6%" and "2.6 percent" both hold "26".
    ("Prices rose 2.6 percent.", "2.6%", True),
    ("Jean-Pierre left.", "Jean Pierre", False),  # a hyphen joins, it is not a space
    ("Biden's plan passed.", "Biden", True),  # contained, as before
    ("Nothing here.", "", False),  # an empty gold answer matches nothing
])
def test_an_answer_is_contained_when_case_and_punctuation_aside_it_is_there(text, answer, found):
    assert contains(text, answer) is found
