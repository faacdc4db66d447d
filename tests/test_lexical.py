"""qa.lexical: BM25 on tantivy, over texts written for these tests."""
import math

import numpy as np
import pytest

from qa import lexical
from qa.lexical import tokenize

TEXTS = [
    "The striker scored twice as the home side won the cup final in extra time.",
    "Shares of the chip maker fell after quarterly revenue missed forecasts.",
    "The telescope photographed a comet passing close to Jupiter's largest moon.",
    "Revenue at the airline rose as fuel costs fell and more travellers booked flights.",
    "The goalkeeper saved a penalty, but the striker's late header won the match.",
    "Astronomers said the comet's tail stretched for millions of kilometres.",
]


DOCS = [0, 0, 1, 1, 2, 2]  # two texts a document


@pytest.fixture
def index(tmp_path):
    lexical.build(tmp_path / "lex", map(tokenize, TEXTS), DOCS)
    return tmp_path / "lex"


def test_tokenize_stems_and_drops_stopwords():
    assert tokenize("The strikers were scoring goals") == ["striker", "score", "goal"]
    assert tokenize("it is what it is") == []


def test_top_ranks_the_matching_texts_and_leaves_the_rest_out(index):
    rows, scores = lexical.Lexical(index).top(tokenize("Which striker won the final?"), 10)
    assert set(rows) == {0, 4}  # nothing else says striker, won or final
    assert rows[0] == 0 and scores[0] > scores[1] > 0  # three words matched beat two


def test_scores_of_chosen_rows_are_their_scores_among_all(index):
    lex = lexical.Lexical(index)
    question = tokenize("Did revenue fall at the chip maker or the airline?")
    rows, scores = lex.top(question, 10)
    everything = dict(zip(rows.tolist(), scores.tolist()))
    some, some_scores = lex.scores_of(question, [3, 2, 1])
    assert sorted(some.tolist()) == [1, 3]  # row 2 matches no word: not returned
    for row, score in zip(some.tolist(), some_scores.tolist()):
        assert score == pytest.approx(everything[row])  # the row filter adds nothing to the score


def test_a_question_of_stopwords_or_unknown_words_finds_nothing(index):
    lex = lexical.Lexical(index)
    for question in ("what is it?", "zyzzyva quux"):
        rows, scores = lex.top(tokenize(question), 5)
        assert len(rows) == 0 and len(scores) == 0
        assert len(lex.scores_of(tokenize(question), [0, 1])[0]) == 0


def test_idf_is_higher_for_rarer_words_and_never_negative(index):
    lex = lexical.Lexical(index)
    assert lex.size == len(TEXTS)
    comet, fell, unknown = lex.idf("comet"), lex.idf("fell"), lex.idf("zyzzyva")
    assert lex.idf("telescop") > comet > 0  # one text, two texts
    assert fell == pytest.approx(comet)  # both in two texts
    assert unknown == pytest.approx(math.log1p((len(TEXTS) - 1 + 0.5) / 1.5))


def test_added_rows_are_found_under_their_numbers(index):
    lexical.update(index, [tokenize("A cyclist won the mountain stage of the race.")], [3], len(TEXTS))
    lex = lexical.Lexical(index)
    assert lex.size == len(TEXTS) + 1
    rows, _ = lex.top(tokenize("cyclist mountain stage"), 3)
    assert rows.tolist() == [len(TEXTS)]
    rows, _ = lex.top(tokenize("striker won"), 10)
    assert set(rows.tolist()) == {0, 4, len(TEXTS)}
    assert np.issubdtype(rows.dtype, np.integer)


def test_an_update_deletes_a_documents_rows_and_leaves_a_copy_as_it_was(index, tmp_path):
    copy = tmp_path / "copy"
    lexical.copy(index, copy)
    lexical.update(copy, [tokenize("The striker retired after the final.")], [3], len(TEXTS), dead=[0, 2])
    updated, original = lexical.Lexical(copy), lexical.Lexical(index)
    assert updated.size == len(TEXTS) - 4 + 1 and original.size == len(TEXTS)
    rows, _ = updated.top(tokenize("striker final comet revenue"), 10)
    assert sorted(rows.tolist()) == [2, 3, len(TEXTS)]  # document 1's rows and the new one; 0 and 2 went
    rows, _ = original.top(tokenize("striker final comet revenue"), 10)
    assert sorted(rows.tolist()) == [0, 1, 2, 3, 4, 5]


REPEATS = [  # words repeated, so that term frequencies above one are read back too
    "Striker striker striker: the striker scored, and the striker's team won the final.",
    "Revenue rose; revenue fell; the revenue forecast missed, and shares of the maker fell.",
    "The comet, the comet's tail and a second comet passed the moon and the telescope.",
] + TEXTS


def test_term_frequencies_are_read_back_exactly_and_rescored_at_other_settings(tmp_path):
    tokens = [tokenize(t) for t in REPEATS]
    lexical.build(tmp_path / "lex", tokens, range(len(REPEATS)))
    lex = lexical.Lexical(tmp_path / "lex")
    lengths = np.array([len(t) for t in tokens], dtype=np.float32)
    average = float(lengths.mean())
    question = tokenize("Which striker scored when revenue fell and the comet passed?")
    rows = np.arange(len(REPEATS))
    idf, tf = lex.term_frequencies(question, rows, lengths, average)
    words = sorted(set(question))
    assert tf.tolist() == [[float(t.count(w)) for w in words] for t in tokens]
    assert tf.max() >= 4

    # At tantivy's own k1 and b the rescored BM25 is tantivy's score (lengths past 40 words aside).
    found, scores = lex.scores_of(question, rows)
    ours = lexical.Bm25(lexical.TANTIVY_K1, lexical.TANTIVY_B).score(tf, idf, lengths, average)
    assert ours[found] == pytest.approx(scores, rel=1e-4)
    # At others, the textbook formula over the true counts.
    k1, b = 0.6, 0.3
    by_hand = [sum(i * t.count(w) * (k1 + 1) / (t.count(w) + k1 * (1 - b + b * len(t) / average))
                   for i, w in zip(idf, words)) for t in tokens]
    assert lexical.Bm25(k1, b).score(tf, idf, lengths, average) == pytest.approx(by_hand, rel=1e-5)
    idf_some, tf_some = lex.term_frequencies(question, np.array([1, 4]), lengths[[1, 4]], average)
    assert tf_some.tolist() == tf[[1, 4]].tolist() and idf_some.tolist() == idf.tolist()
