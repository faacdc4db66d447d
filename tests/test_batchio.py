"""qa.batchio: question files in, answer files out, resume after a kill."""
from __future__ import annotations

import csv
import io
import json
import sys
import tempfile
from itertools import islice
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qa.batchio import (
    CSV_COLUMNS,
    MAX_QUESTION_CHARS,
    Item,
    answered_keys,
    open_writer,
    read_items,
)
from qa.errors import BadInput
from qa.types import Answer, Citation, Result


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def result_for(item: Item, answer: str = "Staffan de Mistura", abstained: bool = False) -> Result:
    citation = Citation(
        path="seeds/000.txt", start=1234, end=1252, sentence_start=1180, sentence_end=1420, line=7,
        title="Moscow backs envoy", date="October 6",
    )
    sentence = f"Moscow backs the UN special envoy for Syria {answer}’s idea, with *stars* and\na newline."
    answers = (Answer(answer=answer, sentence=sentence, score=0.87654, source=citation),)
    return Result(question=item.question or "", answers=answers, abstained=abstained, id=item.id)


# ---------------------------------------------------------------------------- input formats


def test_txt_skips_blank_and_comment_lines_and_numbers_lines_from_one(tmp_path):
    path = write(tmp_path / "q.txt", "# questions\nWho is the envoy?\n\n   \n  Where is Aleppo?  \n  # indented comment\nWhen?\n")
    items = list(read_items(path))
    assert [(i.line, i.id, i.question, i.error) for i in items] == [
        (2, None, "Who is the envoy?", None),
        (5, None, "Where is Aleppo?", None),
        (7, None, "When?", None),
    ]
    assert [i.key for i in items] == ["line:2", "line:5", "line:7"]


def test_txt_with_bom_and_crlf(tmp_path):
    path = write(tmp_path / "q.txt", "\ufeffFirst?\r\nSecond?\r\n")
    assert [(i.line, i.question) for i in read_items(path)] == [(1, "First?"), (2, "Second?")]


def test_jsonl_ids_are_strings_and_optional(tmp_path):
    lines = [
        '{"id": "d001", "question": "Who?"}',
        "",
        '{"id": 7, "question": "What?"}',
        '{"id": 2.5, "question": "Why?", "extra": [1]}',
        '{"question": "When?"}',
        '{"id": null, "question": "Where?"}',
        '{"id": "", "question": "Empty id?"}',
    ]
    path = write(tmp_path / "q.jsonl", "\n".join(lines) + "\n")
    items = list(read_items(path))
    assert [(i.line, i.id, i.question, i.error) for i in items] == [
        (1, "d001", "Who?", None),
        (3, "7", "What?", None),
        (4, "2.5", "Why?", None),
        (5, None, "When?", None),
        (6, None, "Where?", None),
        (7, None, "Empty id?", None),
    ]
    assert [i.key for i in items] == ["d001", "7", "2.5", "line:5", "line:6", "line:7"]


def test_csv_quoted_commas_newlines_bom_and_start_lines(tmp_path):
    text = (
        "\ufeffID , Question,notes\r\n"
        'a1,"Who said ""no"", and why?",x\r\n'
        '\r\n'
        'a2,"A question\r\nover two lines?",y\r\n'
        ",,\r\n"
        ",Without an id?\r\n"
        "a4,Short row\r\n"
    )
    path = write(tmp_path / "q.csv", text)
    items = list(read_items(path))
    assert [(i.line, i.id, i.question, i.error) for i in items] == [
        (2, "a1", 'Who said "no", and why?', None),
        (4, "a2", "A question\r\nover two lines?", None),
        (7, None, "Without an id?", None),
        (8, "a4", "Short row", None),
    ]


def test_csv_without_id_column_and_question_not_first(tmp_path):
    path = write(tmp_path / "q.CSV", "topic,question\nwar,Who?\npeace,What?\n")
    assert [(i.line, i.id, i.question) for i in read_items(path)] == [(2, None, "Who?"), (3, None, "What?")]


def test_csv_rows_short_of_trailing_cells(tmp_path):
    path = write(tmp_path / "q.csv", "question,id,notes\nWho?\nWhat?,q2\n")
    assert [(i.line, i.id, i.question, i.error) for i in read_items(path)] == [(2, None, "Who?", None), (3, "q2", "What?", None)]


def test_csv_row_with_unquoted_comma_is_an_error_item(tmp_path):
    path = write(tmp_path / "q.csv", "id,question\n1,Who, and why?\n2,Fine?\n")
    items = list(read_items(path))
    assert items[0].line == 2 and items[0].question is None and "quote" in items[0].error
    assert (items[1].line, items[1].id, items[1].question, items[1].error) == (3, "2", "Fine?", None)


def test_csv_without_question_column_is_bad_input(tmp_path):
    path = write(tmp_path / "q.csv", "id,text\n1,Who?\n")
    with pytest.raises(BadInput, match="question"):
        list(read_items(path))


def test_empty_files_give_no_items(tmp_path):
    for name in ("q.txt", "q.jsonl", "q.csv"):
        assert list(read_items(write(tmp_path / name, ""))) == []


def test_unsupported_extension_names_the_supported_ones(tmp_path):
    path = write(tmp_path / "q.pdf", "Who?\n")
    with pytest.raises(BadInput) as info:
        read_items(path)
    message = str(info.value)
    assert "\n" not in message and all(ext in message for ext in (".txt", ".jsonl", ".csv"))


def test_missing_file_and_unknown_format_are_bad_input_at_call_time(tmp_path):
    with pytest.raises(BadInput, match="no such file"):
        read_items(tmp_path / "nope.txt")
    with pytest.raises(BadInput, match="txt, jsonl or csv"):
        read_items("-", fmt="xml")


def test_fmt_overrides_the_extension(tmp_path):
    path = write(tmp_path / "questions.data", '{"id": "x", "question": "Who?"}\n')
    assert [(i.id, i.question) for i in read_items(path, fmt="jsonl")] == [("x", "Who?")]


# ---------------------------------------------------------------------------- stdin and streams


def test_stdin_is_txt_by_default(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("\ufeff# c\nWho?\n\nWhat?\n"))
    assert [(i.line, i.question) for i in read_items("-")] == [(2, "Who?"), (4, "What?")]


def test_stdin_bytes_as_csv_with_bom_leave_stdin_open(monkeypatch):
    raw = io.BytesIO("\ufeffid,question\nq1,\"Who, then?\"\n".encode("utf-8"))
    stdin = io.TextIOWrapper(raw, encoding="latin-1")  # the console's encoding must not matter
    monkeypatch.setattr(sys, "stdin", stdin)
    assert [(i.line, i.id, i.question) for i in read_items("-", fmt="csv")] == [(2, "q1", "Who, then?")]
    assert not raw.closed


def test_stdin_as_jsonl(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"id": 1, "question": "Who?"}\n'))
    assert [(i.id, i.question) for i in read_items("-", fmt="jsonl")] == [("1", "Who?")]


def test_an_open_stream_can_be_read_and_is_not_closed():
    stream = io.StringIO("id,question\n9,Why?\n")
    assert [(i.id, i.question) for i in read_items(stream, fmt="csv")] == [("9", "Why?")]
    assert not stream.closed


class EndlessQuestions(io.TextIOBase):
    """A stream that never ends and counts what was taken from it."""

    def __init__(self, line: str, first: str = "") -> None:
        self.line, self.first = line, first
        self.taken = 0

    def readable(self) -> bool:
        return True

    def readline(self, size: int = -1) -> str:
        self.taken += 1
        assert self.taken < 1000, "read far past what was asked for"
        return self.first if self.taken == 1 and self.first else self.line

    def __next__(self) -> str:
        return self.readline()


@pytest.mark.parametrize(
    ("fmt", "line", "first"),
    [("txt", "Who?\n", ""), ("jsonl", '{"question": "Who?"}\n', ""), ("csv", "Who?\n", "question\n")],
)
def test_reading_streams(fmt, line, first):
    stream = EndlessQuestions(line, first)
    items = list(islice(read_items(stream, fmt=fmt), 5))
    assert [i.question for i in items] == ["Who?"] * 5
    assert stream.taken <= 7


# ---------------------------------------------------------------------------- bad lines


def test_each_kind_of_bad_jsonl_line_is_an_item_with_its_line_number(tmp_path):
    long_question = "x" * (MAX_QUESTION_CHARS + 1)
    lines = [
        b'{"id": "ok1", "question": "Fine?"}',
        b'{"id": "j", "question": ',  # 2 not JSON
        b'["a list"]',  # 3 not an object
        b'{"id": "m"}',  # 4 no question
        b'{"id": "n", "question": 42}',  # 5 not a string
        b'{"id": "e", "question": ""}',  # 6 empty
        b'{"id": "w", "question": "  \\t "}',  # 7 whitespace only
        json.dumps({"id": "long", "question": long_question}).encode(),  # 8 too long
        b'{"id": "c", "question": "\\u0000\\u0007 \\u001b"}',  # 9 control characters only
        b'{"id": "u", "question": "caf\xe9?"}',  # 10 latin-1, not UTF-8
        b'{"id": ["x"], "question": "Listed id?"}',  # 11 id of the wrong type
        b'{"id": true, "question": "Boolean id?"}',  # 12
        b'{"id": "ok2", "question": "' + ("y" * MAX_QUESTION_CHARS).encode() + b'"}',  # 13 at the limit: fine
    ]
    path = tmp_path / "q.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    items = list(read_items(path))
    assert [i.line for i in items] == list(range(1, 14))
    assert [i.error is None for i in items] == [True] + [False] * 11 + [True]
    errors = {i.line: i.error for i in items}
    assert "not valid JSON" in errors[2]
    assert "not a JSON object" in errors[3] and "list" in errors[3]
    assert 'no "question"' in errors[4]
    assert "not a string" in errors[5]
    assert errors[6] == errors[7] == "empty question"
    assert str(MAX_QUESTION_CHARS) in errors[8].replace(",", "")
    assert "control characters" in errors[9]
    assert "UTF-8" in errors[10]
    assert '"id"' in errors[11] and '"id"' in errors[12]
    assert all("\n" not in e for e in errors.values() if e)
    # ids are kept where they were readable, so the error record can carry them
    assert [items[i].id for i in (3, 4, 5, 8)] == ["m", "n", "e", "c"]
    assert items[7].id == "long" and items[7].question == long_question
    assert items[10].id is None and items[10].question == "Listed id?"


def test_bad_txt_and_csv_lines(tmp_path):
    path = tmp_path / "q.txt"
    path.write_bytes(b"Good?\n\x01\x02\nbad \xff byte?\n" + b"z" * (MAX_QUESTION_CHARS + 1) + b"\nLast?\n")
    items = list(read_items(path))
    assert [(i.line, i.error is None) for i in items] == [(1, True), (2, False), (3, False), (4, False), (5, True)]
    assert "control" in items[1].error and "UTF-8" in items[2].error and "limit" in items[3].error

    path = tmp_path / "q.csv"
    path.write_bytes(b'id,question\n1,Good?\n2,"  "\n3,\n4,"\x00"\n5,Last?\n')
    items = list(read_items(path))
    assert [(i.line, i.id, i.error) for i in items] == [
        (2, "1", None),
        (3, "2", "empty question"),
        (4, "3", "empty question"),
        (5, "4", items[3].error),
        (6, "5", None),
    ]
    assert "control" in items[3].error


def test_a_huge_line_is_reported_without_stopping_the_run(tmp_path, monkeypatch):
    import qa.batchio as batchio

    monkeypatch.setattr(batchio, "MAX_LINE_CHARS", 64)
    path = write(tmp_path / "q.txt", "First?\n" + "w" * 500 + "\nLast?\n")
    items = list(read_items(path))
    assert [(i.line, i.question) for i in items] == [(1, "First?"), (2, None), (3, "Last?")]
    assert items[1].error


def test_thousand_lines_with_five_malformed_keep_order(tmp_path):
    bad_lines = {17, 230, 231, 640, 999}
    lines = []
    for n in range(1, 1001):
        lines.append("{not json" if n in bad_lines else json.dumps({"id": f"q{n}", "question": f"Question {n}?"}))
    path = write(tmp_path / "q.jsonl", "\n".join(lines) + "\n")
    items = list(read_items(path))
    assert len(items) == 1000
    assert [i.line for i in items] == list(range(1, 1001))
    good = [i for i in items if i.error is None]
    bad = [i for i in items if i.error is not None]
    assert len(good) == 995 and len(bad) == 5
    assert [i.line for i in bad] == sorted(bad_lines)
    assert [i.question for i in good] == [f"Question {n}?" for n in range(1, 1001) if n not in bad_lines]


# ---------------------------------------------------------------------------- writers


def sample_items() -> list[Item]:
    return [
        Item(1, "d001", "Who is the envoy?"),
        Item(2, None, "Who, with a comma?"),
        Item(3, "d003", "What is unknown?"),
        Item(4, None, None, "not valid JSON: Expecting value at column 1"),
        Item(5, "d005", "x" * 10, "the question is too long"),
    ]


def write_samples(writer) -> None:
    items = sample_items()
    with writer:
        writer.write_result(items[0], result_for(items[0]))
        writer.write_result(items[1], result_for(items[1], answer="Sergey Lavrov"))
        writer.write_result(items[2], result_for(items[2], abstained=True))
        writer.write_error(items[3])
        writer.write_error(items[4])


def test_jsonl_writer_writes_answer_records_and_error_records(tmp_path):
    path = tmp_path / "out.jsonl"
    write_samples(open_writer(path))
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    items = sample_items()
    assert records[0] == result_for(items[0]).to_json()
    assert records[1] == {**result_for(items[1], answer="Sergey Lavrov").to_json(), "line": 2}
    assert records[2] == result_for(items[2], abstained=True).to_json()
    assert records[3] == {"line": 4, "error": "not valid JSON: Expecting value at column 1"}
    assert records[4] == {"line": 5, "id": "d005", "question": "x" * 10, "error": "the question is too long"}
    assert list(records[4]) == ["line", "id", "question", "error"]
    assert "’" in path.read_text(encoding="utf-8")  # UTF-8 as is, not \\u escapes


def test_csv_writer_rows_parse_back(tmp_path):
    path = tmp_path / "out.csv"
    write_samples(open_writer(path))
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert rows[0] == {
        "line": "1", "id": "d001", "question": "Who is the envoy?", "answer": "Staffan de Mistura",
        "source": "seeds/000.txt:7:1234-1252", "score": "0.8765", "abstained": "false", "error": "",
    }
    assert (rows[1]["id"], rows[1]["question"], rows[1]["answer"]) == ("", "Who, with a comma?", "Sergey Lavrov")
    assert (rows[2]["abstained"], rows[2]["answer"], rows[2]["source"]) == ("true", "", "")
    assert rows[3]["line"] == "4" and rows[3]["error"].startswith("not valid JSON") and rows[3]["answer"] == ""
    assert (rows[4]["id"], rows[4]["question"], rows[4]["error"]) == ("d005", "x" * 10, "the question is too long")
    assert len(rows) == 5


def test_markdown_writer_report(tmp_path):
    path = tmp_path / "out.md"
    write_samples(open_writer(path))
    text = path.read_text(encoding="utf-8")
    sections = text.split("\n## ")
    assert len(sections) == 5 and sections[0].startswith("## Who is the envoy?")
    first = sections[0]
    assert "**Staffan de Mistura**" in first
    assert "> Moscow backs the UN special envoy for Syria Staffan de Mistura’s idea, with \\*stars\\* and a newline." in first
    assert "`seeds/000.txt:7:1234-1252`" in first and "Moscow backs envoy" in first and "October 6" in first
    assert "id d001" in first
    assert "The articles don't say." in sections[2] and "**" not in sections[2].split("\n", 1)[1]
    assert sections[3].startswith("Line 4") and "**Error:** not valid JSON" in sections[3]
    assert sections[4].startswith("xxxxxxxxxx") and "too long" in sections[4]


def test_stdout_is_jsonl(capsys):
    item = Item(3, "s1", "Who?")
    with open_writer(None) as writer:
        writer.write_result(item, result_for(item))
        writer.write_error(Item(4, None, None, "empty question"))
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line) for line in lines] == [result_for(item).to_json(), {"line": 4, "error": "empty question"}]
    assert not sys.stdout.closed


def test_records_are_on_disk_before_close(tmp_path):
    for name in ("out.jsonl", "out.csv", "out.md"):
        path = tmp_path / name
        writer = open_writer(path)
        item = Item(1, "a", "Who?")
        writer.write_result(item, result_for(item))
        assert "Staffan de Mistura" in path.read_text(encoding="utf-8")  # flushed, not buffered
        writer.close()


def test_existing_output_survives_until_the_first_record(tmp_path):
    path = write(tmp_path / "out.jsonl", '{"id": "old", "question": "Old?", "abstained": true, "answers": []}\n')
    old = path.read_text()
    with pytest.raises(RuntimeError):
        with open_writer(path):
            raise RuntimeError("model failed to load")
    assert path.read_text() == old
    with open_writer(path) as writer:
        assert path.read_text() == old
        item = Item(1, "new", "New?")
        writer.write_result(item, result_for(item))
    assert [json.loads(line)["id"] for line in path.read_text().splitlines()] == ["new"]


def test_a_run_with_no_records_replaces_the_output(tmp_path):
    path = write(tmp_path / "out.csv", "stale\n")
    open_writer(path).close()
    assert path.read_bytes() == (",".join(CSV_COLUMNS) + "\r\n").encode()


def test_writer_refuses_out_of_order_and_mismatched_records(tmp_path):
    with open_writer(tmp_path / "out.jsonl") as writer:
        writer.write_error(Item(5, None, None, "empty question"))
        with pytest.raises(ValueError, match="order"):
            writer.write_error(Item(3, None, None, "empty question"))
        item = Item(6, "x", "Who?")
        with pytest.raises(ValueError, match="id"):
            writer.write_result(item, result_for(Item(6, "y", "Who?")))


def test_unsupported_output_and_impossible_resume(tmp_path):
    with pytest.raises(BadInput, match=r"\.jsonl, \.csv or \.md"):
        open_writer(tmp_path / "out.xlsx")
    with pytest.raises(BadInput, match="output file"):
        open_writer(None, resume=True)
    with pytest.raises(BadInput, match="Markdown"):
        open_writer(tmp_path / "out.md", resume=True)
    with pytest.raises(BadInput, match="Markdown"):
        answered_keys(tmp_path / "out.md")
    with pytest.raises(BadInput, match="does not exist"):
        open_writer(tmp_path / "no" / "such" / "out.jsonl")


# ---------------------------------------------------------------------------- resume


def test_resume_jsonl_with_a_torn_last_line(tmp_path):
    path = tmp_path / "out.jsonl"
    items = sample_items()
    with open_writer(path) as writer:
        writer.write_result(items[0], result_for(items[0]))
        writer.write_result(items[1], result_for(items[1]))
        writer.write_error(items[3])
    whole = path.read_bytes()
    torn = json.dumps(result_for(items[4]).to_json(), ensure_ascii=False).encode()[:40]
    path.write_bytes(whole + torn)

    assert answered_keys(path) == {"d001", "line:2", "line:4"}
    with open_writer(path, resume=True) as writer:
        assert path.read_bytes() == whole  # repaired before anything is appended
        writer.write_error(items[4])
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line).get("id", json.loads(line).get("line")) for line in lines] == ["d001", 2, 4, "d005"]
    assert answered_keys(path) == {"d001", "line:2", "line:4", "d005"}


def test_resume_jsonl_keeps_a_whole_last_record_missing_only_its_newline(tmp_path):
    path = tmp_path / "out.jsonl"
    item = Item(1, "a", "Who?")
    path.write_text(json.dumps(result_for(item).to_json()))
    assert answered_keys(path) == {"a"}
    with open_writer(path, resume=True) as writer:
        second = Item(2, "b", "What?")
        writer.write_result(second, result_for(second))
    assert [json.loads(line)["id"] for line in path.read_text().splitlines()] == ["a", "b"]


def test_resume_csv_torn_inside_a_quoted_newline(tmp_path):
    path = tmp_path / "out.csv"
    first, second = Item(1, None, "Who?"), Item(2, "b", "Two\nlines?")
    with open_writer(path) as writer:
        writer.write_result(first, result_for(first))
    whole = path.read_bytes()
    with open_writer(path, resume=True) as writer:
        writer.write_result(second, result_for(second))
    full = path.read_bytes()
    cut = full.index(b"Two\n") + len(b"Two\n")  # ends in a newline, but inside a quoted field
    path.write_bytes(full[:cut])

    assert answered_keys(path) == {"line:1"}
    with open_writer(path, resume=True) as writer:
        assert path.read_bytes() == whole
        writer.write_result(second, result_for(second))
    assert path.read_bytes() == full  # header once, both rows whole
    with open(path, newline="", encoding="utf-8") as handle:
        assert [row["question"] for row in csv.DictReader(handle)] == ["Who?", "Two\nlines?"]


def test_resume_creates_a_missing_file_with_its_header(tmp_path):
    path = tmp_path / "out.csv"
    assert answered_keys(path) == set()
    with open_writer(path, resume=True) as writer:
        writer.write_error(Item(1, "a", None, "empty question"))
    with open(path, newline="", encoding="utf-8") as handle:
        assert list(csv.reader(handle))[0] == list(CSV_COLUMNS)
    assert answered_keys(path) == {"a"}


def test_resume_refuses_a_file_qa_did_not_write_and_leaves_it_alone(tmp_path):
    jsonl = write(tmp_path / "notes.jsonl", '{"name": "not ours"}\n{"name": "torn')
    csv_file = write(tmp_path / "sheet.csv", "a,b\n1,2\n")
    broken = tmp_path / "broken.csv"  # ours, but with a damaged record before the end
    broken.write_bytes(
        (",".join(CSV_COLUMNS) + "\r\n").encode() + b'1,a,"Who?"x,,,,false,\r\n2,b,What?,,,,false,\r\n'
    )
    for path in (jsonl, csv_file, broken):
        before = path.read_bytes()
        with pytest.raises(BadInput, match="resume"):
            answered_keys(path)
        with pytest.raises(BadInput, match="resume"):
            open_writer(path, resume=True)
        assert path.read_bytes() == before


@settings(max_examples=60, deadline=None)
@given(
    questions=st.lists(st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30), min_size=1, max_size=6),
    fmt=st.sampled_from(["jsonl", "csv"]),
    data=st.data(),
)
def test_a_kill_at_any_byte_leaves_whole_records_only(questions, fmt, data):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"out.{fmt}"
        boundaries, keys = [], []
        items = [Item(n, f"id{n}" if n % 2 else None, q) for n, q in enumerate(questions, 1)]
        with open_writer(path) as writer:
            for item in items:
                writer.write_result(item, result_for(item))
                boundaries.append(path.stat().st_size)
                keys.append(item.key)
        full = path.read_bytes()
        cut = data.draw(st.integers(0, len(full)))
        path.write_bytes(full[:cut])

        # A JSON line that lost only its newline is still whole, and is kept.
        slack = 1 if fmt == "jsonl" else 0
        done = sum(1 for end in boundaries if end - slack <= cut)
        assert answered_keys(path) == set(keys[:done])
        open_writer(path, resume=True).close()
        header = full[: full.index(b"\n") + 1] if fmt == "csv" else b""  # rewritten if it was torn
        assert path.read_bytes() == (full[: boundaries[done - 1]] if done else header)
