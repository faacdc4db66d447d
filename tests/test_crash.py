"""Crash safety with real files and real processes.

`qa index` is killed at each fault-injection stage (QA_CRASH_AT) and from outside at random
moments; two writers race for the lock; the files of a live index are damaged one by one; bad
corpus files and bad questions go through the real CLI. After every one of these the index
must load, hold either the old or the new corpus, and a normal run must carry on from there.
"""
from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qa import ingest, store
from qa.answerer import Answerer
from qa.embedder import Hashing
from qa.errors import ExitStatus

from conftest import FAST_MODEL, SEEDS, own_questions, run_qa

STAGES = ["before-embedding", "during-embedding", "after-embedding", "before-swap", "after-swap"]
NEW_ARTICLE = "Mayor of Oslo\n\nOSLO, May 2. The mayor of Oslo is Kari Nordmann. She opened a bridge.\n"
NEW_QUESTION = "Who is the mayor of Oslo?"
SAMPLE_QUESTION = "Whose positive reaction to the start of the Russian-Syrian humanitarian operation in Aleppo did Borodavkin welcome?"


# ---------------------------------------------------------------------------------------------
# helpers


def answers(root: Path, corpus: Path) -> list[dict]:
    """The answer records for every seed-dev question, read in-process from the live index."""
    answerer = Answerer(store.load(root), Hashing(), corpus)
    questions = [q["question"] for q in own_questions()]
    return [r.to_json() for r in answerer.ask_batch(questions, k=3)]


def doc_paths(root: Path) -> set[str]:
    return {d.path for _, d in store.load(root).live_documents()}


def snapshot(root: Path) -> dict[str, str]:
    """Every file of the index folder (the lock file aside) and its sha256."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.name != "lock":
            out[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def one_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got {len(lines)}:\n{text}"
    return lines[0]


def leftovers(root: Path) -> list[str]:
    """Partial state a finished, successful `qa index` must not leave behind."""
    return sorted(p.name for p in root.iterdir() if p.name.startswith(".") or (p.name.startswith("gen-") and p.name != store.current_generation(root).name))


def make_big_corpus(folder: Path, copies: int = 60) -> list[str]:
    """~copies x 5 articles: the seed files, each copy with a unique title and closing sentence."""
    folder.mkdir(parents=True)
    names = []
    seeds = sorted(SEEDS.glob("*.txt"))
    for i in range(copies):
        for seed in seeds:
            name = f"{i:03d}_{seed.name}"
            text = seed.read_text(encoding="utf-8")
            (folder / name).write_text(
                f"Copy {i} of {seed.stem}\n\n{text}\n\nThis is edition number {i} of the file {seed.stem}.\n",
                encoding="utf-8",
            )
            names.append(name)
    return names


def popen_qa(*args, cwd, env=None):
    full_env = {**os.environ, "QA_MODEL": FAST_MODEL, "NO_COLOR": "1", **(env or {})}
    full_env.pop("QA_INDEX", None)
    full_env.pop("QA_CORPUS", None)
    return subprocess.Popen(
        [sys.executable, "-m", "qa", *map(str, args)], cwd=cwd, env=full_env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def wait_for_lock_holder(proc: subprocess.Popen, root: Path, timeout: float = 60.0) -> None:
    """Return once proc has taken the index lock (it writes its pid into root/lock)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if (root / "lock").read_text().strip() == str(proc.pid):
                return
        except FileNotFoundError:
            pass
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"qa index ended (rc {proc.returncode}) before it was seen holding the lock: {err}")
        time.sleep(0.002)
    pytest.fail("qa index never took the lock")


@pytest.fixture(scope="module")
def indexed_base(indexed_workdir) -> Path:
    return indexed_workdir


@pytest.fixture
def indexed(indexed_base, tmp_path, monkeypatch) -> Path:
    """A private copy of indexed_base (file times kept, so the copy's index is fresh) as the cwd."""
    folder = tmp_path / "work"
    shutil.copytree(indexed_base, folder)
    monkeypatch.chdir(folder)
    return folder


# ---------------------------------------------------------------------------------------------
# killed at each stage


@pytest.mark.parametrize("stage", STAGES)
def test_crash_at_each_stage_leaves_a_loadable_index(indexed, stage, tmp_path):
    workdir = indexed
    root, corpus = workdir / "vectors", workdir / "seeds"
    live_before = (root / "CURRENT").read_text()
    before = answers(root, corpus)
    docs_before = doc_paths(root)

    (corpus / "new.txt").write_text(NEW_ARTICLE, encoding="utf-8")
    crashed = run_qa("index", cwd=workdir, env={"QA_CRASH_AT": stage})
    assert crashed.returncode == -signal.SIGKILL, (crashed.returncode, crashed.stderr)

    store.load(root)  # whatever the stage, the live index loads and checks out
    if stage == "after-swap":
        assert (root / "CURRENT").read_text() != live_before
        assert doc_paths(root) == docs_before | {"new.txt"}
    else:
        assert (root / "CURRENT").read_text() == live_before
        assert doc_paths(root) == docs_before
        assert answers(root, corpus) == before

    # The next normal run is not hindered by the killed one (its lock, its half-written files).
    after = run_qa("index", cwd=workdir)
    assert after.returncode == 0, after.stderr
    assert "Traceback" not in after.stderr
    assert doc_paths(root) == docs_before | {"new.txt"}
    if stage != "after-swap":  # after-swap: the next run has nothing to do, so it writes (and sweeps) nothing
        assert leftovers(root) == []
    answerer = Answerer(store.load(root), Hashing(), corpus)
    assert answerer.ask(NEW_QUESTION).answers[0].source.path.endswith("new.txt")

    # The index finished after a crash answers exactly like one built from scratch.
    ingest.build(corpus, tmp_path / "fresh", Hashing(), rebuild=True)
    assert answers(root, corpus) == answers(tmp_path / "fresh", corpus)


def test_sigkill_from_outside_at_random_moments(tmp_path):
    seed = int(os.environ.get("QA_KILL_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    corpus, root = tmp_path / "big", tmp_path / "vbig"
    make_big_corpus(corpus, copies=50)  # 250 articles
    started = time.monotonic()
    first = run_qa("index", "big", "--index", "vbig", cwd=tmp_path)
    duration = time.monotonic() - started
    assert first.returncode == 0, first.stderr
    indexed = doc_paths(root)
    extra = 0
    outcomes = []
    for i in range(5):
        if i % 2 == 0:  # grow the corpus
            for _ in range(15):
                (corpus / f"extra_{extra:03d}.txt").write_text(
                    f"Extra article {extra}\n\nPARIS, May {extra % 28 + 1}. The extra article number {extra} was filed today.\n",
                    encoding="utf-8",
                )
                extra += 1
        else:  # shrink it
            for path in sorted(corpus.glob("*.txt"))[:15]:
                path.unlink()
        wanted = {p.name for p in corpus.glob("*.txt")}
        assert wanted != indexed
        args = ["index", "big", "--index", "vbig"] + (["--rebuild"] if i % 2 == 0 else [])
        delay = rng.uniform(0.05, duration * 0.9)
        proc = popen_qa(*args, cwd=tmp_path)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate()
        outcomes.append((round(delay, 2), proc.returncode))
        where = f"(seed {seed}, iteration {i}, delay {delay:.2f}s, rc {proc.returncode}; outcomes {outcomes})"
        assert proc.returncode in (0, -signal.SIGKILL), f"{err} {where}"
        now = doc_paths(root)  # store.load: the live index loads and checks out
        assert now in (indexed, wanted), f"index holds neither the old nor the new corpus {where}"
        assert store.load(root).manifest["counts"]["documents"] in (len(indexed), len(wanted))
        indexed = now
    assert any(rc == -signal.SIGKILL for _, rc in outcomes), f"no run was actually killed: {outcomes}"

    # A normal run picks up from whatever the kills left, and a real change sweeps all leftovers.
    (corpus / "last.txt").write_text("Last article\n\nROME, June 1. The last article arrived.\n", encoding="utf-8")
    final = run_qa("index", "big", "--index", "vbig", cwd=tmp_path)
    assert final.returncode == 0, final.stderr
    assert doc_paths(root) == {p.name for p in corpus.glob("*.txt")}
    assert leftovers(root) == []


# ---------------------------------------------------------------------------------------------
# two writers


def test_second_writer_is_refused_while_the_lock_is_held(indexed):
    workdir = indexed
    root, corpus = workdir / "vectors", workdir / "seeds"
    before, files = answers(root, corpus), snapshot(root)
    (corpus / "new.txt").write_text(NEW_ARTICLE, encoding="utf-8")
    with store.locked(root):
        refused = run_qa("index", cwd=workdir)
        assert refused.returncode == ExitStatus.BUSY == 6, refused.stderr
        assert "being updated" in one_line(refused.stderr)
        assert "Traceback" not in refused.stderr
    assert snapshot(root) == files and answers(root, corpus) == before
    done = run_qa("index", cwd=workdir)  # released: works again
    assert done.returncode == 0, done.stderr
    assert "new.txt" in doc_paths(root)


def test_two_real_qa_index_runs_and_a_lock_left_by_a_killed_writer(indexed):
    workdir = indexed
    root, corpus = workdir / "vectors", workdir / "seeds"
    old = doc_paths(root)
    for i, seed in enumerate(sorted(SEEDS.glob("*.txt")) * 12):  # enough work to keep the first writer busy
        (corpus / f"more_{i:03d}.txt").write_text(f"More {i}\n\n{seed.read_text(encoding='utf-8')}\nNote {i}.\n", encoding="utf-8")
    new = {p.name for p in corpus.glob("*.txt")}

    first = popen_qa("index", cwd=workdir)
    wait_for_lock_holder(first, root)
    os.kill(first.pid, signal.SIGSTOP)  # frozen while holding the lock
    try:
        assert first.poll() is None
        second = run_qa("index", cwd=workdir)
        assert second.returncode == ExitStatus.BUSY, second.stderr
        line = one_line(second.stderr)
        assert "being updated" in line and str(first.pid) in line
        assert doc_paths(root) in (old, new)  # readers still see a whole index
    finally:
        os.kill(first.pid, signal.SIGCONT)
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert doc_paths(root) == new

    # A writer killed while holding the lock does not block the next one: the kernel drops flocks.
    (corpus / "new.txt").write_text(NEW_ARTICLE, encoding="utf-8")
    killed = popen_qa("index", "--rebuild", cwd=workdir)
    wait_for_lock_holder(killed, root)
    killed.send_signal(signal.SIGKILL)
    killed.communicate()
    assert killed.returncode == -signal.SIGKILL
    assert (root / "lock").read_text().strip() == str(killed.pid)  # its pid is still in the file
    assert doc_paths(root) == new
    after = run_qa("index", cwd=workdir)
    assert after.returncode == 0, after.stderr
    assert doc_paths(root) == new | {"new.txt"}


# ---------------------------------------------------------------------------------------------
# damaged index files


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _corrupt(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    for i in range(middle, min(middle + 16, len(data))):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _writer(content: bytes):
    return lambda path: path.write_bytes(content)


GEN_FILES = ["seg-000001/docs.jsonl", "seg-000001/docs.offsets.npy", "spans/pass_doc.npy", "seg-000001/passages.npy",
    "seg-000001/sentences.npy", "manifest.json", "alive.npy"]
GEN_FOLDERS = ["lexical-passages", "lexical-sentences"]  # tantivy's: meta.json and segment files
DAMAGE = (
    [(name, "truncated", _truncate) for name in GEN_FILES]
    + [(name, "corrupted", _corrupt) for name in ("seg-000001/docs.jsonl", "seg-000001/sentences.npy", "manifest.json")]
    + [(f"{folder}/{name}", how, damage) for folder in GEN_FOLDERS for name in ("meta.json", "*.idx", "*.term")
       for how, damage in (("truncated", _truncate), ("corrupted", _corrupt))]
    + [
        ("lexical-sentences/*.fast", "deleted", Path.unlink),
        ("seg-000001/passages.npy", "deleted", Path.unlink),
        ("manifest.json", "deleted", Path.unlink),
        ("manifest.json", "not a JSON object", _writer(b"[]")),
        ("manifest.json", "missing its fields", _writer(b'{"format": 1}')),
        ("CURRENT", "garbled", _writer(b"hello world")),
        ("CURRENT", "naming a missing generation", _writer(b"gen-999999")),
        ("CURRENT", "not UTF-8", _writer(b"\xff\xfe\x00gen")),
    ]
)
# After these, also check that `qa index --rebuild` repairs the index (instead of restoring a copy).
REPAIR = {("CURRENT", "not UTF-8"), ("manifest.json", "missing its fields"), ("seg-000001/docs.jsonl", "corrupted")}


def test_damaged_index_files_are_reported_and_rebuild_repairs_them(workdir, tmp_path):
    root, corpus = workdir / "vectors", workdir / "seeds"
    assert run_qa("index", cwd=workdir).returncode == 0
    gen = store.current_generation(root)
    assert sorted({name.split("/")[0] for name in GEN_FILES + GEN_FOLDERS}) == sorted(p.name for p in gen.iterdir())
    expected = answers(root, corpus)
    backup = tmp_path / "backup"
    shutil.copytree(root, backup)
    problems = []
    for name, how, damage in DAMAGE:
        target = root / name if name == "CURRENT" else root / gen.name / name
        if "*" in name:  # a tantivy segment's file, named by its segment's id
            (target,) = target.parent.glob(target.name)
        damage(target)
        done = run_qa("ask", SAMPLE_QUESTION, cwd=workdir)
        lines = done.stderr.strip().splitlines()
        if done.returncode != ExitStatus.INDEX or len(lines) != 1 or "qa index --rebuild" not in done.stderr or "Traceback" in done.stderr:
            problems.append(f"{name} {how}: rc {done.returncode}, stderr {done.stderr.strip()!r}")
        if (name, how) in REPAIR:
            repaired = run_qa("index", "--rebuild", cwd=workdir)
            if repaired.returncode != 0:
                problems.append(f"{name} {how}: `qa index --rebuild` rc {repaired.returncode}: {repaired.stderr.strip()!r}")
            elif answers(root, corpus) != expected:
                problems.append(f"{name} {how}: answers differ after `qa index --rebuild`")
            elif name == "CURRENT":
                again = run_qa("ask", SAMPLE_QUESTION, cwd=workdir)
                if again.returncode != 0 or again.stderr.strip():
                    problems.append(f"{name} {how}: `qa ask` after the repair: rc {again.returncode}: {again.stderr.strip()!r}")
            assert leftovers(root) == []
        shutil.rmtree(root)
        shutil.copytree(backup, root)
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------------------------------------
# bad corpus files


def _sparse(path: Path) -> None:
    """A file far beyond the size limit that costs no disk; 1 TiB, so reading it all cannot go unnoticed."""
    with open(path, "wb") as handle:
        try:
            handle.truncate(1 << 40)
        except OSError:
            handle.truncate(40 << 20)


def _symlink_loop(path: Path) -> None:
    other = path.with_name("loop-b.txt")
    path.symlink_to(other.name)
    other.symlink_to(path.name)


def _dangling(path: Path) -> None:
    path.symlink_to("no-such-target.txt")


def _directory_loop(path: Path) -> None:
    path.mkdir()
    (path / "up").symlink_to("..")
    (path / "self").symlink_to(".")


def _unreadable(path: Path) -> None:
    path.write_text("LONDON, May 1. A perfectly good article nobody may read.\n", encoding="utf-8")
    path.chmod(0)


BAD_FILES = [  # (name, how to make it, the reason its "skipped" line gives; None: not a corpus file at all)
    ("latin1.txt", lambda p: p.write_bytes("ZÜRICH, May 1. Café owners met in Zürich.\n".encode("latin-1")), "is not UTF-8"),
    ("binary.txt", lambda p: p.write_bytes(bytes(range(256)) * 8), "looks binary"),
    ("empty.txt", lambda p: p.write_bytes(b""), "is empty"),
    ("blank.md", lambda p: p.write_bytes(b"  \n\t\r\n \n"), "is empty"),
    ("junk.txt", lambda p: p.write_text("Advertisement\nShare this article\nAll news\n", encoding="utf-8"), "has no article text"),
    ("huge.txt", _sparse, "larger than 32 MB"),
    ("loop-a.txt", _symlink_loop, "cannot be read"),  # and loop-b.txt, its partner
    ("dangling.txt", _dangling, "cannot be read"),
    ("subdir", _directory_loop, None),  # a directory symlink loop is not followed at all
]

WATCH = """\
import os, sys
watched = os.environ["QA_TEST_WATCH"]
def hook(event, args):
    if event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)) and os.fsdecode(args[0]).endswith(watched):
        sys.stderr.write(f"TEST: qa opened {watched}\\n")
        sys.stderr.flush()
        os._exit(97)
sys.addaudithook(hook)
sys.argv[0] = "qa"
from qa.cli import main
main()
"""


def run_qa_watching(name: str, *args, cwd, timeout=60):
    """run_qa, but the process dies with exit code 97 the moment it opens a file whose path ends in name."""
    env = {**os.environ, "QA_MODEL": FAST_MODEL, "NO_COLOR": "1", "QA_TEST_WATCH": name}
    env.pop("QA_INDEX", None)
    env.pop("QA_CORPUS", None)
    try:
        return subprocess.run([sys.executable, "-c", WATCH, *map(str, args)], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"`qa {' '.join(map(str, args))}` did not finish in {timeout} s")


def test_bad_corpus_files_are_skipped_with_one_line_each(workdir):
    """All kinds of bad file beside the good seeds: index exits 0 and names each once, with its reason."""
    corpus, root = workdir / "seeds", workdir / "vectors"
    for name, make, _ in BAD_FILES:
        make(corpus / name)
    # huge.txt is 1 TiB of holes: qa must skip it by its size, never open it (to read or to hash it).
    done = run_qa_watching("huge.txt", "index", cwd=workdir)
    assert done.returncode == 0, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert any(line.startswith("indexed seeds/ into vectors/: 5 added") for line in lines), done.stderr
    problems = []
    for name, _, reason in BAD_FILES + [("loop-b.txt", None, "cannot be read")]:
        mine = [line for line in lines if f" {name}" in line or f"/{name}" in line]
        if reason is None:
            if mine:
                problems.append(f"{name}: unexpected {mine}")
        elif len(mine) != 1 or not mine[0].startswith(f"skipped {name}: {reason}"):
            problems.append(f"{name}: expected one line 'skipped {name}: {reason}...', got {mine}")
    assert not problems, "\n".join(problems) + "\n" + done.stderr
    assert doc_paths(root) == {p.name for p in SEEDS.glob("*.txt")}

    # The skipped files are remembered as skipped: asking does not see a changed corpus and re-index.
    asked = run_qa_watching("huge.txt", "ask", SAMPLE_QUESTION, cwd=workdir)
    assert asked.returncode == 0, (asked.returncode, asked.stderr)
    assert "corpus changed" not in asked.stderr and "indexing" not in asked.stderr, asked.stderr


def test_unreadable_file_is_skipped_and_remembered(workdir):
    if os.geteuid() == 0:
        pytest.skip("root reads files whatever their mode")
    corpus = workdir / "seeds"
    _unreadable(corpus / "unreadable.txt")
    done = run_qa("index", cwd=workdir)
    assert done.returncode == 0, done.stderr
    assert "skipped unreadable.txt: cannot be read (Permission denied)" in done.stderr
    asked = run_qa("ask", SAMPLE_QUESTION, cwd=workdir)
    assert asked.returncode == 0, (asked.returncode, asked.stderr)
    assert "corpus changed" not in asked.stderr, asked.stderr


def test_unreadable_file_is_remembered_as_skipped_even_as_root(workdir, monkeypatch):
    """The same as above, in-process, with open() refusing the file, so it also runs as root."""
    import builtins

    from qa import corpus as corpus_mod

    corpus, root = workdir / "seeds", workdir / "vectors"
    (corpus / "unreadable.txt").write_text("LONDON, May 1. A perfectly good article nobody may read.\n", encoding="utf-8")

    def refusing_open(path, *args, **kwargs):
        if Path(path).name == "unreadable.txt":
            raise PermissionError(13, "Permission denied", str(path))
        return builtins.open(path, *args, **kwargs)

    monkeypatch.setattr(corpus_mod, "open", refusing_open, raising=False)
    report = ingest.build(corpus, root, Hashing())
    assert [(s.path, s.reason) for s in report.skipped] == [("unreadable.txt", "cannot be read (Permission denied)")]
    assert ingest.stale_files(root, corpus) == []  # what `qa ask` checks before answering


def test_skipped_file_message_is_one_line_even_for_a_long_name(workdir):
    name = "2016-10-06_syria-aleppo-ceasefire-talks-geneva-un-envoy-statement-full-text.txt"
    (workdir / "seeds" / name).write_bytes(b"\xff\xfe not utf-8")
    done = run_qa("index", cwd=workdir)
    assert done.returncode == 0, done.stderr
    mine = [line for line in done.stderr.splitlines() if line.startswith("skipped")]
    assert len(mine) == 1 and mine[0].startswith(f"skipped {name}: is not UTF-8") and "iconv" in mine[0], done.stderr


def test_very_large_file_limit_comes_from_qa_max_file_mb(workdir):
    corpus = workdir / "seeds"
    (corpus / "two-mb.txt").write_text("OSLO, May 2. A long article.\n" * (2 * 1024 * 1024 // 29 + 1), encoding="utf-8")
    done = run_qa("index", cwd=workdir, env={"QA_MAX_FILE_MB": "1"})
    assert done.returncode == 0, done.stderr
    assert "skipped two-mb.txt: larger than 1 MB" in done.stderr


def _no_text(folder: Path) -> None:
    folder.mkdir()
    (folder / "empty.txt").write_bytes(b"")
    (folder / "binary.txt").write_bytes(b"\x00\x01\x02" * 100)
    (folder / "junk.md").write_text("Advertisement\nAll news\n", encoding="utf-8")


def _no_text_files(folder: Path) -> None:
    folder.mkdir()
    (folder / "report.pdf").write_bytes(b"%PDF-1.4")
    (folder / "notes.docx").write_bytes(b"PK\x03\x04")


FAILING_CORPORA = [
    ("no-such-folder", lambda p: None, "no such corpus folder"),
    ("nothing-usable", _no_text, "no article text"),
    ("no-text-files", _no_text_files, "no article text"),
    ("not-a-text-file.pdf", lambda p: p.write_bytes(b"%PDF-1.4"), "no article text"),
]


@pytest.mark.parametrize("name,make,needle", FAILING_CORPORA, ids=[f[0] for f in FAILING_CORPORA])
def test_unusable_corpus_fails_with_one_line_and_leaves_the_index_alone(indexed, name, make, needle):
    workdir = indexed
    root = workdir / "vectors"
    files = snapshot(root)
    make(workdir / name)
    done = run_qa("index", name, cwd=workdir)
    assert done.returncode == ExitStatus.BAD_INPUT, done.stderr
    assert needle in one_line(done.stderr)
    assert "Traceback" not in done.stderr
    assert snapshot(root) == files
    store.load(root)


# ---------------------------------------------------------------------------------------------
# bad questions


@pytest.mark.parametrize("question,needle", [
    ("", "empty"),
    ("   \t\n  ", "empty"),
    ("\x01\x02\x1b\x7f\u200b\u2028", "empty"),
    ("?!.,;", "empty"),
    ("x" * 100_000, "too long"),
], ids=["empty", "whitespace", "control-only", "punctuation-only", "100k-chars"])
def test_unusable_questions_exit_3_with_one_line(workdir, question, needle):
    done = run_qa("ask", "--", question, cwd=workdir)
    assert done.returncode == ExitStatus.BAD_INPUT, (done.returncode, done.stderr)
    assert needle in one_line(done.stderr)
    assert "Traceback" not in done.stderr
    assert not (workdir / "vectors").exists()  # refused before any indexing
