"""Every file under vectors/ damaged, cut short or deleted: one line with the fix, exit 4, `qa status`
saying so, and `qa index --rebuild` making it whole. Also: an index that moves with its corpus.

The encoder export is checked without torch: an index is built with hashing vectors under the
packaged model's name, and the export is stood in for by files sealed with the real recipe
(`onnx_encoder.seal`), so what is checked is exactly what a real export records.
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from qa import api, onnx_encoder, store
from qa.embedder import Hashing
from qa.errors import ExitStatus, IndexDamaged, IndexForeign

from conftest import SEEDS, run_qa

QUESTION = "Whose positive reaction to the start of the Russian-Syrian humanitarian operation in Aleppo did Borodavkin welcome?"
MINILM = "all-MiniLM-L6-v2"
GEN_FILES = [
    "seg-000001/docs.jsonl", "seg-000001/docs.offsets.npy", "spans/pass_doc.npy", "seg-000001/passages.npy",
    "seg-000001/sentences.npy", "manifest.json", "alive.npy",
    # tantivy's: its list of segments, and files of the one segment a small index has
    "lexical-passages/meta.json", "lexical-passages/*.term", "lexical-sentences/meta.json", "lexical-sentences/*.idx",
]


def part(gen: Path, name: str) -> Path:
    """A file of the generation; a tantivy segment's is found by its extension."""
    if "*" not in name:
        return gen / name
    (path,) = (gen / name).parent.glob(Path(name).name)
    return path
# A Python exception class name, as it must never appear in a message for people.
CLASS_NAME = re.compile(r"\b[A-Z][A-Za-z]*(Error|Exception)\b|Traceback")


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def scribble(path: Path) -> None:
    """Random-looking bytes over the middle, the size unchanged: only a checksum can tell."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    for i in range(middle, min(middle + 16, len(data))):
        data[i] ^= 0xA5
    path.write_bytes(bytes(data))


def delete(path: Path) -> None:
    path.unlink()


DAMAGE = {"truncated": truncate, "scribbled over": scribble, "deleted": delete}


class FakeMiniLM(Hashing):
    """Hashing vectors under the packaged model's name and size: an index qa treats as MiniLM's."""

    name = MINILM
    dim = 384


def fake_export(out_dir: Path) -> Path:
    """What onnx_encoder.export leaves, with stand-in bytes for the graph, weights and tokenizer."""
    out_dir = Path(out_dir)
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    # The graph past QUICK_HASH_BYTES, as the real 23 MB is: checked by size alone on each question.
    for name, size in (("model.onnx", onnx_encoder.QUICK_HASH_BYTES + 4096), ("tokenizer.json", 2000)):
        (out_dir / name).write_bytes(bytes(range(256)) * (size // 256) + name.encode())
    onnx_encoder.seal(out_dir)
    return out_dir


@pytest.fixture
def minilm_project(tmp_path, monkeypatch):
    """seeds/ and a vectors/ that looks built by all-MiniLM-L6-v2, with its encoder export."""
    monkeypatch.setattr(onnx_encoder, "export", fake_export)
    monkeypatch.setattr(api.embedder_mod, "get", lambda name=MINILM: FakeMiniLM())
    monkeypatch.setattr(api, "index_encoder", lambda root, model: FakeMiniLM())  # the stand-in graph cannot run
    shutil.copytree(SEEDS, tmp_path / "seeds")
    api.build_index(tmp_path / "seeds", tmp_path / "vectors", MINILM)
    assert api.encoder_state(tmp_path / "vectors", full=True) == ("ok", "")
    return tmp_path


def one_line_with_the_fix(done, fix="qa index --rebuild") -> str | None:
    """Why done's stderr is not one line naming the fix with no class name (None when it is)."""
    lines = done.stderr.strip().splitlines()
    if len(lines) != 1:
        return f"{len(lines)} lines: {done.stderr!r}"
    if fix not in lines[0]:
        return f"no {fix!r} in {lines[0]!r}"
    if CLASS_NAME.search(lines[0]):
        return f"a class name in {lines[0]!r}"
    return None


# ---------------------------------------------------------------------------------------------
# the query encoder export


@pytest.mark.parametrize("how", DAMAGE)
@pytest.mark.parametrize("name", [*onnx_encoder.FILES, onnx_encoder.MANIFEST])
def test_damaged_encoder_file_is_refused_reported_and_repaired(minilm_project, name, how, monkeypatch):
    root = minilm_project / "vectors"
    DAMAGE[how](root / "encoder" / name)
    if name == "model.onnx" and how == "scribbled over":
        # The graph is checked by size on every question (hashing 23 MB costs 50 ms) and by
        # checksum in `qa status` and `qa index`.
        assert api.encoder_state(root)[0] == "ok"
    else:
        with pytest.raises(IndexDamaged, match=r"query encoder in .*encoder/ is damaged .* run `qa index --rebuild`") as caught:
            api.ensure_index(minilm_project / "seeds", root, MINILM, notify=lambda _: None)
        assert not CLASS_NAME.search(str(caught.value))

    status = run_qa("status", cwd=minilm_project, model=MINILM)
    assert status.returncode == ExitStatus.INDEX, status.stdout + status.stderr
    assert one_line_with_the_fix(status) is None, one_line_with_the_fix(status)
    assert re.search(r"^encoder\s+damaged$", status.stdout, re.M) and re.search(r"^health\s+damaged$", status.stdout, re.M)

    report = api.build_index(minilm_project / "seeds", root, MINILM, rebuild=True)
    assert api.encoder_state(root, full=True) == ("ok", "") and report.encoder
    assert run_qa("status", cwd=minilm_project, model=MINILM).returncode == 0


def test_damaged_encoder_refuses_qa_ask_in_one_line(minilm_project):
    truncate(minilm_project / "vectors" / "encoder" / "model.onnx")
    done = run_qa("ask", QUESTION, cwd=minilm_project, model=MINILM)
    assert done.returncode == ExitStatus.INDEX and done.stdout == ""
    assert one_line_with_the_fix(done) is None, one_line_with_the_fix(done)


def test_plain_qa_index_repairs_the_encoder_and_says_so(minilm_project):
    root = minilm_project / "vectors"
    (root / "encoder" / onnx_encoder.MANIFEST).write_text("{garbled")
    report = api.build_index(minilm_project / "seeds", root, MINILM)
    assert report.unchanged and "encoder.json" in report.encoder
    assert api.encoder_state(root, full=True) == ("ok", "")


def test_a_missing_encoder_folder_is_exported_with_a_note(minilm_project):
    root = minilm_project / "vectors"
    shutil.rmtree(root / "encoder")
    notes = []
    api.ensure_index(minilm_project / "seeds", root, MINILM, notify=notes.append)
    assert api.encoder_state(root, full=True) == ("ok", "")
    assert len(notes) == 1 and "exporting the query encoder" in notes[0]


def test_an_export_from_an_older_qa_is_stale_not_damaged(minilm_project):
    encoder = minilm_project / "vectors" / "encoder"
    recorded = json.loads((encoder / onnx_encoder.MANIFEST).read_text())
    (encoder / onnx_encoder.MANIFEST).write_text(json.dumps({**recorded, "format": 1}))
    assert api.encoder_state(minilm_project / "vectors")[0] == "stale"


def test_an_unloadable_graph_is_damage_not_an_internal_error(minilm_project):
    # Intact as recorded, yet not ONNX (here: the stand-in bytes): onnxruntime's own error is not shown.
    with pytest.raises(IndexDamaged, match="onnxruntime cannot load model.onnx") as caught:
        api.query_encoder(minilm_project / "vectors", MINILM)
    assert not CLASS_NAME.search(str(caught.value))


# ---------------------------------------------------------------------------------------------
# the generation's files, CURRENT and the lock, through the real CLI


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("built")
    shutil.copytree(SEEDS, folder / "seeds")
    assert run_qa("index", cwd=folder).returncode == 0
    backup = folder / "backup"
    shutil.copytree(folder / "vectors", backup)
    return folder


@pytest.fixture
def project(built):
    """The module's built project, its index restored from the backup before each test."""
    shutil.rmtree(built / "vectors", ignore_errors=True)
    shutil.copytree(built / "backup", built / "vectors")
    return built


@pytest.mark.parametrize("name", GEN_FILES)
def test_each_generation_file_damaged_cut_or_deleted_is_refused_and_reported(project, name):
    root = project / "vectors"
    gen = store.current_generation(root)
    problems = []
    target = part(gen, name)
    for how, damage in DAMAGE.items():
        original = target.read_bytes()
        damage(target)
        for command in (("ask", QUESTION), ("status",)):
            done = run_qa(*command, cwd=project)
            why = one_line_with_the_fix(done)
            if done.returncode != ExitStatus.INDEX or why:
                problems.append(f"{name} {how}, qa {command[0]}: rc {done.returncode}; {why}")
        target.write_bytes(original)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", GEN_FILES)
def test_rebuild_repairs_each_generation_file(project, name):
    root = project / "vectors"
    gen = store.current_generation(root)
    truncate(part(gen, name)) if name != "seg-000001/passages.npy" else delete(part(gen, name))
    repaired = run_qa("index", "--rebuild", cwd=project)
    assert repaired.returncode == 0, repaired.stderr
    done = run_qa("status", cwd=project)
    assert done.returncode == 0 and re.search(r"^health\s+ok$", done.stdout, re.M), done.stdout + done.stderr


@pytest.mark.parametrize("content", [b"", b"gen-", b"\xff\xfe garbage", b"../../etc", b"gen-999999"])
def test_current_garbled_is_refused_reported_and_repaired(project, content):
    (project / "vectors" / "CURRENT").write_bytes(content)
    for command in (("ask", QUESTION), ("status",)):
        done = run_qa(*command, cwd=project)
        assert done.returncode == ExitStatus.INDEX and one_line_with_the_fix(done) is None, (command, done.stderr)
    assert run_qa("index", "--rebuild", cwd=project).returncode == 0
    assert run_qa("status", cwd=project).returncode == 0


def test_current_deleted_reads_as_no_index_and_is_built_again(project):
    (project / "vectors" / "CURRENT").unlink()
    status = run_qa("status", cwd=project)
    assert status.returncode == ExitStatus.INDEX and one_line_with_the_fix(status, "qa index") is None
    done = run_qa("ask", QUESTION, cwd=project)
    assert done.returncode == 0 and "indexing" in done.stderr


@pytest.mark.parametrize("damage", [delete, lambda p: p.write_bytes(b"\x00garbage\xff")])
def test_the_lock_file_holds_nothing_worth_damaging(project, damage):
    damage(project / "vectors" / "lock")
    assert run_qa("ask", QUESTION, cwd=project).returncode == 0
    assert run_qa("index", "--rebuild", cwd=project).returncode == 0


# ---------------------------------------------------------------------------------------------
# --index that cannot be an index: plain words, the right advice


@pytest.mark.parametrize("where,needle", [
    ("a-file", "is a file, not a folder"),
    ("a-file/below", "is a file, not a folder"),
    ("/proc/qa-index", "cannot create the index folder"),
])
@pytest.mark.parametrize("command", [("ask", QUESTION), ("status",), ("index",)])
def test_an_index_path_that_cannot_hold_an_index(workdir, where, needle, command):
    (workdir / "a-file").write_text("not an index\n")
    if command == ("status",) and where.startswith("/proc"):
        needle = "no index in /proc/qa-index/"  # status looks; it creates nothing
    done = run_qa(*command, "--index", where, cwd=workdir)
    assert done.returncode in (ExitStatus.BAD_INPUT, ExitStatus.INDEX), done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "--rebuild" not in lines[0], lines
    assert not CLASS_NAME.search(lines[0])


# ---------------------------------------------------------------------------------------------
# an index that moves with its corpus


def test_a_moved_project_folder_answers_without_indexing_again(built, tmp_path):
    moved = tmp_path / "elsewhere" / "project"
    shutil.copytree(built / "backup", moved / "vectors")
    shutil.copytree(built / "seeds", moved / "seeds")
    before = run_qa("ask", QUESTION, "--json", cwd=built)
    after = run_qa("ask", QUESTION, "--json", cwd=moved)
    assert after.returncode == 0 and after.stderr == "", after.stderr  # no "indexing", no "updating"
    assert json.loads(after.stdout) == json.loads(before.stdout)
    status = run_qa("status", "--json", cwd=moved)
    info = json.loads(status.stdout)
    assert status.returncode == 0 and info["fits"] is True and info["stale"] is False
    assert (moved / "vectors" / "CURRENT").read_text() == (built / "backup" / "CURRENT").read_text()


def test_a_moved_project_whose_corpus_then_changed_is_updated_not_refused(built, tmp_path):
    moved = tmp_path / "moved"
    shutil.copytree(built / "backup", moved / "vectors")
    shutil.copytree(built / "seeds", moved / "seeds")
    (moved / "seeds" / "new.txt").write_text("OSLO, May 2. The mayor of Oslo is Kari Nordmann.\n", encoding="utf-8")
    status = run_qa("status", "--json", cwd=moved)
    assert status.returncode == 0 and json.loads(status.stdout)["stale"] is True
    done = run_qa("ask", "Who is the mayor of Oslo?", "--json", cwd=moved)
    assert done.returncode == 0 and "corpus changed" in done.stderr
    assert json.loads(done.stdout)["answers"][0]["source"]["path"] == "seeds/new.txt"


def test_status_and_ask_agree_that_another_corpus_does_not_fit(project):
    other = project / "other"
    other.mkdir(exist_ok=True)
    (other / "a.txt").write_text("OSLO, May 2. The mayor of Oslo is Kari Nordmann.\n", encoding="utf-8")
    status = run_qa("status", "--corpus", "other", cwd=project)
    ask = run_qa("ask", QUESTION, "--corpus", "other", cwd=project)
    assert status.returncode == ask.returncode == ExitStatus.INDEX
    assert re.search(r"^fits\s+no", status.stdout, re.M)
    assert status.stderr == ask.stderr and "--rebuild" in ask.stderr
    assert api.corpus_mismatch(store.read_manifest(project / "vectors"), project / "vectors", other)
    with pytest.raises(IndexForeign):
        api.ensure_index(other, project / "vectors", "hashing-512", notify=lambda _: None)


# ---------------------------------------------------------------------------------------------
# the real thing, once: the issue's own steps with the packaged model and a real export


@pytest.mark.e2e
def test_random_bytes_over_the_real_encoder_are_refused_then_repaired(tmp_path):
    import os

    shutil.copytree(SEEDS, tmp_path / "seeds")
    first = run_qa("ask", QUESTION, cwd=tmp_path, model=MINILM, timeout=900)
    assert first.returncode == 0, first.stderr
    graph = tmp_path / "vectors" / "encoder" / "model.onnx"
    graph.write_bytes(os.urandom(graph.stat().st_size))  # same size: only the checksum can tell
    for command in (("ask", QUESTION), ("status",)):
        done = run_qa(*command, cwd=tmp_path, model=MINILM)
        assert done.returncode == ExitStatus.INDEX and one_line_with_the_fix(done) is None, done.stderr
    assert run_qa("index", "--rebuild", cwd=tmp_path, model=MINILM, timeout=900).returncode == 0
    again = run_qa("ask", QUESTION, cwd=tmp_path, model=MINILM)
    assert again.returncode == 0 and again.stdout == first.stdout
