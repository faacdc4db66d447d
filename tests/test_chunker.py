import re
from pathlib import Path

import pytest

from qa import corpus
from qa.chunker import ChunkSettings, chunk, split_sentences

from conftest import SEEDS


@pytest.fixture(scope="module")
def seeds():
    documents, skipped = corpus.load(SEEDS)
    assert not skipped
    return documents


def test_every_sentence_and_passage_round_trips_exactly(seeds):
    sentences, passages = chunk(seeds)
    assert len(sentences) > 100 and len(passages) > 20
    for s in sentences:
        piece = seeds[s.doc].text[s.start : s.end]
        assert piece and piece == piece.strip()
    for p in passages:
        text = seeds[p.doc].text
        first, last = sentences[p.first_sentence], sentences[p.last_sentence - 1]
        assert (p.start, p.end) == (first.start, last.end)
        assert all(sentences[i].doc == p.doc for i in range(p.first_sentence, p.last_sentence))
        assert text[p.start : p.end].startswith(text[first.start : first.end])


def test_sentences_cover_every_word_of_the_content(seeds):
    sentences, _ = chunk(seeds)
    for doc_id, doc in enumerate(seeds):
        covered = [(s.start, s.end) for s in sentences if s.doc == doc_id]
        for start, end in doc.blocks:
            for m in re.finditer(r"\S+", doc.text[start:end]):
                a = start + m.start()
                assert any(s <= a < e for s, e in covered), doc.text[a : a + 30]


def test_passages_respect_the_word_budget(seeds):
    settings = ChunkSettings(max_words=60)
    sentences, passages = chunk(seeds, settings)
    for p in passages:
        words = len(seeds[p.doc].text[p.start : p.end].split())
        single = p.last_sentence - p.first_sentence == 1
        assert words <= settings.max_words or single


def test_curly_quotes_and_non_ascii_keep_offsets():
    text = "Intro line\n“Ça va,” dit Zoë — naïve café. Der Bürgermeister sagte: „Nein.“ 東京 is big. U.S. officials agreed.\n"
    doc = corpus.clean("x.txt", text, "0")
    sentences, _ = chunk([doc])
    pieces = [text[s.start : s.end] for s in sentences]
    assert "“Ça va,” dit Zoë — naïve café." in pieces
    assert any(p.startswith("U.S. officials") for p in pieces)  # no cut after "U.S."
    for s in sentences:
        assert text[s.start : s.end] == pieces[sentences.index(s)]


def test_dateline_opens_the_first_sentence():
    text = "TEHRAN, March 7. In Moscow they were satisfied. It worked."
    spans = split_sentences(text, 0, len(text))
    assert text[spans[0][0] : spans[0][1]] == "TEHRAN, March 7. In Moscow they were satisfied."


@pytest.mark.parametrize("text,expected", [
    ("Mr. Smith went to Washington. He stayed.", 2),
    ("John F. Kennedy spoke. Then he left.", 2),
    ("It cost $4.5 million. Really?", 2),
    ('"We agree," he said. "We do."', 2),
    ("Talks began on Oct. 6 in Geneva.", 1),
])
def test_sentence_splitting(text, expected):
    assert len(split_sentences(text, 0, len(text))) == expected
