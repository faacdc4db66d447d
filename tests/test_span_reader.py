"""The trained reader shipped in qa/reader/weights, through its interface, on passages written for
these tests (sport, science, business: nothing like the seed articles or any evaluation set)."""
import json
import shutil
from pathlib import Path

import pytest

from qa.errors import ExitStatus, ModelProblem
from qa.reader import Span
from qa.reader import model as reader_model
from qa.reader.model import SpanReader, whole_words
from qa.reader.rules import RuleReader

SPORT = ("The final was played in Lisbon on a wet Sunday evening. Maria Okafor scored twice in the second half, "
         "and the visitors won the cup 3-1 in front of 48,000 fans.")
SCIENCE = ("Researchers at the Hallam Institute measured the melting point of the new alloy at 1,412 degrees "
           "Celsius. The alloy is made mostly of nickel and cobalt, with small amounts of tungsten.")
BUSINESS = ("Brightwater Foods said on Tuesday that its quarterly revenue rose to $2.3 billion. Chief executive "
            "Daniel Rees attributed the growth to strong sales of frozen meals in Canada.")


@pytest.fixture(scope="module")
def reader():
    return SpanReader()


def best(reader, question, passages):
    spans = [sp for found in reader.read_batch(question, passages) for sp in found]
    top = max(spans, key=lambda sp: sp.score - sp.null)
    return passages[top.passage][top.start : top.end], top


@pytest.mark.parametrize("question, passage, expected", [
    ("Who scored two goals in the final?", SPORT, "Maria Okafor"),
    ("How many people watched the final?", SPORT, "48,000"),
    ("Where was the final played?", SPORT, "Lisbon"),
    ("At what temperature does the alloy melt?", SCIENCE, "1,412"),
    ("Which institute did the measurements?", SCIENCE, "Hallam Institute"),
    ("Who runs Brightwater Foods?", BUSINESS, "Daniel Rees"),
    ("In which country did frozen meals sell well?", BUSINESS, "Canada"),
])
def test_reader_finds_the_phrase(reader, question, passage, expected):
    text, _ = best(reader, question, [passage])
    assert expected.lower() in text.lower() and len(text) <= len(expected) + 25, text


def test_reader_picks_the_passage_that_answers(reader):
    text, top = best(reader, "What was the company's quarterly revenue?", [SPORT, SCIENCE, BUSINESS])
    assert top.passage == 2 and "$2.3 billion" in text


def test_no_answer_scores_higher_where_the_passage_does_not_answer(reader):
    question = "Who scored twice in the second half?"
    (answering,), (unrelated,) = reader.read_batch(question, [SPORT]), reader.read_batch(question, [SCIENCE])
    assert answering[0].score - answering[0].null > unrelated[0].score - unrelated[0].null


def test_spans_are_whole_words_inside_their_passage(reader):
    passages = [SPORT, SCIENCE, BUSINESS, "Short.", ""]
    found = reader.read_batch("Who said what, and when?", passages, top=5)
    assert len(found) == len(passages)
    for n, spans in enumerate(found):
        text = passages[n]
        for sp in spans:
            assert isinstance(sp, Span) and sp.passage == n and 0 <= sp.start < sp.end <= len(text)
            assert not (sp.start > 0 and text[sp.start - 1].isalnum() and text[sp.start].isalnum())
            assert not (sp.end < len(text) and text[sp.end - 1].isalnum() and text[sp.end].isalnum())
            assert 0.0 <= sp.prob <= 1.0
        assert [sp.score for sp in spans] == sorted((sp.score for sp in spans), reverse=True)


def test_a_long_passage_is_read_in_windows(reader):
    filler = " ".join(f"Sentence number {i} says nothing of note about the weather." for i in range(60))
    passage = filler + " The lighthouse keeper was Tomas Berg. " + filler
    text, _ = best(reader, "Who was the lighthouse keeper?", [passage])
    assert "Tomas Berg" in text


def test_whole_words_widens_word_pieces_and_trims_separators():
    text = "Lyndon B. Johnson, president; 1963"
    assert text[slice(*whole_words(text, 2, 4))] == "Lyndon"
    assert text[slice(*whole_words(text, 10, 18))] == "Johnson"
    assert text[slice(*whole_words(text, 0, 9))] == "Lyndon B."  # an initial keeps its full stop


def test_rule_reader_has_the_same_interface():
    found = RuleReader().read_batch("Who runs Brightwater Foods?", [SPORT, BUSINESS])
    assert len(found) == 2 and all(isinstance(sp, Span) for spans in found for sp in spans)
    top = max((sp for spans in found for sp in spans), key=lambda sp: sp.score)
    assert top.passage == 1


@pytest.fixture
def weights_copy(tmp_path):
    folder = tmp_path / "weights"
    shutil.copytree(reader_model.WEIGHTS, folder)
    return folder


def test_damaged_model_file_is_named_with_the_fix(weights_copy):
    data = bytearray((weights_copy / "reader.onnx").read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = b"\x00" * 64
    (weights_copy / "reader.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelProblem, match=r"reader\.onnx is damaged.*git checkout -- qa/reader/weights"):
        SpanReader(weights_copy)


@pytest.mark.parametrize("name", ["reader.onnx", "tokenizer.json", "reader.json"])
def test_missing_model_file_is_named(weights_copy, name):
    (weights_copy / name).unlink()
    with pytest.raises(ModelProblem, match="missing"):
        SpanReader(weights_copy)


def test_garbled_reader_json_and_calibration_are_refused(weights_copy):
    (weights_copy / "reader.json").write_text("{not json")
    with pytest.raises(ModelProblem, match="reader.json is damaged"):
        SpanReader(weights_copy)
    info = reader_model.read_info(reader_model.WEIGHTS)
    (weights_copy / "calibration.json").write_text(json.dumps({"weights": {"margin": "x"}, "bias": 0, "threshold": 0.5}))
    with pytest.raises(ModelProblem, match="calibration.json is damaged"):
        reader_model.load_calibration(info, weights_copy)
    good = json.loads((reader_model.WEIGHTS / "calibration.json").read_text())
    for broken in ({"top": {"bias": 0.1, "logit": -1.0}}, {"passages": 0}, {"top": {"bias": 0.1}}):
        (weights_copy / "calibration.json").write_text(json.dumps({**good, **broken}))
        with pytest.raises(ModelProblem, match="calibration.json is damaged"):
            reader_model.load_calibration(info, weights_copy)
    shutil.copyfile(reader_model.WEIGHTS / "calibration.json", weights_copy / "calibration.json")
    other = {**info, "files": {**info["files"], "reader.onnx": {**info["files"]["reader.onnx"], "sha256": "0" * 64}}}
    with pytest.raises(ModelProblem, match="fitted for another model"):
        reader_model.load_calibration(other, weights_copy)


@pytest.mark.parametrize("text, start, end, expected", [
    ("Who was Kennedy's vice president? Lyndon B. Johnson took office.", 34, 42, "Lyndon B. Johnson"),
    ("He met John F. Kennedy in 1960.", 7, 13, "John F. Kennedy"),
    ("He met John F. Kennedy in 1960.", 7, 11, "John"),
])
def test_a_name_is_never_cut_at_an_initial(text, start, end, expected):
    assert text[slice(*whole_words(text, start, end))] == expected


def test_qa_ask_with_a_damaged_model_says_so_in_one_line(weights_copy, workdir):
    from conftest import run_qa

    data = bytearray((weights_copy / "reader.onnx").read_bytes())
    data[1000:1100] = bytes(100)
    (weights_copy / "reader.onnx").write_bytes(bytes(data))
    done = run_qa("ask", "Who scored?", cwd=workdir, env={"QA_READER": str(weights_copy)})
    assert done.returncode == ExitStatus.MODEL, done.stderr
    assert done.stderr.strip().count("\n") == 0 and "Traceback" not in done.stderr
    assert "reader.onnx is damaged" in done.stderr and "git checkout" in done.stderr
    assert not (workdir / "vectors" / "CURRENT").exists()  # refused before building any index


def test_a_model_damaged_after_indexing_still_fails_in_one_line(weights_copy, workdir):
    """With an index in place the model loads in a thread beside it: its damage must still end
    the command with one line and exit 7, not a traceback or an abort in onnxruntime."""
    from conftest import run_qa

    assert run_qa("index", cwd=workdir).returncode == 0
    data = bytearray((weights_copy / "reader.onnx").read_bytes())
    data[5000:5100] = bytes(100)  # same size: only the checksum tells
    (weights_copy / "reader.onnx").write_bytes(bytes(data))
    done = run_qa("ask", "Who scored?", cwd=workdir, env={"QA_READER": str(weights_copy)})
    assert done.returncode == ExitStatus.MODEL, done.stderr
    assert done.stderr.strip().count("\n") == 0 and "reader.onnx is damaged" in done.stderr


def test_qa_reader_setting_is_checked(workdir):
    from conftest import run_qa

    done = run_qa("ask", "Who scored?", cwd=workdir, env={"QA_READER": "bogus"})
    assert done.returncode == ExitStatus.USAGE and "QA_READER" in done.stderr


class _Finds:
    """A stand-in reader that marks given phrases wherever a passage holds them (for the answerer's
    merging, not the model): "Staffan de Mistura" scores higher than its shorter forms."""

    name = "finds"

    def __init__(self, phrases):
        self.phrases = phrases  # phrase -> probability

    def read_batch(self, question, passages, top=3):
        out = []
        for n, text in enumerate(passages):
            found = []
            for phrase, prob in self.phrases.items():
                at = text.find(phrase)
                if at >= 0:
                    found.append(Span(n, at, at + len(phrase), prob, 0.0, prob))
            out.append(sorted(found, key=lambda sp: -sp.score)[:top])
        return out


def test_top_k_never_shows_the_same_answer_twice(tmp_path):
    from conftest import SEEDS
    from qa import ingest, store
    from qa.answerer import Answerer
    from qa.embedder import Hashing

    ingest.build(SEEDS, tmp_path / "v", Hashing())
    finds = _Finds({"Staffan de Mistura": 0.9, "de Mistura": 0.6, "Mistura": 0.5, "Lavrov": 0.4})
    answerer = Answerer(store.load(tmp_path / "v"), Hashing(), SEEDS, reader=finds, calibration=None, passages=10)
    answers = answerer.ask("Who is the envoy?", k=3).answers
    assert [a.answer for a in answers][:2] == ["Staffan de Mistura", "Lavrov"]
    for a in answers:  # supporting citations cut out the answer itself, not a longer or shorter form
        for c in a.supporting:
            assert (SEEDS / Path(c.path).name).read_text(encoding="utf-8")[c.start : c.end].lower() == a.answer.lower()
