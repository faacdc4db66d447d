"""End to end on the real packaged model over seeds/ (marked e2e: `bin/test` and CI run it)."""
import json
import re
import shutil

import pytest

from conftest import SEEDS, own_questions, run_qa

pytestmark = pytest.mark.e2e
MODEL = "all-MiniLM-L6-v2"


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    work = tmp_path_factory.mktemp("e2e")
    shutil.copytree(SEEDS, work / "seeds")
    return work


def test_first_ask_indexes_and_names_the_envoy(work):
    done = run_qa("ask", "Whose positive reaction to the start of the Russian-Syrian humanitarian operation in Aleppo did Borodavkin welcome?", "--json", cwd=work, model=MODEL, timeout=900)
    assert done.returncode == 0, done.stderr
    assert "indexing" in done.stderr
    top = json.loads(done.stdout)["answers"][0]
    assert "Staffan de Mistura" in top["sentence"]
    text = (work / top["source"]["path"]).read_text(encoding="utf-8")
    assert "Staffan de Mistura" in text[top["source"]["sentence_start"] : top["source"]["sentence_end"]]


def test_dev_set_through_batch_has_exact_offsets_and_good_sentences(work):
    questions = own_questions()
    src = work / "dev.jsonl"
    src.write_text("".join(json.dumps({"id": q["id"], "question": q["question"]}) + "\n" for q in questions), encoding="utf-8")
    done = run_qa("batch", src, "-o", work / "answers.jsonl", "--top-k", "3", cwd=work, model=MODEL, timeout=900)
    assert done.returncode == 0, done.stderr
    rows = {r["id"]: r for r in map(json.loads, (work / "answers.jsonl").read_text(encoding="utf-8").splitlines())}
    assert list(rows) == [q["id"] for q in questions]
    right = answerable = 0
    for q in questions:
        for a in rows[q["id"]]["answers"]:
            text = (work / a["source"]["path"]).read_text(encoding="utf-8")
            assert text[a["source"]["start"] : a["source"]["end"]] == a["answer"]
            assert text[a["source"]["sentence_start"] : a["source"]["sentence_end"]] == a["sentence"]
        if q["answers"]:
            answerable += 1
            top = rows[q["id"]]["answers"][0]
            norm = lambda s: re.sub(r"\W+", " ", s.lower().replace("’", "'")).strip()
            if any(norm(g) in norm(top["sentence"]) for g in q["answers"]) and top["source"]["path"].split("/")[-1] in q["sources"]:
                right += 1
    assert right / answerable >= 0.85, right / answerable


def test_reindexing_an_unchanged_corpus_changes_no_answer(work):
    ask = lambda: run_qa("ask", "In how many areas does Bogdanov want work on Syria to proceed in parallel without preconditions?", "--json", "-k", "3", cwd=work, model=MODEL)
    before = ask().stdout
    assert run_qa("index", cwd=work, model=MODEL).returncode == 0
    assert run_qa("index", "--rebuild", cwd=work, model=MODEL).returncode == 0
    assert ask().stdout == before


def test_status_reports_the_real_model(work):
    done = run_qa("status", "--json", cwd=work, model=MODEL)
    info = json.loads(done.stdout)
    assert info["model"] == MODEL and info["files"] == 5 and info["stale"] is False
