"""Who said what, across the whole corpus: the speaker index, and answers to "What did X say?".

The questions run on the real model over a real index of the shared test corpus plus four
articles of this module's own: Tony Blair named four ways, two different Taylors, and a harbour
master whose one remark on a sea wall is buried in a festival report, next to a whole article
of other people talking about that sea wall.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import write_corpus

from api.cli import format_answer
from rag import Answer, BadSetting, Citation, Pipeline, Settings, Speaker
from rag.export import answer_to_dict, speaker_to_dict
from rag.search.speakers import SpeakerIndex

AS_OF = "2023-11-20"

BLAIR_IRAQ = """---
title: Blair wins Commons backing for military action in Iraq
date: 2003-03-18
source: bbc.co.uk
url: https://news.bbc.co.uk/1/hi/uk_politics/2862397.stm
author: Nick Assinder
---
Prime Minister Tony Blair has won the backing of MPs for military action against Iraq after a ten-hour Commons debate.
Opening the debate, Mr Blair said, \u201cThis is the time for this House, not just this government, to give a lead.\u201d
Conservative leader Iain Duncan Smith said his party would vote with the government. \u201cWeapons inspectors have had twelve years, and Saddam Hussein has defied them at every turn,\u201d Mr Duncan Smith said. Blair said Britain could not wait for ever while Iraq kept its weapons hidden.
Later, the prime minister said he would not resign if the vote went against him.
Robin Cook resigned from the cabinet on Monday in protest at the government's policy.
"""

BLAIR_ARMY = """---
title: Blair defends army shake-up as battalions are cut
date: 2004-07-21
source: theguardian.com
url: https://www.theguardian.com/politics/2004/jul/21/military.uk
author: Richard Norton-Taylor
---
Tony Blair insisted on Wednesday that the armed forces would be better equipped despite the loss of four infantry battalions.
\u201cOur forces will be smaller but far more capable,\u201d Tony Blair told reporters at Downing Street.
Defence minister Ann Taylor said the new structure would let the army deploy faster. \u201cWe are buying more helicopters and better armoured vehicles,\u201d Ms Taylor said. Ms Taylor added that the changes would be complete by 2008.
Critics said the cuts came while troops were stretched in Iraq.
"""

FALMOUTH_FESTIVAL = """---
title: Thousands flock to Falmouth harbour festival
date: 2022-08-14
source: cornwalllive.com
url: https://www.cornwalllive.com/news/cornwall-news/falmouth-harbour-festival-2022
author: Lee Trewhela
---
Thousands of visitors packed Falmouth harbour on Saturday for the town's annual sea shanty and music festival.
Queen drummer Roger Taylor, who grew up in Cornwall, headlined the main stage with a set of rock classics. \u201cPlaying by the water in front of a home crowd is the best gig of the summer,\u201d Roger Taylor said.
Food stalls along the quay sold crab sandwiches, pasties and local ice cream, and queues stretched past the lifeboat station. Children's sandcastle competitions and a tall ship parade filled the afternoon, and the lifeboat crew gave tours of their boat. Harbour master Marta Jensen said, \u201cThe new sea wall will protect the harbour from winter storms for the next fifty years.\u201d A fireworks display over the water closed the festival at midnight, and buses ran late for visitors.
\u201cWe have already booked bands for next year,\u201d Taylor added.
"""

SEA_WALL = """---
title: Work begins on Falmouth's new sea wall
date: 2022-08-10
source: bbc.co.uk
url: https://www.bbc.co.uk/news/uk-england-cornwall-62480000
author: Jenny Walrond
---
Work has started on a \u00a312m sea wall to protect Falmouth harbour from winter storms, with harbour master Marta Jensen and council leaders watching the first granite block laid.
Tom Reyes, an engineer with the Environment Agency, said the sea wall would be built from granite blocks to withstand winter storms and spring tides.
\u201cA sea wall like this protects a harbour from the worst winter storms,\u201d said project manager Claire Fenwick, who showed Marta Jensen the plans on Tuesday.
Councillor Peter Hale said the sea wall was long overdue. \u201cWinter storms have battered this harbour for decades, and the sea wall will finally stop the flooding,\u201d Mr Hale said.
The sea wall will rise four metres above the spring high tide line and run for 600 metres along the harbour front, the Environment Agency said. \u201cWithout a sea wall, the next big winter storm could flood the harbour again,\u201d Ms Fenwick said.
Residents said storms in 2020 flooded homes and shops along the harbour front.
"""

ARTICLES = {"blair-iraq.md": BLAIR_IRAQ, "blair-army.md": BLAIR_ARMY,
            "falmouth-festival.md": FALMOUTH_FESTIVAL, "sea-wall.md": SEA_WALL}

JENSEN = "Harbour master Marta Jensen said, \u201cThe new sea wall will protect the harbour from winter storms for the next fifty years.\u201d"
DUNCAN_SMITH = "\u201cWeapons inspectors have had twelve years, and Saddam Hussein has defied them at every turn,\u201d Mr Duncan Smith said."

TONY_BLAIR = Speaker(id="tony-blair", name="Tony Blair", quotes=5)
ANN_TAYLOR = Speaker(id="ann-taylor", name="Ann Taylor", quotes=3)
ROGER_TAYLOR = Speaker(id="roger-taylor", name="Roger Taylor", quotes=2)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, embedder) -> Pipeline:
    """A real index of the shared corpus and the articles above, in short passages (64 tokens),
    as a long article would be cut."""
    root = tmp_path_factory.mktemp("speakers")
    corpus = write_corpus(root / "news")
    (corpus / "speakers").mkdir()
    for name, text in ARTICLES.items():
        (corpus / "speakers" / name).write_text(text, encoding="utf-8")
    pipeline = Pipeline(Settings(index_dir=root / "index", chunk_tokens=64), embedder=embedder)
    pipeline.reindex([corpus])
    return pipeline


def _all_citations(pipeline: Pipeline) -> list[Citation]:
    return [c for s in pipeline.speakers(limit=100) for c in pipeline.speaker_quotes(s.id, limit=100)[1]]


def assert_verbatim(pipeline: Pipeline, citations: list[Citation]) -> None:
    for c in citations:
        article = pipeline.article(c.article_id)
        assert article.text[c.start:c.end] == c.quote
        assert (c.title, c.source, c.url, c.published_at) == (
            article.title, article.source, article.url, article.published_at)


# -- the speaker index --------------------------------------------------------------------------
def test_every_way_an_article_names_a_person_is_that_person(pipeline):
    speaker, quotes = pipeline.speaker_quotes("tony-blair")
    assert speaker == TONY_BLAIR
    # Newest article first; "Tony Blair", "Mr Blair", "Blair" and "the prime minister" alike.
    assert [(c.n, c.published_at, c.speaker, c.quote) for c in quotes] == [
        (1, "2004-07-21", "Tony Blair", "Tony Blair insisted on Wednesday that the armed forces would be better "
                                        "equipped despite the loss of four infantry battalions."),
        (2, "2004-07-21", "Tony Blair", "\u201cOur forces will be smaller but far more capable,\u201d Tony Blair "
                                        "told reporters at Downing Street."),
        (3, "2003-03-18", "Tony Blair", "Opening the debate, Mr Blair said, \u201cThis is the time for this House, "
                                        "not just this government, to give a lead.\u201d"),
        (4, "2003-03-18", "Tony Blair", "Blair said Britain could not wait for ever while Iraq kept its weapons hidden."),
        (5, "2003-03-18", "Tony Blair", "Later, the prime minister said he would not resign if the vote went against him."),
    ]
    assert_verbatim(pipeline, quotes)


def test_the_same_full_name_in_two_articles_is_one_speaker(pipeline):
    assert pipeline.speakers("blair") == [TONY_BLAIR]
    assert pipeline.speakers("Mr. BLAIR") == [TONY_BLAIR]
    assert {c.title for c in pipeline.speaker_quotes("tony-blair")[1]} == {
        "Blair wins Commons backing for military action in Iraq", "Blair defends army shake-up as battalions are cut"}


def test_everyone_quoted_is_listed_most_quoted_first_and_sources_that_are_no_person_are_not(pipeline):
    assert pipeline.speakers() == [
        Speaker("antony-blinken", "Antony Blinken", 5),
        TONY_BLAIR,
        ANN_TAYLOR,
        Speaker("claire-fenwick", "Claire Fenwick", 2),
        Speaker("iain-duncan-smith", "Iain Duncan Smith", 2),
        Speaker("jerome-powell", "Jerome Powell", 2),
        Speaker("park-jin", "Park Jin", 2),
        Speaker("peter-hale", "Peter Hale", 2),
        ROGER_TAYLOR,
        Speaker("lee-quane", "Lee Quane", 1),
        Speaker("maria-lopez", "Maria Lopez", 1),
        Speaker("marta-jensen", "Marta Jensen", 1),
        Speaker("tom-reyes", "Tom Reyes", 1),
    ]  # not "an NIS official", "the company" ("Abbott said"), "critics", "residents", "Washington"
    assert pipeline.speakers(limit=2) == [Speaker("antony-blinken", "Antony Blinken", 5), TONY_BLAIR]


def test_every_stored_quote_by_a_person_is_found_under_its_speaker(pipeline):
    store = pipeline.index().store
    stored = store.quotes_for(sorted(store.article_hashes()))
    found = {(c.article_id, c.start, c.end) for c in _all_citations(pipeline)}
    assert found <= {(q.article_id, q.start, q.end) for q in stored}
    # What is left is what sources that are no person said.
    assert sorted({q.speaker for q in stored if (q.article_id, q.start, q.end) not in found}) == [
        "Abbott", "Environment Agency", "National Intelligence Service", "South Korea's spy agency",
        "Washington", "a survey by ECA International", "an NIS official", "critics", "residents", "the company"]


def test_a_page_of_quotes_is_numbered_from_its_offset_and_an_unknown_id_is_none(pipeline):
    speaker, page = pipeline.speaker_quotes("tony-blair", limit=2, offset=3)
    assert (speaker, [c.n for c in page], [c.quote[:5] for c in page]) == (TONY_BLAIR, [4, 5], ["Blair", "Later"])
    assert pipeline.speaker_quotes("tony-blair", offset=5) == (TONY_BLAIR, [])
    assert pipeline.speaker_quotes("tony-blaire") is None
    with pytest.raises(BadSetting) as err:
        pipeline.speakers("blair", limit=0)
    assert str(err.value) == "limit=0 is below 1: ask for at least one speaker"


def test_a_surname_two_people_share_is_both_of_them_never_one_merged_speaker(pipeline):
    assert pipeline.speakers("Taylor") == [ANN_TAYLOR, ROGER_TAYLOR]
    assert pipeline.speaker_quotes("ann-taylor")[1][1].quote == (
        "\u201cWe are buying more helicopters and better armoured vehicles,\u201d Ms Taylor said.")
    assert [c.quote for c in pipeline.speaker_quotes("roger-taylor")[1]] == [
        "\u201cPlaying by the water in front of a home crowd is the best gig of the summer,\u201d Roger Taylor said.",
        "\u201cWe have already booked bands for next year,\u201d Taylor added.",
    ]


def test_a_bare_surname_fitting_two_people_stays_apart_and_one_fitting_one_person_joins_them():
    index = SpeakerIndex.build([
        (1, "Ann Taylor", 10, "2004-07-21"),
        (2, "Roger Taylor", 20, "2022-08-14"),
        (3, "Taylor", 30, "2023-01-01"),     # an article that never gave a first name
        (4, "Tony Blair", 40, "2003-03-18"),
        (5, "Blair", 50, "2003-03-19"),      # likewise, but only one Blair is quoted anywhere
        (6, "an NIS official", 60, None),
        (7, "Washington", 70, None),         # a lone word no fuller name fits: a place, not a person
        (8, "Jos\u00e9 P\u00e9rez", 80, "2020-01-01"),
        (9, "Jose Perez", 81, "2021-01-01"),  # the same name without its accents
    ])
    assert index.ranked == [
        Speaker("jose-perez", "Jos\u00e9 P\u00e9rez", 2),
        Speaker("tony-blair", "Tony Blair", 2),
        Speaker("ann-taylor", "Ann Taylor", 1),
        Speaker("roger-taylor", "Roger Taylor", 1),
        Speaker("taylor", "Taylor", 1),
    ]
    assert index.resolve("Taylor") == [Speaker("ann-taylor", "Ann Taylor", 1), Speaker("roger-taylor", "Roger Taylor", 1)]
    assert index.resolve("Ms Ann Taylor") == [Speaker("ann-taylor", "Ann Taylor", 1)]
    assert index.resolve("Bob Taylor") == []
    assert index.resolve("Blair") == [Speaker("tony-blair", "Tony Blair", 2)]
    assert index.rows(index.resolve("Blair")) == (40, 50)
    assert index.quote_ids("jose-perez", limit=10) == [9, 8]  # newest first


# -- "What did X say ...?" ------------------------------------------------------------------------
def test_a_quote_passage_retrieval_misses_is_found_among_the_speakers_own(pipeline):
    question = "What did Jensen say about the sea wall?"
    # Passage retrieval alone fills the top 3 with other people on the sea wall.
    assert all(JENSEN not in h.chunk.text for h in pipeline.search(question, k=3, until=AS_OF))
    answer = pipeline.ask(question, k=3, as_of=AS_OF)
    article = pipeline.article(answer.citations[0].article_id)
    start = article.text.index(JENSEN)
    assert (answer.abstained, answer.text, answer.citations, answer.speakers, answer.warnings) == (
        False, JENSEN + " [1]", [Citation.quoting(1, article, start, start + len(JENSEN), "Marta Jensen")],
        [Speaker("marta-jensen", "Marta Jensen", 1)], [])
    assert article.title == "Thousands flock to Falmouth harbour festival"


def test_a_quote_by_someone_else_in_the_same_paragraph_is_never_given_as_theirs(pipeline):
    answer = pipeline.ask("What did Blair say about the weapons inspectors?", as_of=AS_OF)
    assert any(DUNCAN_SMITH in h.chunk.text for h in answer.passages)  # it was right there
    assert not answer.abstained
    assert [c.speaker for c in answer.citations] == ["Tony Blair"] * len(answer.citations)
    assert answer.citations[0].quote == "Blair said Britain could not wait for ever while Iraq kept its weapons hidden."
    assert "Weapons inspectors have had twelve years" not in answer.text
    assert answer.speakers == [TONY_BLAIR]
    assert_verbatim(pipeline, answer.citations)


def test_a_name_two_people_share_is_answered_from_the_best_matching_one_and_says_so(pipeline):
    music = pipeline.ask("What did Taylor say about playing by the water?", as_of=AS_OF)
    assert (music.abstained, music.speakers, music.warnings) == (False, [ANN_TAYLOR, ROGER_TAYLOR], [
        "Two people named Taylor are quoted: Ann Taylor (3 quotes), Roger Taylor (2); this answer quotes Roger Taylor"])
    assert {c.speaker for c in music.citations} == {"Roger Taylor"}
    assert music.citations[0].quote.startswith("\u201cPlaying by the water")

    army = pipeline.ask("What did Taylor say about helicopters?", as_of=AS_OF)
    assert army.warnings == [
        "Two people named Taylor are quoted: Ann Taylor (3 quotes), Roger Taylor (2); this answer quotes Ann Taylor"]
    assert {c.speaker for c in army.citations} == {"Ann Taylor"}
    assert army.citations[0].quote.startswith("\u201cWe are buying more helicopters")
    assert_verbatim(pipeline, music.citations + army.citations)


def test_one_answer_never_mixes_the_words_of_two_people_of_the_same_name(embedder):
    from rag.answer.extractive import ExtractiveAnswerer
    from rag.index.keyword import terms
    from rag.models import Article, Chunk, Hit
    from rag.text.quotes import extract_quotes

    text = ("\u201cThe army needs more helicopters, and it will get them,\u201d defence minister Ann Taylor said. "
            "\u201cHelicopters flying over the harbour ruined our sound check,\u201d drummer Roger Taylor said.")
    article = Article(id="two-taylors", title="Helicopters", text=text, source="example.com", published_at="2022-08-14")
    hits = [Hit(Chunk("two-taylors#0", article.id, 0, 0, len(text), text), 1.0, article, 1)]
    quotes = extract_quotes(article)
    assert [q.speaker for q in quotes] == ["Ann Taylor", "Roger Taylor"]  # both on helicopters
    answer = ExtractiveAnswerer(embedder, terms).answer("What did Taylor say about helicopters?", hits, quotes)
    assert (answer.text, [c.speaker for c in answer.citations]) == (
        "\u201cThe army needs more helicopters, and it will get them,\u201d defence minister Ann Taylor said. [1]",
        ["Ann Taylor"])


# -- judged on X's own sentences, and on the story they stand in ---------------------------------
class _Cosines:
    """A deterministic embedder: the question is one axis, and each sentence sits at the cosine
    to it the test gives (every sentence on an axis of its own otherwise)."""

    name, dimension = "fake-cosines", 8

    def __init__(self, question: str, cosines: dict[str, float]) -> None:
        self.vectors = {question: np.eye(8)[0]}
        for i, (text, cos) in enumerate(cosines.items(), start=1):
            self.vectors[text] = cos * np.eye(8)[0] + np.sqrt(1 - cos * cos) * np.eye(8)[i]

    def embed_batch(self, texts):
        return np.stack([self.vectors[t] for t in texts]).astype(np.float32)


LEE_QUESTION = "What did Jo Lee say about the harbour?"
LEE_BOATS = "Jo Lee said the boats were late again."  # relevance: 0.55 * cosine + 0.30 * 1/2 ("lee")
LEE_FEES = "Jo Lee said the fees would rise next year."


def _lee(cosines: dict[str, float], settings=None):
    """The answerer over two one-sentence passages of Jo Lee's, boats first, then fees."""
    from rag.answer.extractive import AnswerSettings, ExtractiveAnswerer
    from rag.models import Article, Chunk, Hit, Quote
    from rag.text.words import content_words

    hits, quotes = [], []
    for rank, text in enumerate((LEE_BOATS, LEE_FEES), start=1):
        article = Article(id=f"lee-{rank}", title="Harbour news", text=text)
        hits.append(Hit(Chunk(f"lee-{rank}#0", article.id, 0, 0, len(text), text), 1.0, article, rank))
        quotes.append(Quote(article.id, 0, len(text), text, "Jo Lee", "reported"))
    answerer = ExtractiveAnswerer(_Cosines(LEE_QUESTION, cosines), content_words, settings or AnswerSettings())
    return lambda topic=None: answerer.answer(LEE_QUESTION, hits, quotes, speaker="Jo Lee", topic=topic)


def test_x_is_quoted_from_a_story_about_y_though_no_sentence_of_x_matches_the_question():
    from rag.answer.extractive import ABSTAIN_TEXT, AnswerSettings

    ask = _lee({LEE_BOATS: 0.2, LEE_FEES: 0.1},  # relevance 0.26 and 0.205: under abstain_below 0.40
               AnswerSettings(speaker_topic_min=0.5, speaker_topic_weight=0.5))
    declined = (True, ABSTAIN_TEXT, [])
    assert (lambda a: (a.abstained, a.text, a.citations))(ask()) == declined  # no "about Y" given
    assert (lambda a: (a.abstained, a.text, a.citations))(ask([0.1, 0.49])) == declined  # nor a story about it
    about = ask([0.1, 0.6])  # fees: 0.205 + 0.075 + 0.25 + 0.5 * 0.6 beats boats: 0.26 + 0.15 + 0.25 + 0.05
    assert (about.abstained, about.text, [(c.article_id, c.quote, c.speaker) for c in about.citations]) == (
        False, f"{LEE_FEES} [1] {LEE_BOATS} [2]",
        [("lee-2", LEE_FEES, "Jo Lee"), ("lee-1", LEE_BOATS, "Jo Lee")])  # the story's sentence first


def test_x_is_answered_when_xs_own_best_sentence_matches_though_another_scores_higher():
    from rag.answer.extractive import ABSTAIN_TEXT

    # Boats: relevance 0.38 in the first passage (score 0.38 + 0.15 + 0.25); fees: 0.42 in the
    # second (0.42 + 0.075 + 0.25). The general rule reads the best-scored sentence, 0.38, and
    # declines; "What did X say about Y?" reads X's best sentence, relevant enough, whatever the
    # story (both passages far from Y here).
    ask = _lee({LEE_BOATS: (0.38 - 0.15) / 0.55, LEE_FEES: (0.42 - 0.15) / 0.55})
    assert (ask().abstained, ask().text) == (True, ABSTAIN_TEXT)
    answer = ask([0.0, 0.0])
    assert (answer.abstained, answer.text) == (False, f"{LEE_BOATS} [1] {LEE_FEES} [2]")


def test_the_story_counts_only_for_xs_own_sentences():
    from rag.answer.extractive import AnswerSettings, ExtractiveAnswerer
    from rag.models import Article, Chunk, Hit, Quote
    from rag.text.words import content_words

    # The only passage close to the topic quotes someone else: X's words are not about it.
    texts = (LEE_BOATS, "Sam Cole said the harbour would close for repairs.")
    hits, quotes = [], []
    for rank, (text, who) in enumerate(zip(texts, ("Jo Lee", "Sam Cole")), start=1):
        article = Article(id=f"h-{rank}", title="Harbour news", text=text)
        hits.append(Hit(Chunk(f"h-{rank}#0", article.id, 0, 0, len(text), text), 1.0, article, rank))
        quotes.append(Quote(article.id, 0, len(text), text, who, "reported"))
    answerer = ExtractiveAnswerer(_Cosines(LEE_QUESTION, {texts[0]: 0.2, texts[1]: 0.9}), content_words,
                                  AnswerSettings(speaker_topic_min=0.5))
    assert answerer.answer(LEE_QUESTION, hits, quotes, speaker="Jo Lee", topic=[0.1, 0.9]).abstained


def test_a_headline_about_the_story_x_is_quoted_in_is_answered_with_xs_words(pipeline):
    # Jensen's one remark shares almost no words with the festival's headline (relevance 0.25,
    # under the general 0.40), but it stands in the festival report the headline names.
    question = "What did Jensen say about Thousands flock to Falmouth harbour festival?"
    answer = pipeline.ask(question, as_of=AS_OF)
    article = pipeline.article(answer.citations[0].article_id)
    start = article.text.index(JENSEN)
    assert (answer.abstained, answer.text, answer.citations, answer.speakers) == (
        False, JENSEN + " [1]", [Citation.quoting(1, article, start, start + len(JENSEN), "Marta Jensen")],
        [Speaker("marta-jensen", "Marta Jensen", 1)])
    assert article.title == "Thousands flock to Falmouth harbour festival"


def test_passages_are_as_close_to_a_topic_as_their_story_is(pipeline):
    from rag.search.topic import closeness

    hits = pipeline.search("Falmouth harbour sea wall festival", k=6, until=AS_OF)
    near = closeness(pipeline.index(), pipeline.query_embedder, "a new sea wall against winter storms", hits)
    assert len(near) == len(hits) and all(-1.0 <= t <= 1.0 for t in near)
    by_title = {}
    for hit, t in zip(hits, near):
        by_title[hit.article.title] = max(by_title.get(hit.article.title, -1.0), t)
    assert max(by_title, key=by_title.get) == "Work begins on Falmouth's new sea wall"
    assert closeness(pipeline.index(), pipeline.query_embedder, "anything", []) == []


def test_someone_the_news_never_quotes_gets_no_statement(pipeline):
    answer = pipeline.ask("What did Jacinda Ardern say about China?", as_of=AS_OF)
    assert (answer.abstained, answer.text, answer.citations, answer.speakers, answer.warnings) == (
        True, "No statement by Jacinda Ardern in the indexed news.", [], [], [])
    assert answer.passages  # the closest passages are still offered


def test_someone_quoted_only_on_other_things_gets_no_statement_about_this(pipeline):
    answer = pipeline.ask("What did Roger Taylor say about interest rates?", as_of=AS_OF)
    assert (answer.abstained, answer.text, answer.citations, answer.speakers, answer.warnings) == (
        True, "No statement by Roger Taylor about this in the indexed news.", [], [ROGER_TAYLOR], [])
    assert {h.article.title for h in answer.passages} == {"Thousands flock to Falmouth harbour festival"}

    shared = pipeline.ask("What did Taylor say about interest rates?", as_of=AS_OF)
    assert (shared.abstained, shared.text, shared.warnings) == (
        True, "No statement by Taylor about this in the indexed news.",
        ["Two people named Taylor are quoted: Ann Taylor (3 quotes), Roger Taylor (2)"])


def test_the_as_of_cutoff_holds_for_a_speakers_quotes(pipeline):
    # The festival report (14 August) is not out yet on the 12th, and what the sea wall report
    # of the 10th quotes is other people's, though it names her.
    answer = pipeline.ask("What did Jensen say about the sea wall?", as_of="2022-08-12")
    assert (answer.abstained, answer.text, answer.citations, answer.speakers) == (
        True, "No statement by Marta Jensen in the indexed news.", [], [Speaker("marta-jensen", "Marta Jensen", 1)])
    assert {h.article.title for h in answer.passages} >= {"Work begins on Falmouth's new sea wall"}
    assert all(h.article.published_at is None or h.article.published_at <= "2022-08-12" for h in answer.passages)


def test_a_source_that_is_no_known_speaker_is_answered_from_the_passages(pipeline):
    answer = pipeline.ask("What did Abbott say about production?", as_of=AS_OF)
    assert (answer.abstained, answer.text, answer.speakers) == (False, "\u201cWe will ramp up production as quickly "
                                                                "as we can while meeting all requirements,\u201d "
                                                                "Abbott said in a statement. [1]", [])
    assert [c.speaker for c in answer.citations] == ["Abbott"]


def test_the_json_and_the_text_output_carry_the_speakers(pipeline):
    answer = pipeline.ask("What did Taylor say about helicopters?", as_of=AS_OF)
    assert answer_to_dict(answer)["speakers"] == [
        {"id": "ann-taylor", "name": "Ann Taylor", "quotes": 3},
        {"id": "roger-taylor", "name": "Roger Taylor", "quotes": 2},
    ]
    assert speaker_to_dict(TONY_BLAIR) == {"id": "tony-blair", "name": "Tony Blair", "quotes": 5}
    lines = format_answer(answer).splitlines()
    assert lines[lines.index("Sources:") - 2:lines.index("Sources:")] == [
        "Speakers: Ann Taylor (3 quotes, id ann-taylor); Roger Taylor (2 quotes, id roger-taylor)", ""]
    assert "Speakers:" not in format_answer(Answer("Why?", "No.", True))


def test_every_citation_of_every_answer_and_page_is_verbatim(pipeline):
    questions = ["What did Blinken say about China?", "What did Powell say about a recession?",
                 "What did Blair say about resigning?", "What did Marta Jensen say about winter storms?",
                 "What did Taylor say about the army?", "What did Abbott say about production?"]
    for question in questions:
        answer = pipeline.ask(question, as_of=AS_OF)
        assert answer.citations, question
        assert_verbatim(pipeline, answer.citations)
    assert_verbatim(pipeline, _all_citations(pipeline))
