"""The reader's checks of what kind of thing a question asks for, on sentences written here."""
from __future__ import annotations

import pytest

from qa.reader import rules as reader

TEXTS = [
    "Talks were held in Turkey and in Syria. The Turkish side and the Syrian army agreed.",
    "The Iranian delegation arrived from Iran. US Ambassador John Tefft attended.",
]
ALIASES = reader.demonyms(TEXTS)
PLACES = reader.place_names(TEXTS)


def tokens(text: str) -> list[reader.Token]:
    return reader.tokenize(text, 0, len(text), ALIASES)


def answer(question: str, sentence: str, known: dict | None = None) -> str | None:
    toks = tokens(sentence)
    span = reader.best_span(toks, reader.analyse(question, None, ALIASES), PLACES, known)
    return None if span is None else sentence[toks[span.i].start : toks[span.j - 1].end]


@pytest.mark.parametrize("british, american", [
    ("defence", "defense"), ("centred", "centered"), ("honourable", "honorable"), ("organisation", "organization"),
    ("analysed", "analyzed"), ("programmes", "programs"), ("dialogue", "dialog"), ("travelled", "traveled"),
])
def test_british_spellings_fold_to_american(british, american):
    assert reader.fold_spelling(british) == american


@pytest.mark.parametrize("word", ["rise", "house", "premise", "colonel", "defensive", "analysts"])
def test_other_words_keep_their_spelling(word):
    assert reader.fold_spelling(word) == word


def test_adjectives_of_places_the_corpus_names_match_the_places():
    question = reader.analyse("Why was the border between Syria and Turkey closed?", None, ALIASES)
    sentence = tokens("Closing the Syrian-Turkish border deprives terrorists of funding.")
    assert reader.coverage(sentence, question) == 1.0
    assert ALIASES["iranian"] == "iran"
    assert "civilian" not in ALIASES  # lower-case words are never taken for places


def test_the_us_is_not_the_pronoun_us():
    assert "u.s" in reader.analyse("Who represented the US?", None, ALIASES).stems
    assert "u.s" not in reader.analyse("Who told us?", None, ALIASES).stems
    assert {"u.s"} == reader.analyse("Which American official came?", None, ALIASES).descriptors


def test_how_many_targets_the_counted_noun_up_to_the_verb():
    assert reader.analyse("How many Security Council members supported it?").target == {"secur", "council", "member"}
    assert reader.analyse("How many people have left the city?").target == {"peopl"}
    assert reader.analyse("At whose request were experts sent?").target == {"request"}


def test_a_name_without_the_asked_description_is_undescribed():
    question = "Which American official attended the meeting?"
    sentence = "UN envoy Staffan de Mistura and a US representative attended the meeting."
    toks = tokens(sentence)
    q = reader.analyse(question, None, ALIASES)
    span = reader.best_span(toks, q, PLACES)
    assert reader.undescribed(toks, span, q) == 1.0
    described = "US Ambassador John Tefft attended the meeting."
    assert answer(question, described) == "John Tefft"


def test_a_later_mention_inherits_the_first_description():
    document = [tokens("Russian Foreign Minister Sergey Lavrov met the envoy."), tokens("Their voice must be heard, Lavrov said.")]
    known = reader.descriptions(document)
    q = reader.analyse("Which Russian official said their voice must be heard?", None, ALIASES)
    toks = document[1]
    span = reader.best_span(toks, q, PLACES, known)
    assert span is not None and toks[span.i].text == "Lavrov"
    assert reader.undescribed(toks, span, q, known) == 0.0
    assert reader.undescribed(toks, span, q) == 1.0
    assert reader.speaks(toks, span)


def test_which_countries_wants_named_places_not_a_count():
    question = "Which countries guarantee the talks?"
    assert answer(question, "Three guarantor-countries, the government and the armed opposition met.") is None
    assert answer(question, "The talks are guaranteed by Turkey, Iran and Russia.") == "Turkey, Iran and Russia"


def test_at_what_time_wants_a_time_of_day_not_the_date():
    sentence = "Talks began on July 29 at 16:00 local time in Geneva."
    assert answer("At what time did the talks begin?", sentence) == "16:00 local time"
    assert answer("At what time did the talks end?", "The talks began on July 29 in Geneva.") is None
    assert answer("When did the talks begin?", "The talks began on July 29 in Geneva.") == "July 29"


def test_a_date_the_question_already_gives_is_no_answer():
    assert answer("Which groups signed the December 29 deal?", "The December 29 deal was signed in Ankara.") != "December 29"
    assert answer("What happened on February 22?", "A truce began on February 22.") != "February 22"


def test_which_outlets_wants_names_of_organisations():
    question = "Which news outlets did the ministry accuse of bias?"
    assert answer(question, "The ministry accused the media in a sharp manner of bias.") is None
    assert answer(question, "The ministry accused the BBC and Reuters of bias.") == "BBC and Reuters"


def test_durations_without_a_numeral():
    assert answer("How long before the truce was the vote held?", "An hour before the truce, the council voted.") == "An hour"
    assert answer("How long were the pauses in fighting?", "Numerous two-day or three-day pauses in fighting were used.") \
        == "two-day or three-day"


def test_at_whose_request_takes_what_follows_the_request():
    sentence = "Russian forces operate in Iran at the request of the legitimate government in Syria."
    assert answer("At whose request do Russian forces operate in Iran?", sentence) == "legitimate government in Syria"
    assert answer("At whose request were experts sent?", "It was done at a request from U.S. Secretary of State John Kerry.") \
        == "John Kerry"
    assert answer("How long had the talks failed?", "A week ago, the talks failed.") is None


def test_a_list_of_places_may_repeat_its_preposition():
    assert answer("In which two capitals do the militaries talk?", "The militaries talk in Turkey, and in Iran.") \
        == "Turkey, and in Iran"


def test_a_date_range_is_a_date_not_a_count():
    sentence = "The groups are invited to the meeting on February 15-16."
    assert answer("How many groups are invited to the meeting?", sentence) is None
    assert answer("When is the meeting?", sentence) == "February 15-16"


def test_which_officials_asks_for_people_as_described():
    q = reader.analyse("Which Iranian officials met the envoy?", None, ALIASES)
    assert q.kind == "person" and q.descriptors == {"iran"}


def test_a_deputy_is_not_the_office_asked_for():
    sentence = "Russia's Deputy Foreign Minister Mikhail Bogdanov met Russian Foreign Minister Sergey Lavrov."
    assert answer("Who is Russia's foreign minister?", sentence) == "Sergey Lavrov"
    assert answer("Who is Russia's deputy foreign minister?", sentence) == "Mikhail Bogdanov"
    assert answer("Who is the president's special envoy?",
                  "The president's special envoy and Deputy Foreign Minister Mikhail Bogdanov spoke.") == "Mikhail Bogdanov"


def test_who_is_asks_for_the_name_described_so():
    sentence = "In response to the Secretary of State's call, Sergey Lavrov told US Secretary of State John Kerry."
    assert answer("Who is the US Secretary of State?", sentence) == "John Kerry"
    q = reader.analyse("Who heads Russia's defence ministry?", None, ALIASES)
    toks = tokens("Russian Defense Minister Sergei Shoigu said so.")
    span = reader.best_span(toks, q, PLACES)
    assert reader.undescribed(toks, span, q) == 0.0  # "ministry" is described by "Minister"


def test_a_clause_after_a_name_is_no_appositive():
    q = reader.analyse("Who is the leader of the Nusra front?", None, ALIASES)
    toks = tokens("According to Jan Smit, about 900 Nusra front fighters are active.")
    span = reader.best_span(toks, q, PLACES)
    assert reader.undescribed(toks, span, q) == 1.0
