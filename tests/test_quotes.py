"""extract_quotes, asked_speaker, same_person: who said what, for "What did X say about Y?"."""

from __future__ import annotations

import pytest

import rag.text.quotes
from conftest import AP_FED, BBC_ARMS, CNN_FORMULA, REUTERS_CITY, SEED, UNDATED_LOCAL
from rag.models import Article, Quote
from rag.text.quotes import asked_speaker, asked_topic, extract_quotes, person_key, same_person


def quotes(text: str) -> list[tuple[str | None, str, str]]:
    """(speaker, kind, text) of every statement in ``text``, checking each span on the way."""
    found = extract_quotes(Article(id="a", title="", text=text))
    assert all(text[q.start:q.end] == q.text and q.article_id == "a" for q in found)
    return [(q.speaker, q.kind, q.text) for q in found]


def heads(text: str, width: int = 40) -> list[tuple[str | None, str, str]]:
    return [(speaker, kind, said[:width]) for speaker, kind, said in quotes(text)]


def body(markdown: str) -> str:
    return markdown.split("---\n", 2)[2]


# -- the seed article ---------------------------------------------------------------------------
def test_seed_article_credits_blinken_and_park_by_full_name():
    assert heads(SEED.read_text(encoding="utf-8")) == [
        ("Antony Blinken", "direct", "During his visit to South Korea on the 9"),
        ("Antony Blinken", "direct", "At a joint press conference following th"),
        ("Antony Blinken", "direct", "Secretary Blinken expressed that such mi"),
        ("Antony Blinken", "direct", "Secretary Blinken emphasized that “China"),
        ("Park Jin", "direct", "Minister Park said, “I don’t think China"),
        ("Antony Blinken", "direct", "Secretary Blinken said, “North Korea’s m"),
        ("Park Jin", "direct", "Minister Park said, “The U.S. and South "),
    ]


def test_seed_statements_are_whole_sentences_with_exact_offsets():
    text = SEED.read_text(encoding="utf-8")
    found = extract_quotes(Article(id="seed", title="", text=text))
    blinken = next(q for q in found if q.text.startswith("Secretary Blinken emphasized"))
    assert blinken == Quote(
        article_id="seed",
        start=text.index("Secretary Blinken emphasized"),
        end=text.index("dangerous behavior.”") + len("dangerous behavior.”"),
        text="Secretary Blinken emphasized that “China must play a constructive role by "
        "exerting such influence to deter North Korea from irresponsible and dangerous behavior.”",
        speaker="Antony Blinken",
        kind="direct",
    )
    narrative = text.index("In the current situation where instability")
    assert not any(q.start <= narrative < q.end for q in found)
    assert all(text[q.start:q.end] == q.text for q in found)


# -- the test corpus ------------------------------------------------------------------------------
def test_named_sources_and_unnamed_officials_in_the_bbc_story():
    assert heads(body(BBC_ARMS)) == [
        ("South Korea's spy agency", "reported", "North Korea has sent more than a million"),
        ("National Intelligence Service", "reported", "The National Intelligence Service (NIS) "),
        ("an NIS official", "direct", '"The shells would last Russia about two '),
        ("Washington", "reported", "Washington has warned that any arms deal"),
    ]


def test_a_company_statement_keeps_the_company_as_speaker():
    assert heads(CNN_FORMULA["text"]) == [
        ("the company", "reported", "Abbott has restarted production at its S"),
        ("Abbott", "direct", "“We will ramp up production as quickly a"),
        ("the company", "reported", "The company said new formula would reach"),
    ]


def test_a_surname_resolves_to_the_full_name_given_earlier():
    assert heads(AP_FED["text"]) == [
        ("Jerome Powell", "reported", "Chair Jerome Powell said the Fed was det"),
        ("Jerome Powell", "direct", "“We're not trying to induce a recession "),
    ]


def test_according_to_and_an_apposition():
    assert heads(REUTERS_CITY["text"]) == [
        ("a survey by ECA International", "reported", "Hong Kong has been ranked the world's mo"),
        ("Lee Quane", "reported", "Lee Quane, ECA's regional director for A"),
    ]
    assert heads(UNDATED_LOCAL) == [
        ("Maria Lopez", "reported", "Councillor Maria Lopez said the lanes wo"),
    ]


# -- attribution patterns ---------------------------------------------------------------------
def test_speaker_after_the_verb_loses_the_title():
    assert quotes("“We will not back down,” said Defense Minister Lee Jong-sup. "
                  "The talks ended on Friday.") == [
        ("Lee Jong-sup", "direct",
         "“We will not back down,” said Defense Minister Lee Jong-sup."),
    ]


@pytest.mark.parametrize("sentence, speaker, kind", [
    ("“Still to this day, he’ll use Sean’s story,” said his longtime office manager, Amy Hunt.",
     "Amy Hunt", "direct"),
    ("“We may be witnessing a collapse,” said Jepsen of the Xerces Society.", "Jepsen", "direct"),
    ("“There's nobody here,” Keri Huesing, owner of Yellowstone Gateway Inn, told CNN.",
     "Keri Huesing", "direct"),
    ("Brian Fallon, a former senior Democratic Senate aide who's the executive director of Demand "
     "Justice, says Democrats share the blame.", "Brian Fallon", "reported"),
    ("Kristine Schellhaas with the Idaho Humane Society told KBOI-TV that owners can’t pay.",
     "Kristine Schellhaas", "reported"),
    ("The rate will rise, said labor economist Nick Bunker.", "Nick Bunker", "reported"),
    ("Shots could come by June, according to the US Food and Drug Administration.",
     "US Food and Drug Administration", "reported"),
    ("State public health officials said a fourth resident has died.",
     "State public health officials", "reported"),
    ("Carragher’s attorney, Donald Temple, said the contract is illegal.", "Donald Temple",
     "reported"),
    ("The company, which Smith founded in 1990, said sales rose.", "the company", "reported"),
    ("“Share has dwindled,” said S&P Capital analyst Angelo Zino.", "Angelo Zino", "direct"),
    ("“He will not figure in the Scotland game,” said Wales physio Mark Davies.", "Mark Davies", "direct"),
    ("“We were poor,” said England coach Andy Robinson on Sunday.", "Andy Robinson", "direct"),
    ("The Centers for Disease Control and Prevention warned of aggressive rats.",
     "Centers for Disease Control and Prevention", "reported"),
    ("American officials have since downplayed it, saying China may rethink.",
     "American officials", "reported"),
    ("Donald Trump Jr. texted Meadows. Trump Jr. argues that they should press on.",
     "Donald Trump Jr.", "reported"),
])
def test_who_a_single_sentence_credits(sentence, speaker, kind):
    assert [(s, k) for s, k, _ in quotes(sentence)] == [(speaker, kind)]


# -- British titles, parties and offices (BBC News) ---------------------------------------------
@pytest.mark.parametrize("sentence, speaker", [
    ("Chancellor of the Exchequer Gordon Brown said the summit had gone well.", "Gordon Brown"),
    ("\u201cIt is a first,\u201d said UK Chancellor of the Exchequer Gordon Brown.", "Gordon Brown"),
    ("Tory Dominic Grieve said the plan was flawed.", "Dominic Grieve"),
    ("Fellow Lib Dem Norman Baker said the episode was unflattering.", "Norman Baker"),
    ("\u201cThis is typical of Lib Dem hypocrisy,\u201d said Tory shadow local government secretary "
     "Caroline Spelman.", "Caroline Spelman"),
    ("\u201cI'm extremely disappointed,\u201d said Rangers manager Alex McLeish of Novo's punishment.",
     "Alex McLeish"),
    ("The Higher Education Minister, Kim Howells, said the schools were improving.", "Kim Howells"),
    ("Scottish Finance Minister, Tom McCabe MSP, said the sum was an increase.", "Tom McCabe"),
    ("Ben Emmerson QC, representing seven of the detainees, said the men were held without trial.",
     "Ben Emmerson"),
])
def test_a_title_party_or_honour_around_a_name_is_no_part_of_it(sentence, speaker):
    assert [s for s, _, _ in quotes(sentence)] == [speaker]


def test_an_office_named_after_its_holder_is_not_the_holder_of_an_earlier_one():
    assert quotes("Health Minister Andy Kerr spoke first. Scottish Finance Minister, Tom McCabe MSP, "
                  "said the sums were fine.") == [
        ("Tom McCabe", "reported", "Scottish Finance Minister, Tom McCabe MSP, said the sums were fine."),
    ]


def test_a_party_or_an_office_is_never_a_person():
    # The party speaks for itself, and "he" is nobody it names.
    assert quotes("A judge should look into the affair, the Lib Dems say. \u201cWe want answers,\u201d he said.") == [
        ("Lib Dems", "reported", "A judge should look into the affair, the Lib Dems say."),
    ]
    # An office alone is its holder only where the article named one.
    assert quotes("The Culture Secretary said the move showed she listened to critics.") == []
    assert quotes("Culture Secretary Tessa Jowell was in Leeds. The Culture Secretary said she listened.") == [
        ("Tessa Jowell", "reported", "The Culture Secretary said she listened."),
    ]


def test_he_is_the_person_named_after_a_party_and_a_role():
    assert quotes("Lib Dem leader Charles Kennedy repeated his call for a pause. "
                  "He told the BBC that the plan was wrong.") == [
        ("Charles Kennedy", "continued", "He told the BBC that the plan was wrong."),
    ]


def test_a_pronoun_continues_the_last_speaker():
    assert quotes("Chancellor Olaf Scholz said the plan was sound. "
                  "He added that Germany would pay its share. Markets rose.") == [
        ("Olaf Scholz", "reported", "Chancellor Olaf Scholz said the plan was sound."),
        ("Olaf Scholz", "continued", "He added that Germany would pay its share."),
    ]


def test_she_skips_a_man_named_since():
    assert quotes("Ms. Lee Min-ji chaired the meeting. Mr. Kim Tae-ho spoke first. "
                  "“It went well,” she said.") == [
        ("Lee Min-ji", "continued", "“It went well,” she said."),
    ]


def test_a_bare_quotation_continues_the_quote_before_it():
    assert quotes("“Prices are too high,” Powell said. “We will act.”") == [
        ("Powell", "direct", "“Prices are too high,” Powell said."),
        ("Powell", "continued", "“We will act.”"),
    ]


def test_a_quote_runs_on_into_the_next_paragraph_but_not_past_narrative():
    text = ("“Prices are too high,” Jerome Powell said.\n\n“We will act. We have the tools.”\n\n"
            "Markets fell.\n\n“Buy the dip.”")
    assert quotes(text) == [
        ("Jerome Powell", "direct", "“Prices are too high,” Jerome Powell said."),
        ("Jerome Powell", "continued", "“We will act. We have the tools.”"),
    ]


def test_two_speakers_in_one_paragraph_keep_their_own_words():
    text = ("Kim Jong Un said the launch was a success. South Korean President Yoon Suk Yeol "
            "called it “a grave provocation.” Kim said more launches would follow.")
    assert quotes(text) == [
        ("Kim Jong Un", "reported", "Kim Jong Un said the launch was a success."),
        ("Yoon Suk Yeol", "direct",
         "South Korean President Yoon Suk Yeol called it “a grave provocation.”"),
        ("Kim Jong Un", "reported", "Kim said more launches would follow."),
    ]


def test_words_inside_a_quotation_never_name_the_speaker():
    assert quotes("“Smith said no to everything,” Jones told reporters.") == [
        ("Jones", "direct", "“Smith said no to everything,” Jones told reporters."),
    ]


def test_a_bare_title_resolves_to_the_person_who_held_it():
    assert quotes("After meeting Foreign Minister Park Jin, Blinken flew home. "
                  "The minister said the talks were frank.") == [
        ("Park Jin", "reported", "The minister said the talks were frank."),
    ]


def test_a_spokesman_is_not_the_person_he_speaks_for():
    found = quotes("Antony Blinken visited Seoul. Blinken's spokesman said the trip went well.")
    assert found == [
        ("Blinken's spokesman", "reported", "Blinken's spokesman said the trip went well."),
    ]
    assert not same_person("Blinken", found[0][0])


@pytest.mark.parametrize("text", [
    "The so-called “special military operation” began in February.",  # scare quotes
    "“Peace now.” Crowds gathered outside.",  # a quotation nobody is credited with
    "He said the vote was rigged.",  # a pronoun with nobody to refer to
    "“This never closes, he said. Then he left",  # unbalanced marks
    "",
])
def test_statements_without_a_speaker_are_left_out(text):
    assert quotes(text) == []


# -- questions --------------------------------------------------------------------------------
@pytest.mark.parametrize("question, person", [
    ("What did Blinken say about China?", "Blinken"),
    ("What does Secretary Antony Blinken think of the deal?", "Antony Blinken"),
    ("What did U.S. Secretary of State Antony Blinken emphasize?", "Antony Blinken"),
    ("How did Powell describe inflation?", "Powell"),
    ("What has Park Jin said about North Korea?", "Park Jin"),
    ("What was Zelensky's message to Congress?", "Zelensky"),
    ("According to Fauci, when will the pandemic end?", "Fauci"),
    ("what did blinken say about china", "blinken"),
    ("What did the Fed chair warn about?", None),
    ("What did Biden's spokesperson say?", None),
    ("What did the company announce?", None),
    ("Who won the election?", None),
    ("What is the capital of France?", None),
])
def test_asked_speaker(question, person):
    assert asked_speaker(question) == person


@pytest.mark.parametrize("question, topic", [
    ("What did Charles Kennedy say about Lib Dems target first-time buyers?", "Lib Dems target first-time buyers"),
    ("What did Moyes say about Moyes U-turn on Beattie dismissal?", "Moyes U-turn on Beattie dismissal"),
    ("What does Secretary Antony Blinken think of the deal?", "the deal"),
    ("What has Park Jin said on North Korea?", "North Korea"),
    ("What did Blair say on Monday about Iraq?", "Iraq"),
    ("what did blinken say about china", "china"),
    ("What did Blinken say?", None),
    ("How did Powell describe inflation?", None),
    ("Which world leader did Boris Johnson accuse of being a bully?", None),
])
def test_asked_topic(question, topic):
    assert asked_topic(question) == topic


@pytest.mark.parametrize("asked, speaker, same", [
    ("Blinken", "Antony Blinken", True),
    ("Park", "Park Jin", True),
    ("Antony Blinken", "Antony Blinken", True),
    ("blinken", "ANTONY BLINKEN", True),
    ("Secretary Blinken", "Antony Blinken", True),
    ("Powell", "Jerome H. Powell", True),
    ("Park Jin", "Antony Blinken", False),
    ("Kim Jong Un", "Kim Yo Jong", False),
    ("Stephen King", "Stephen Colbert", False),
    ("King", "Stephen King", True),
    ("Blinken", None, False),
    ("Blinken", "Blinken's spokesman", False),
    ("NIS", "an NIS official", False),
])
def test_same_person(asked, speaker, same):
    assert same_person(asked, speaker) is same


# -- the module itself ------------------------------------------------------------------------
def test_public_surface():
    assert rag.text.quotes.__all__ == [
        "asked_speaker", "asked_topic", "asks_what_was_said", "extract_quotes", "name_key", "person_key", "same_person"]


@pytest.mark.parametrize("speaker, key", [
    ("Tony Blair", ("tony", "blair")),
    ("Mr. Tony Blair", ("tony", "blair")),
    ("Jos\u00e9 P\u00e9rez", ("jose", "perez")),
    ("Joe R. Biden", ("joe", "biden")),
    ("Beto O\u2019Rourke", ("beto", "o'rourke")),
    ("an NIS official", ()),
    ("the company", ()),
    ("South Korea\u2019s spy agency", ()),
    ("National Intelligence Service", ()),
    ("NASA", ()),
    (None, ()),
    # Titles and parties, as indexes built before they were known hold them.
    ("Exchequer Gordon Brown", ("gordon", "brown")),
    ("Tory Dominic Grieve", ("dominic", "grieve")),
    ("Lib Dems", ()),
    ("New Labour", ()),
    ("Senior Tories", ()),
    ("Tory", ()),
    ("Minister", ()),
    ("Culture Secretary", ()),
    ("Mervyn King", ("mervyn", "king")),
])
def test_person_key_names_people_and_no_other_source(speaker, key):
    assert person_key(speaker) == key
