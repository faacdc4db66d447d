"""qa.evaluate: score.py's metrics, SQuAD corpus writing, retrieval and calibration figures."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from qa import evaluate as ev
from qa.answerer import THRESHOLD, Answerer
from qa.embedder import Hashing
from qa.errors import BadInput
from qa.retriever import Retriever, Weights
from qa.ingest import build
from qa.store import load

from conftest import OWN as DEV, SEEDS, SHARED

# ---------------------------------------------------------------------------------------------
# Metrics on hand-made pairs


def test_normalize_matches_squad():
    assert ev.normalize("The Cat’s  hat!") == "cats hat"
    assert ev.normalize("An apple, a pear") == "apple pear"
    assert ev.normalize("—dash—") == "—dash—"  # score.py strips ASCII punctuation only


def test_token_f1_partial_overlap():
    # 3 shared tokens; precision 3/4, recall 3/3 -> F1 = 2 * 0.75 * 1 / 1.75 = 6/7.
    assert ev.token_f1("Staffan de Mistura said", "Staffan de Mistura") == pytest.approx(6 / 7)
    # "the" is an article and goes; "US envoy" vs "envoy": precision 1/2, recall 1 -> 2/3.
    assert ev.token_f1("US envoy", "the envoy") == pytest.approx(2 / 3)
    assert ev.token_f1("Paris", "London") == 0.0
    assert ev.token_f1("the", "a") == 1.0  # both empty after normalisation


def _record(answer, sentence, path, start, end, abstained=False):
    return {"question": "q", "abstained": abstained, "answers": [
        {"answer": answer, "sentence": sentence, "score": 0.5,
         "source": {"path": path, "start": start, "end": end}}]}


def test_score_hand_made():
    texts = {"a/one.txt": "Moscow backs Staffan de Mistura today.", "a/two.txt": "Nothing here."}
    golds = [
        ev.Gold("1", "Who?", ("Staffan de Mistura",), ("one.txt",)),
        ev.Gold("2", "Who?", ("Staffan de Mistura",), ("one.txt",)),
        ev.Gold("3", "Who?", ("Staffan de Mistura",), ("one.txt",)),
        ev.Gold("4", "Unknown?", (), ()),
        ev.Gold("5", "Unknown?", (), ()),
        ev.Gold("6", "Who?", ("Nobody",), ("one.txt",)),
    ]
    sentence = texts["a/one.txt"]
    records = [
        # right sentence and source, span "de Mistura today": EM 0, F1 2*(2/3)*(2/3)/(4/3) = 2/3
        _record("de Mistura today", sentence, "a/one.txt", 21, 37),
        # right sentence, wrong file: not sentence_acc, still span-scored; offsets wrong
        _record("Staffan de Mistura", sentence, "a/two.txt", 0, 5),
        _record("Staffan", sentence, "a/one.txt", 13, 20, abstained=True),  # abstained
        _record("x", "x", "a/one.txt", 0, 1, abstained=True),  # unanswerable, abstained: ok
        _record("Moscow", sentence, "a/one.txt", 0, 6),  # unanswerable, answered: not ok
        None,  # no record at all
    ]
    metrics, verdicts = ev.score(golds, records, texts.get)
    assert metrics.questions == 6 and metrics.answerable == 4
    assert metrics.sentence_acc == pytest.approx(1 / 4)
    assert metrics.span_em == pytest.approx(1 / 4)
    assert metrics.span_f1 == pytest.approx((2 / 3 + 1) / 4)
    assert metrics.answered == pytest.approx(2 / 4)
    assert metrics.abstain_ok == pytest.approx(1 / 2)
    # Offsets: records 1, 3, 5 cut out their text ("Staffan" at 13:20, "Moscow" at 0:6); 2 and 4 do not.
    assert metrics.offsets_ok == pytest.approx(3 / 5)
    assert metrics.mean_answer_tokens == pytest.approx((3 + 3) / 2)
    assert [v.correct for v in verdicts] == [True, False, True, False, False, False]
    assert verdicts[2].failure == "abstained" and verdicts[5].failure == "no answer record"
    assert metrics.to_json()["span_f1"] == round((2 / 3 + 1) / 4, 4)


def test_abstain_ok_is_none_without_unanswerable():
    golds = [ev.Gold("1", "q", ("a",), ("f.txt",))]
    metrics, _ = ev.score(golds, [None], lambda _: None)
    assert metrics.abstain_ok is None and metrics.sentence_acc == 0.0


def test_calibration_by_hand():
    cal = ev.calibrate([0.9, 0.8, 0.3, 0.1], [True, False, True, False], threshold=0.3)
    assert cal.brier == pytest.approx((0.01 + 0.64 + 0.49 + 0.01) / 4)
    assert cal.ece == pytest.approx((0.1 + 0.8 + 0.7 + 0.1) / 4)
    assert [(p.coverage, round(p.accuracy, 4)) for p in cal.curve] == [(0.25, 1.0), (0.5, 0.5), (0.75, 0.6667), (1.0, 0.5)]
    assert cal.coverage_at_threshold == 0.75 and cal.accuracy_at_threshold == pytest.approx(2 / 3)
    assert sum(b.count for b in cal.bins) == 4
    assert ev.calibrate([1.0], [True], 0.5).bins[-1].hi == 1.0  # a perfect score lands in the top bin


def test_retrieval_from_ranks():
    r = ev.retrieval_from_ranks([1, 2, None, 7], (1, 5, 20))
    assert r.recall == {1: 0.25, 5: 0.5, 20: 0.75}
    assert r.mrr == pytest.approx((1 + 0.5 + 1 / 7) / 4)


def test_load_gold(tmp_path):
    path = tmp_path / "gold.jsonl"
    path.write_text('{"id": "d1", "question": "Who?", "answers": ["A"], "sources": ["x.txt"], "type": "person", "note": "n"}\n\n'
                    '{"id": "d2", "question": "Why?", "answers": [], "sources": [], "type": "unanswerable"}\n', encoding="utf-8")
    golds = ev.load_gold(path)
    assert golds == [ev.Gold("d1", "Who?", ("A",), ("x.txt",), "person"), ev.Gold("d2", "Why?", (), (), "unanswerable")]
    assert not golds[1].answerable
    path.write_text('{"question": "no id"}\n', encoding="utf-8")
    with pytest.raises(BadInput, match="gold.jsonl:1"):
        ev.load_gold(path)


# ---------------------------------------------------------------------------------------------
# A tiny SQuAD, end to end with the hashing embedder

SQUAD = {"version": "v2.0", "data": [
    {"title": "Super_Bowl_50", "paragraphs": [
        {"context": "Super Bowl 50 was an American football game to determine the champion of the National Football "
                    "League for the 2015 season. The Denver Broncos defeated the Carolina Panthers 24–10 to earn "
                    "their third Super Bowl title. The game was played on February 7, 2016, at Levi's Stadium in "
                    "Santa Clara, California.",
         "qas": [
             {"id": "q1", "question": "Which team won Super Bowl 50?", "is_impossible": False,
              "answers": [{"text": "Denver Broncos", "answer_start": 128}, {"text": "Denver Broncos", "answer_start": 128}]},
             {"id": "q2", "question": "Where was Super Bowl 50 played?", "is_impossible": False,
              "answers": [{"text": "Levi's Stadium", "answer_start": 0}]},
             {"id": "q3", "question": "Who sang the anthem at Super Bowl 51?", "is_impossible": True, "answers": []},
         ]},
        {"context": "The league emphasized the golden anniversary with various gold-themed initiatives. Beyoncé and "
                    "Bruno Mars headlined the halftime show, which was watched by 115 million viewers.",
         "qas": [{"id": "q4", "question": "Who headlined the halftime show?", "is_impossible": False,
                  "answers": [{"text": "Beyoncé and Bruno Mars", "answer_start": 0}]}]},
    ]},
    {"title": "Warsaw", "paragraphs": [
        {"context": "Warsaw is the capital and largest city of Poland. It stands on the Vistula River in east-central "
                    "Poland, and its population is officially estimated at 1.8 million residents.",
         "qas": [{"id": "q5", "question": "On which river does Warsaw stand?", "is_impossible": False,
                  "answers": [{"text": "Vistula River", "answer_start": 0}, {"text": "the Vistula", "answer_start": 0}]},
                 {"id": "q6", "question": "How many people live in Warsaw?", "is_impossible": False,
                  "answers": [{"text": "1.8 million", "answer_start": 0}]}]},
    ]},
]}


@pytest.fixture
def squad(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # cited paths open from here, as score.py opens them
    source = tmp_path / "squad.json"
    source.write_text(json.dumps(SQUAD), encoding="utf-8")
    return source


def test_write_squad_corpus(squad, tmp_path):
    corpus = tmp_path / "corpus"
    golds = ev.write_squad_corpus(squad, corpus)
    assert sorted(p.name for p in corpus.iterdir()) == ["00-000.txt", "00-001.txt", "01-000.txt"]
    text = (corpus / "00-000.txt").read_text(encoding="utf-8")
    assert text.startswith("Super Bowl 50\n\nSuper Bowl 50 was an American football game")
    assert [g.id for g in golds] == ["q1", "q2", "q3", "q4", "q5", "q6"]
    assert golds[0].answers == ("Denver Broncos",) and golds[0].sources == ("00-000.txt",)
    assert golds[2].answers == () and golds[2].type == "unanswerable"
    assert golds[4].sources == ("01-000.txt",)

    (corpus / "00-000.txt").touch()
    stamp = (corpus / "00-000.txt").stat().st_mtime_ns
    ev.write_squad_corpus(squad, corpus)
    assert (corpus / "00-000.txt").stat().st_mtime_ns == stamp  # identical content is not rewritten

    only = ev.write_squad_corpus(squad, corpus, articles=slice(1, 2))
    assert [g.id for g in only] == ["q5", "q6"]
    assert sorted(p.name for p in corpus.iterdir()) == ["01-000.txt"]  # numbering follows the whole file


def test_evaluate_tiny_squad(squad, tmp_path):
    corpus, root = tmp_path / "corpus", tmp_path / "index"
    golds = ev.write_squad_corpus(squad, corpus)
    build(corpus, root, Hashing())
    index = load(root)
    assert index.documents[0].title == "Super Bowl 50"  # the title line became metadata
    answerer = Answerer(index, Hashing(), corpus)
    seen = []
    report = ev.evaluate(answerer, golds, batch=4, progress=lambda stage, done, total: seen.append((done, total)),
                         baselines={"bm25": Retriever(index, Hashing(), Weights(1, 0, 0, 0)),
                                    "dense": Retriever(index, Hashing(), Weights(0, 1, 0, 0))})
    assert seen[-1] == (6, 6)
    m = report.metrics
    assert m.questions == 6 and m.answerable == 5
    assert m.offsets_ok == 1.0
    assert m.abstain_ok is not None
    for r in [report.retrieval, *report.baselines.values()]:
        assert r.questions == 5
        assert all(0.0 <= v <= 1.0 for v in r.recall.values())
        assert r.recall[1] <= r.recall[5] <= r.recall[20] and 0 < r.mrr <= 1
    assert report.retrieval.recall[5] == 1.0  # three documents: the gold one is always in the top 5
    assert 0 <= m.sentence_acc <= m.answered <= 1 and 0 <= m.span_em <= m.span_f1 <= 1
    assert 0 <= report.calibration.ece <= 1 and 0 <= report.calibration.brier <= 1
    assert report.calibration.threshold == THRESHOLD
    assert [row.id for row in report.rows] == [g.id for g in golds]
    assert report.rows[2].type == "unanswerable" and not report.rows[2].correct
    out = report.to_json(rows=True)
    json.dumps(out)
    assert out["retrieval"]["recall@1"] == round(report.retrieval.recall[1], 4) and len(out["rows"]) == 6
    assert set(out) >= {"sentence_acc", "span_em", "span_f1", "answered", "abstain_ok", "offsets_ok", "mean_answer_tokens"}


def test_plot_written(squad, tmp_path):
    pytest.importorskip("matplotlib")
    corpus, root = tmp_path / "corpus", tmp_path / "index"
    golds = ev.write_squad_corpus(squad, corpus)
    build(corpus, root, Hashing())
    report = ev.evaluate(Answerer(load(root), Hashing(), corpus), golds)
    target = tmp_path / "plots" / "calibration.png"
    ev.plot(report, target)
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and target.stat().st_size > 5000


def test_plot_without_matplotlib(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails as if not installed
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    report = ev.EvalReport(ev.score([], [])[0], ev.retrieval_from_ranks([]), {}, ev.calibrate([], [], 0.3), (), (), {})
    with pytest.raises(BadInput, match="pip install 'qa\\[plot\\]'"):
        ev.plot(report, tmp_path / "x.png")


def test_fast_tests_do_not_load_torch():
    assert "torch" not in sys.modules and "sentence_transformers" not in sys.modules


# ---------------------------------------------------------------------------------------------
# Same figures as the shared scorer


def test_matches_shared_score_py(tmp_path, monkeypatch):
    scorer = SHARED / "eval" / "score.py"
    if not (scorer.exists() and DEV.exists()):
        pytest.skip("shared/eval is not present")
    monkeypatch.chdir(tmp_path)
    import shutil

    shutil.copytree(SEEDS, tmp_path / "seeds")
    corpus, root = Path("seeds"), tmp_path / "index"
    build(corpus, root, Hashing())
    answerer = Answerer(load(root), Hashing(), corpus)
    golds = ev.load_gold(DEV)
    report = ev.evaluate(answerer, golds, k_answers=3)
    results = answerer.ask_batch([g.question for g in golds], 3, [g.id for g in golds])
    answers = tmp_path / "answers.jsonl"
    answers.write_text("".join(json.dumps(r.to_json()) + "\n" for r in results), encoding="utf-8")
    shared = subprocess.run([sys.executable, str(scorer), str(DEV), str(answers), "--json"],
                            capture_output=True, text=True, check=True)
    assert report.metrics.to_json() == json.loads(shared.stdout)
