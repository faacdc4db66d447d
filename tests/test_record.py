"""The JSON answer record of shared/eval/README.md, checked against the files it cites."""
import json
from pathlib import Path

import pytest

from conftest import own_questions, run_qa
from qa.answerer import normalize_answer


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    import shutil

    from conftest import SEEDS

    work = tmp_path_factory.mktemp("rec")
    shutil.copytree(SEEDS, work / "seeds")
    out = []
    for q in own_questions()[:12]:
        done = run_qa("ask", q["question"], "--json", "--top-k", "3", cwd=work)
        assert done.returncode == 0, done.stderr
        out.append(json.loads(done.stdout))
    return work, out


def test_offsets_cut_out_exactly_the_answer_and_sentence(records):
    work, rows = records
    checked = 0
    for row in rows:
        assert set(row) == {"question", "abstained", "answers"}
        for a in row["answers"]:
            src = a["source"]
            text = (work / src["path"]).read_text(encoding="utf-8")
            assert text[src["start"] : src["end"]] == a["answer"]
            assert text[src["sentence_start"] : src["sentence_end"]] == a["sentence"]
            assert src["sentence_start"] <= src["start"] < src["end"] <= src["sentence_end"]
            assert src["line"] == text.count("\n", 0, src["start"]) + 1
            assert 0.0 <= a["score"] <= 1.0
            for s in a["supporting"]:
                other = (work / s["path"]).read_text(encoding="utf-8")
                # the same answer, up to case, articles and punctuation ("the Middle East ..." supports "Middle East ...")
                assert normalize_answer(other[s["start"] : s["end"]]) == normalize_answer(a["answer"])
            checked += 1
        scores = [a["score"] for a in row["answers"]]
        assert scores == sorted(scores, reverse=True)
    assert checked >= len(rows)


def test_answers_are_whole_words(records):
    work, rows = records
    for row in rows:
        for a in row["answers"]:
            src = a["source"]
            text = (work / src["path"]).read_text(encoding="utf-8")
            before = text[src["start"] - 1] if src["start"] else " "
            after = text[src["end"]] if src["end"] < len(text) else " "
            assert not (before.isalnum() and a["answer"][0].isalnum()), a["answer"]
            assert not (after.isalnum() and a["answer"][-1].isalnum()), a["answer"]


def test_distinct_answers_are_distinct(records):
    _, rows = records
    for row in rows:
        texts = [a["answer"].lower() for a in row["answers"]]
        assert len(texts) == len(set(texts))
