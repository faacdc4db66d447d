"""End to end on the real packaged model over a corpus mixing .txt, .md, .html, .pdf and .docx
(marked e2e: `bin/test` and CI run it). The questions are ours, about our own fixtures."""
import json
import shutil

import pytest

from conftest import run_qa
from qa.answerer import normalize_answer
from test_documents import BOILERPLATE, FIXTURES, GOOD

pytestmark = pytest.mark.e2e
MODEL = "all-MiniLM-L6-v2"

# (id, question, a phrase the answer's sentence must hold, the file, its page or None)
ANSWERABLE = [
    ("txt", "How many electric vans is Harwick Motors recalling?", "12,000", "harwick-recall.txt", None),
    ("md", "When should tomatoes be planted out in an unheated greenhouse?", "second week of May",
     "cold-greenhouse-tomatoes.md", None),
    ("html-sport", "In what time did Grace Okafor win the women's race at the Lakeside Marathon?", "2 hours 21 minutes",
     "harbour-courier-marathon.html", None),
    ("html-science", "How far beneath the floor of the Baltic Sea were living microbes found?", "2,140 metres",
     "field-and-lab-deep-microbes.html", None),
    ("html-business", "How many jobs will go when the Dundee bakery closes?", "140 jobs",
     "the-ledger-bakery-closure.html", None),
    ("pdf-word-processor", "What did it cost to rebuild the Kestrel Hill treatment works?", "42 million pounds",
     "report.pdf", 2),
    ("pdf-word-processor-p3", "By how much will average household bills rise from April 2026?", "4.5 per cent",
     "report.pdf", 3),
    ("pdf-latex", "What was the mean ground speed of the painted ladies?", "9.2 metres per second", "paper.pdf", 1),
    ("docx", "When did the rowing club's new boathouse on Wharf Lane open?", "14 March", "newsletter.docx", None),
]

# Only the pages' menus, banners, related links, comments and footers say these.
BOILERPLATE_ONLY = [
    "How many partners store and access information on your device?",
    "Which road will the new skate park be built on?",
    "What is the Harbour Courier's company number?",
    "How long did Marcus take to run the race in 2019?",
    "How many readers get the Friday digest of the week's best science?",
    "Who is the editor of Field & Lab?",
    "Which bank offers a 200-pound welcome bonus for a business account?",
    "When did Sandra's grandfather work on the oatcake line?",
    "Which goalkeeper did Harbour Rovers sign from Portugal?",
]


@pytest.fixture(scope="module")
def answers(tmp_path_factory):
    work = tmp_path_factory.mktemp("formats-e2e")
    (work / "docs").mkdir()
    for name in GOOD:
        shutil.copy(FIXTURES / name, work / "docs" / name)
    done = run_qa("index", "docs", cwd=work, model=MODEL, timeout=900)
    assert done.returncode == 0, done.stderr
    questions = [{"id": i, "question": q} for i, q, *_ in ANSWERABLE]
    questions += [{"id": f"furniture-{n}", "question": q} for n, q in enumerate(BOILERPLATE_ONLY)]
    (work / "q.jsonl").write_text("".join(json.dumps(q) + "\n" for q in questions), encoding="utf-8")
    done = run_qa("batch", "q.jsonl", "-o", "a.jsonl", "-k", "3", "-c", "docs", cwd=work, model=MODEL, timeout=900)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in (work / "a.jsonl").read_text(encoding="utf-8").splitlines()]
    return work, {r["id"]: r for r in rows}


def _text(work, path, cache={}):
    if path not in cache:
        done = run_qa("show", "--text", path, cwd=work, model=MODEL)
        assert done.returncode == 0, done.stderr
        cache[path] = done.stdout
    return cache[path]


@pytest.mark.parametrize("qid, question, phrase, name, page", ANSWERABLE, ids=[a[0] for a in ANSWERABLE])
def test_each_format_answers_and_cites_exactly(answers, qid, question, phrase, name, page):
    work, rows = answers
    record = rows[qid]
    assert not record["abstained"], record
    top = record["answers"][0]
    source = top["source"]
    assert source["path"] == f"docs/{name}"
    assert phrase in top["sentence"], top
    assert source.get("page") == page
    text = _text(work, source["path"])
    for a in record["answers"]:  # every answer shown, and each place that supports it, cut exactly
        t = _text(work, a["source"]["path"])
        assert t[a["source"]["start"]:a["source"]["end"]] == a["answer"]
        assert t[a["source"]["sentence_start"]:a["source"]["sentence_end"]] == a["sentence"]
        for s in a["supporting"]:  # the same answer, in answers' normal form (articles and case aside)
            assert normalize_answer(_text(work, s["path"])[s["start"]:s["end"]]) == normalize_answer(a["answer"])
    assert text.count("\n", 0, source["start"]) + 1 == source["line"]


def test_boilerplate_never_answers(answers):
    work, rows = answers
    furniture = [phrase for phrases in BOILERPLATE.values() for phrase in phrases]
    for n, question in enumerate(BOILERPLATE_ONLY):
        record = rows[f"furniture-{n}"]
        assert record["abstained"], (question, record["answers"][:1])
        for a in record["answers"]:
            cited = [a["source"], *a["supporting"]]
            for c in cited:
                sentence = _text(work, c["path"])[c.get("sentence_start", c["start"]):c.get("sentence_end", c["end"])]
                assert not any(phrase in sentence for phrase in furniture), (question, sentence)
