"""Property-based fuzzing: random corpus bytes, random questions, random CLI input.

Whatever comes in, the library raises only QAError subclasses, a built index stays loadable,
and every answer's offsets cut its text exactly out of the indexed document.
"""
from __future__ import annotations

import os
import shutil
import string
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from qa import corpus as corpus_mod
from qa import ingest, store
from qa.answerer import Answerer, clean_question, normalize_answer
from qa.embedder import Hashing
from qa.errors import BadQuestion, QAError

from conftest import SEEDS, run_qa

SEED_FILE = sorted(SEEDS.glob("*.txt"))[0]
FAST = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
SCALE = float(os.environ.get("QA_FUZZ_SCALE", "1"))  # e.g. QA_FUZZ_SCALE=20 for a long bug hunt


def examples(n: int) -> int:
    return max(1, int(n * SCALE))

# ---------------------------------------------------------------------------------------------
# random corpus files


@st.composite
def mutated_seed(draw) -> bytes:
    """The seed article with a few random byte strings spliced in: deep into the cleaner and chunker."""
    text = bytearray(SEED_FILE.read_bytes())
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        text[at:at] = draw(st.binary(min_size=1, max_size=20) | st.text(min_size=1, max_size=20).map(lambda s: s.encode("utf-8")))
    return bytes(text)


@st.composite
def corpus_files(draw) -> dict[str, bytes]:
    names = draw(st.lists(st.sampled_from(["a.txt", "b.md", "c.TXT", "d.txt", "sub/e.txt", "f.Md"]), min_size=1, max_size=4, unique=True))
    contents = st.one_of(
        st.binary(max_size=3000),
        st.text(max_size=1500).map(lambda s: s.encode("utf-8")),  # valid UTF-8 with controls, \r, \u2028, ...
        st.text(alphabet=st.sampled_from("Aa .!?\n\r\t\"'0,;-–\u00a0\u2028\x0c\x00"), max_size=1500).map(lambda s: s.encode("utf-8")),
        mutated_seed(),
    )
    return {name: draw(contents) for name in names}


@pytest.fixture(scope="module")
def base_index(tmp_path_factory) -> Path:
    """An index of a corpus holding one real seed file, to copy into each example's folder."""
    folder = tmp_path_factory.mktemp("base")
    (folder / "corpus").mkdir()
    shutil.copy2(SEED_FILE, folder / "corpus" / SEED_FILE.name)
    ingest.build(folder / "corpus", folder / "vectors", Hashing())
    return folder


def _check_offsets(index: store.Index) -> None:
    for i in range(index.n_sentences):
        s = index.sentence(i)
        assert 0 <= s.start < s.end <= len(index.documents[s.doc].text)
    for i in range(index.n_passages):
        p = index.passage(i)
        assert 0 <= p.start < p.end <= len(index.documents[p.doc].text)
        assert p.first_sentence < p.last_sentence


@settings(FAST, max_examples=examples(40))
@given(files=corpus_files(), data=st.data())
def test_random_corpus_bytes_raise_only_qa_errors_and_keep_the_index_loadable(base_index, files, data):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        shutil.copytree(base_index, folder, dirs_exist_ok=True, symlinks=True)
        corpus, root = folder / "corpus", folder / "vectors"
        for name, content in files.items():
            (corpus / name).parent.mkdir(parents=True, exist_ok=True)
            (corpus / name).write_bytes(content)
        before = {d.path for d in store.load(root).documents}
        try:
            report = ingest.build(corpus, root, Hashing())
        except QAError:
            built = False
        else:
            built = True
        event(f"built: {built}")
        index = store.load(root)  # whatever happened, the index still loads
        live = [d for _, d in index.live_documents()]
        paths = {d.path for d in live}
        if built:
            assert SEED_FILE.name in paths
            assert paths == {SEED_FILE.name} | set(report.added) | set(report.kept) | set(report.updated)
            skipped = {s.path for s in report.skipped}
            assert paths | skipped == {SEED_FILE.name} | set(files)
            _check_offsets(index)
            for d in live:  # what was indexed is exactly what is on disk
                assert (corpus / d.path).read_bytes().decode("utf-8") == d.text
            # Questions made of a random document's own words: answers over odd text keep exact offsets.
            doc = data.draw(st.sampled_from(live))
            words = doc.text.split() or ["x"]
            question = " ".join(data.draw(st.lists(st.sampled_from(words), min_size=1, max_size=8)))
            answerer = Answerer(index, Hashing(), corpus)
            try:
                result = answerer.ask(question, k=3)
            except BadQuestion:
                pass
            else:
                _check_result(answerer, result)
        else:
            assert paths == before


# ---------------------------------------------------------------------------------------------
# random questions


@pytest.fixture(scope="module")
def answerer(tmp_path_factory) -> Answerer:
    root = tmp_path_factory.mktemp("fuzz-index") / "vectors"
    ingest.build(SEEDS, root, Hashing())
    return Answerer(store.load(root), Hashing(), SEEDS)


def _vocabulary() -> list[str]:
    documents, _ = corpus_mod.load(SEEDS)
    words = sorted({w for d in documents for w in d.text.split()})
    return words[:: max(1, len(words) // 400)] + ["who", "what", "when", "where", "how", "many", "Who", "Syria", "UN", "envoy", "?"]


VOCAB = _vocabulary()
questions = st.one_of(
    st.text(max_size=300),  # any unicode, control characters included, no surrogates
    st.binary(max_size=300).map(lambda b: b.decode("utf-8", errors="replace")),
    st.lists(st.sampled_from(VOCAB), min_size=1, max_size=25).map(" ".join),  # real words: real answers
    st.tuples(st.lists(st.sampled_from(VOCAB), max_size=10).map(" ".join), st.text(max_size=30)).map("".join),
    st.integers(1990, 2100).map(str) | st.sampled_from(["", " ", "\x00", "?", "\u200b", "a" * 2001, "é" * 2000]),
)


def _check_result(answerer: Answerer, result) -> None:
    documents = {answerer.path_of(i): d for i, d in answerer.index.live_documents()}
    for answer in result.answers:
        source = answer.source
        text = documents[source.path].text
        assert text[source.start : source.end] == answer.answer
        assert text[source.sentence_start : source.sentence_end] == answer.sentence
        assert source.sentence_start <= source.start <= source.end <= source.sentence_end
        assert source.line == text.count("\n", 0, source.start) + 1
        assert 0.0 <= answer.score <= 1.0
        for c in answer.supporting:
            other = documents[c.path].text
            assert 0 <= c.start <= c.end <= len(other)
            assert normalize_answer(other[c.start : c.end]) == normalize_answer(answer.answer)
    assert result.abstained or result.answers


@settings(FAST, max_examples=examples(300))
@given(question=questions, k=st.integers(1, 5))
def test_any_question_gets_exact_offsets_or_bad_question(answerer, question, k):
    try:
        result = answerer.ask(question, k=k)
    except BadQuestion:
        return
    assert len(result.answers) <= k
    event(f"answers: {bool(result.answers)}, abstained: {result.abstained}")
    _check_result(answerer, result)


def _usable(question: str) -> bool:
    try:
        clean_question(question)
    except BadQuestion:
        return False
    return True


@settings(FAST, max_examples=examples(40))
@given(batch=st.lists(questions.filter(_usable), min_size=1, max_size=6))
def test_batches_agree_with_single_questions(answerer, batch):
    results = answerer.ask_batch(batch, k=2)
    for question, result in zip(batch, results):
        single = answerer.ask(question, k=2)
        assert result.to_json() == single.to_json()
        _check_result(answerer, result)


# ---------------------------------------------------------------------------------------------
# through the real CLI


@pytest.fixture(scope="module")
def cli_workdir(indexed_workdir) -> Path:
    return indexed_workdir


@settings(FAST, max_examples=examples(6))
@given(question=st.text(alphabet=string.printable, max_size=80) | st.lists(st.sampled_from(VOCAB), max_size=12).map(" ".join))
def test_cli_random_printable_questions(cli_workdir, question):
    done = run_qa("ask", "--json", "--", question, cwd=cli_workdir)
    assert "Traceback" not in done.stderr
    assert done.returncode in (0, 3), (done.returncode, done.stderr)
    if done.returncode == 3:
        assert len(done.stderr.strip().splitlines()) == 1
    else:
        assert done.stdout.count("\n") == 1 and not done.stderr
