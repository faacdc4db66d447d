"""Web pages, PDFs and Word files as qa's one document: extracted text, metadata and a page map.

Each format has one module here, the only one that imports its library (html.py: trafilatura,
pdf.py: pypdfium2, docx.py: python-docx). They run only in a child process (worker.py) under a
memory limit and a time limit per file, so a hostile file (a zip bomb, a PDF that claims a
million pages, HTML nested a million deep) costs at most those limits and is skipped with one
line. Nothing on the question path imports this package's extractors.

An extractor returns paragraphs, page by page, and what the file says about itself (title, date,
author). `assemble` joins them into the document's text: paragraphs separated by a blank line,
each on one line, as in a .txt article, so chunking and citing work on it unchanged.
"""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

TEXT = (".txt", ".md")
EXTRACTED = {".html": "html", ".htm": "html", ".pdf": "pdf", ".docx": "docx"}
EXTENSIONS = TEXT + tuple(EXTRACTED)

# Bumped when what an extractor keeps changes, so the next `qa index` extracts every file again.
VERSION = 1
LIBRARIES = {"html": ("trafilatura", "htmldate"), "pdf": ("pypdfium2",), "docx": ("python-docx",)}


def _env_number(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


@dataclass(frozen=True)
class Limits:
    """How much one file may cost to extract. Every figure can be raised from the environment."""

    seconds: float = 60.0  # QA_EXTRACT_TIMEOUT: wall clock for one file
    memory_mb: int = 2048  # QA_EXTRACT_MEMORY_MB: the extractor's address space
    pages: int = 5000  # QA_MAX_PDF_PAGES
    unzipped_mb: int = 256  # QA_MAX_UNZIPPED_MB: a .docx's parts, unpacked

    @classmethod
    def from_env(cls) -> "Limits":
        return cls(
            seconds=_env_number("QA_EXTRACT_TIMEOUT", cls.seconds),
            memory_mb=int(_env_number("QA_EXTRACT_MEMORY_MB", cls.memory_mb)),
            pages=int(_env_number("QA_MAX_PDF_PAGES", cls.pages)),
            unzipped_mb=int(_env_number("QA_MAX_UNZIPPED_MB", cls.unzipped_mb)),
        )


def kind_of(path: Path | str) -> str | None:
    """"html", "pdf" or "docx" for a file qa extracts text from; None for .txt, .md and the rest."""
    return EXTRACTED.get(Path(path).suffix.lower())


def settings() -> dict:
    """What decides extracted text besides the file: recorded in the index, so that a change of
    library version or limits makes `qa index` extract again rather than reuse old text."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "missing"

    libraries = {name: installed(name) for names in LIBRARIES.values() for name in names}
    return {"version": VERSION, "libraries": libraries, "limits": vars(Limits.from_env())}


# ---------------------------------------------------------------------------------------------
# Extractors' output -> the document's text


@dataclass(frozen=True)
class Extracted:
    text: str
    pages: tuple[int, ...] = ()
    title: str | None = None
    date: str | None = None
    author: str | None = None

    def to_json(self) -> dict:
        return {"text": self.text, "pages": list(self.pages), "title": self.title, "date": self.date, "author": self.author}

    @classmethod
    def from_json(cls, d: dict) -> "Extracted":
        return cls(d["text"], tuple(d.get("pages") or ()), d.get("title"), d.get("date"), d.get("author"))


def one_line(text: str) -> str:
    """A paragraph on one line: every run of whitespace (line breaks, tabs, NBSP) becomes one space."""
    return " ".join(text.split())


def assemble(pages: list[list[str]], paged: bool, title: str | None = None, date: str | None = None,
             author: str | None = None) -> Extracted:
    """Paragraphs, page by page, as one text: a blank line between paragraphs, "\\n" at the end.

    With paged (PDF), pages records where each page's first paragraph starts.
    """
    parts: list[str] = []
    starts: list[int] = []
    offset = 0
    for page in pages:
        starts.append(offset)
        for paragraph in page:
            line = one_line(paragraph)
            if line:
                parts.append(line)
                offset += len(line) + 2
    text = "\n\n".join(parts) + "\n" if parts else ""
    clip = lambda s: one_line(s)[:300] or None if s else None  # noqa: E731 - metadata is a short line
    return Extracted(text, tuple(min(s, len(text)) for s in starts) if paged else (), clip(title), clip(date), clip(author))


class Unreadable(Exception):
    """An extractor's verdict on a file it cannot use: the message is why, for people."""


def module_for(kind: str):
    """The extractor module of a format, imported on first use (the library's import with it)."""
    if kind == "html":
        from . import html as module
    elif kind == "pdf":
        from . import pdf as module
    elif kind == "docx":
        from . import docx as module
    else:
        raise ValueError(f"no extractor for {kind!r}")
    return module


def extract_here(path: Path, kind: str, limits: Limits) -> Extracted:
    """Extract in this process, unbounded: what the worker runs; tests and benchmarks may call it."""
    return module_for(kind).extract(path, limits)


# ---------------------------------------------------------------------------------------------
# The bounded extractor: one child process, reused from file to file, replaced when it fails


class Extractor:
    """Extracts files in a child process with a memory limit and a time limit per file.

    extract() returns (Extracted, None) or (None, why the file is skipped). A file that
    takes too long, or kills the child, costs that child; the next file gets a new one. The
    clock starts once the child has its format's library loaded (it says so with a line "+"):
    starting Python and importing trafilatura took up to 4 s here on a busy machine, which is
    no file's fault.
    """

    STARTUP_SECONDS = 120.0  # for the child to start and import a library, before the file's clock

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits.from_env()
        self._proc: subprocess.Popen | None = None
        self._buffer = b""

    def __enter__(self) -> "Extractor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                proc.stdin.close()
                proc.wait(timeout=2)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait()

    def _start(self) -> subprocess.Popen:
        debug = os.environ.get("QA_DEBUG") == "1"
        return subprocess.Popen(
            [sys.executable, "-m", "qa.documents.worker", json.dumps(vars(self.limits))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None if debug else subprocess.DEVNULL,
            # Its own session: Ctrl-C reaches qa, which kills the child, rather than both at once.
            start_new_session=True, bufsize=0,
        )

    def extract(self, path: Path, kind: str) -> tuple[Extracted | None, str | None]:
        if self._proc is None or self._proc.poll() is not None:
            self._proc = self._start()
        proc = self._proc
        try:
            proc.stdin.write((json.dumps({"path": str(path), "kind": kind}) + "\n").encode("utf-8"))
            proc.stdin.flush()
        except OSError:
            return None, self._died()
        ready = self._read_line(proc, time.monotonic() + max(self.STARTUP_SECONDS, self.limits.seconds))
        if ready != b"+":
            if ready is None and proc.poll() is None:
                self._kill()
                return None, f"was not read: the extractor did not start within {self.STARTUP_SECONDS:g} s"
            return None, self._died()
        reply = self._read_line(proc, time.monotonic() + self.limits.seconds)
        if reply is None:
            if proc.poll() is None:  # still running: out of time
                self._kill()
                return None, f"took longer than {self.limits.seconds:g} s to extract (QA_EXTRACT_TIMEOUT raises the limit)"
            return None, self._died()
        message = json.loads(reply)
        if "skip" in message:
            return None, message["skip"]
        return Extracted.from_json(message["ok"]), None

    def _read_line(self, proc: subprocess.Popen, deadline: float) -> bytes | None:
        """The child's next line, without its newline; None when time runs out or the child is gone."""
        fd = proc.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return None
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        self._buffer = b""
        if proc is not None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()

    def _died(self) -> str:
        proc = self._proc
        self._kill()
        code = proc.returncode if proc is not None else None
        if code is not None and code < 0:
            name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else f"signal {-code}"
            return (f"crashed the extractor ({name}; over {self.limits.memory_mb} MB of memory?"
                    " QA_EXTRACT_MEMORY_MB raises the limit)")
        return f"crashed the extractor (exit {code})"
