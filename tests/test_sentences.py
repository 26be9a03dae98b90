"""split_sentences: offset-exact sentences for news text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rag.text.sentences import split_sentences

SEED = Path(__file__).resolve().parent.parent / "seeds" / "000_29be564519ffc8c1.txt"


def sentences(text: str) -> list[str]:
    return [text[start:end] for start, end in split_sentences(text)]


def assert_covers(text: str, spans: list[tuple[int, int]]) -> None:
    """Spans are in order, hold no outer whitespace, and cover all non-whitespace text."""
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
    assert all(text[s:e] == text[s:e].strip() and e > s for s, e in spans)
    assert "".join(text[s:e] for s, e in spans).replace(" ", "") == re.sub(r"\s+", "", text)
    gaps = [text[e:s] for (_, e), (s, _) in zip(spans, spans[1:])]
    assert all(gap.strip() == "" for gap in gaps)


def test_plain_sentences_with_exact_offsets():
    text = "  One.  Two?\n\n Three "
    assert split_sentences(text) == [(2, 6), (8, 12), (15, 20)]


def test_exclamation_question_and_ellipsis_end_sentences():
    assert sentences("Really? Yes! It works\u2026 Great.") == [
        "Really?",
        "Yes!",
        "It works\u2026",
        "Great.",
    ]


def test_a_lowercase_continuation_never_starts_a_sentence():
    assert sentences("Shares fell 5 p.m. and rose again. 2023 was worse.") == [
        "Shares fell 5 p.m. and rose again.",
        "2023 was worse.",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "Mr. Smith met Dr. Jones and Mrs. Lee.",
        "The U.S. Army and the U.N. Security Council met in the U.K. Parliament.",
        "J. K. Rowling and George R. R. Martin met.",
        "They met at 10 a.m. Friday and left at 4 p.m. Saturday.",
        "Gov. Newsom and Sen. Warren flew to St. Louis on Jan. 6 with Lt. Col. Vindman.",
        "Apple Inc. Chief Tim Cook met Samsung Co. Ltd. Officials at No. 10 Downing St.",
        "Texas vs. Oklahoma, e.g. Football, i.e. Money, Smith et al. Found it.",
    ],
)
def test_abbreviations_initials_and_acronyms_do_not_end_sentences(text):
    assert sentences(text) == [text]


def test_abbreviations_are_case_sensitive():
    assert sentences("He said no. Then he left.") == ["He said no.", "Then he left."]


def test_a_quotation_with_several_sentences_stays_whole():
    text = (
        "Secretary Blinken said, \u201cNorth Korea\u2019s missile launches are dangerous. "
        "These are not only evasions.\u201d Minister Park said, \u201cNo.\u201d"
    )
    assert sentences(text) == [
        "Secretary Blinken said, \u201cNorth Korea\u2019s missile launches are dangerous. "
        "These are not only evasions.\u201d",
        "Minister Park said, \u201cNo.\u201d",
    ]


def test_straight_double_quotes_toggle():
    assert sentences('He said, "It is over. We lost." Then he left. "Why? Ask them." Fine.') == [
        'He said, "It is over. We lost."',
        "Then he left.",
        '"Why? Ask them."',
        "Fine.",
    ]


def test_curly_single_quotes_are_quotes_but_apostrophes_are_not():
    text = (
        "Korea\u2019s leaders\u2019 plans failed. He called it \u2018a mistake. A big one.\u2019 "
        "Seoul\u2019s reply came. Don't worry. It's fine."
    )
    assert sentences(text) == [
        "Korea\u2019s leaders\u2019 plans failed.",
        "He called it \u2018a mistake. A big one.\u2019",
        "Seoul\u2019s reply came.",
        "Don't worry.",
        "It's fine.",
    ]


def test_korean_press_quote_closed_by_straight_then_curly_quote():
    text = (
        "Both sides agreed to \u201cstrengthen the U.S.\u2019s \u2018extended deterrence'\u201d "
        "against threats. Secretary Blinken said, \u201cIt works. It holds.\u201d Minister Park agreed."
    )
    assert sentences(text) == [
        "Both sides agreed to \u201cstrengthen the U.S.\u2019s \u2018extended deterrence'\u201d "
        "against threats.",
        "Secretary Blinken said, \u201cIt works. It holds.\u201d",
        "Minister Park agreed.",
    ]


def test_closing_brackets_belong_to_the_sentence():
    assert sentences("(This is an aside.) Then more [sic.] Done.") == [
        "(This is an aside.)",
        "Then more [sic.]",
        "Done.",
    ]


def test_a_newline_always_ends_a_sentence():
    assert sentences("Headline without a period\nBy Jane Doe\r\nFirst line, \u201cstill going\nNew para.") == [
        "Headline without a period",
        "By Jane Doe",
        "First line, \u201cstill going",
        "New para.",
    ]


def test_an_unbalanced_quote_cannot_swallow_its_paragraph():
    text = "\u201cThe war goes on. Nobody knows when it ends.\n\u201cWe wait,\u201d she said. Then she left."
    assert sentences(text) == [
        "\u201cThe war goes on.",
        "Nobody knows when it ends.",
        "\u201cWe wait,\u201d she said.",
        "Then she left.",
    ]


def test_start_and_end_select_a_range_with_offsets_into_the_whole_text():
    text = "Skip this. Take this. And this. Not this."
    assert split_sentences(text, 11, 31) == [(11, 21), (22, 31)]


def test_empty_and_blank_text_have_no_sentences():
    assert split_sentences("") == []
    assert split_sentences(" \n\t\n ") == []


def test_seed_article_keeps_each_quotation_whole():
    text = SEED.read_text(encoding="utf-8")
    spans = split_sentences(text)
    assert_covers(text, spans)
    last_paragraph = text.index("Both the U.S. and South Korea")
    assert sentences(text[last_paragraph : text.index("\n", last_paragraph)]) == [
        "Both the U.S. and South Korea reaffirmed their stance at the meeting that day to "
        "\u201ccontinue to closely cooperate to strengthen the execution power of the U.S.\u2019s "
        "\u2018extended deterrence'\u201d against North Korea\u2019s nuclear and missile development "
        "and provocation threats.",
        "Secretary Blinken said, \u201cNorth Korea\u2019s missile launches and pursuit of weapons of "
        "mass destruction are dangerous. These are not only evasions of UN Security Council "
        "resolutions but also dangerous and undermine security.\u201d",
        "Minister Park said, \u201cThe U.S. and South Korea will continue to race to make efforts to "
        "make North Korea abandon its nuclear and missile development,\u201d and urged North Korea "
        "to stop all provocations, including the launch of artificial satellites.",
    ]
    assert len(spans) == 19


def test_messy_text_is_fully_covered_in_order():
    text = (
        "\u201cOpen. \u2018nested. \"deep.\" x.\u2019 y.\u201d Z? \u2026 'q' W! ) ] (A.) [B.]\n\n"
        "\u201990s. \u201d Odd\u201c. End\u2026\u201d \u201c\n  ' \" \u2018 \u2019 \u201c \u201d . ! ?"
    )
    assert_covers(text, split_sentences(text))


def test_a_megabyte_of_news_splits_and_stays_covered():
    # A sanity run over a lot of text; the speed itself is measured in the benchmark.
    text = "\n".join([SEED.read_text(encoding="utf-8")] * 250)
    spans = split_sentences(text)
    assert len(spans) == 19 * 250
    assert_covers(text, spans)
