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


def test_a_question_of_stopwords_or_unknown_words_finds_nothing(index):
    lex = lexical.Lexical(index)
    for question in ("what is it?", "zyzzyva quux"):
        rows, scores = lex.top(tokenize(question), 5)
        assert len(rows) == 0 and len(scores) == 0


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


def _counted(tmp_path, texts: list[list[str]], segments: int = 1) -> lexical.WordCounts:
    """texts' word counts, written in that many segments as the store writes them."""
    stems, size = [], -(-len(texts) // segments)
    for k in range(segments):
        writer = lexical.WordCountsWriter()
        for tokens in texts[k * size : (k + 1) * size]:
            assert writer.add(tokens) is tokens  # handed on to tantivy as it was
        stems.append(tmp_path / f"seg-{k}" / "passage-words")
        stems[-1].parent.mkdir()
        writer.save(stems[-1])
    return lexical.WordCounts(stems)


@pytest.mark.parametrize("segments", [1, 3])
def test_word_counts_give_each_rows_term_frequencies_across_segments(tmp_path, segments):
    tokens = [tokenize(t) for t in REPEATS]
    counts = _counted(tmp_path, tokens, segments)
    assert len(counts) == len(REPEATS)
    words = sorted(set(tokenize("Which striker scored when revenue fell and the comet passed?"))) + ["zyzzyva"]
    rows = np.array([0, 2, 4, 5, 8])
    tf = counts.tf(words, rows)
    assert tf.tolist() == [[float(tokens[r].count(w)) for w in words] for r in rows]
    assert tf.max() >= 4 and not tf[:, -1].any()  # repeated words counted; an unknown word is nowhere
    assert counts.tf(words, np.array([], np.int64)).shape == (0, len(words))
    assert counts.tf([], rows).shape == (len(rows), 0)


def test_bm25_over_word_counts_is_tantivys_at_its_settings_and_the_formula_at_others(tmp_path):
    tokens = [tokenize(t) for t in REPEATS]
    lexical.build(tmp_path / "lex", tokens, range(len(REPEATS)))
    lex, counts = lexical.Lexical(tmp_path / "lex"), _counted(tmp_path, tokens)
    lengths = np.array([len(t) for t in tokens], dtype=np.float32)
    average = float(lengths.mean())
    question = tokenize("Which striker scored when revenue fell and the comet passed?")
    words, rows = sorted(set(question)), np.arange(len(REPEATS))
    tf, idf = counts.tf(words, rows), lex.idfs(words)

    # At tantivy's own k1 and b, tantivy's scores (every row here is under 40 words, stored exactly).
    found, scores = lex.top(question, len(REPEATS))
    ours = lexical.TANTIVY.score(tf, idf, lengths, average)
    assert ours[found] == pytest.approx(scores, rel=1e-4)
    assert not ours[np.setdiff1d(rows, found)].any()
    # At others, the textbook formula over the true counts.
    k1, b = 0.6, 0.3
    by_hand = [sum(i * t.count(w) * (k1 + 1) / (t.count(w) + k1 * (1 - b + b * len(t) / average))
                   for i, w in zip(idf, words)) for t in tokens]
    assert lexical.Bm25(k1, b).score(tf, idf, lengths, average) == pytest.approx(by_hand, rel=1e-5)
