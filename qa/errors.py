"""Errors the library raises and the exit codes the CLI maps them to.

The library raises; only the CLI prints. Every message is one line, written for the
person at the terminal, and says how to fix the problem where there is a fix.
"""
from __future__ import annotations

import enum


class ExitStatus(enum.IntEnum):
    """Process exit codes, documented in the README and in `qa --help`."""

    OK = 0
    ERROR = 1  # unexpected failure
    USAGE = 2  # bad command line (typer/click's own code)
    BAD_INPUT = 3  # a question, corpus or input file qa cannot use
    INDEX = 4  # no index, or a stale, foreign or damaged one
    PARTIAL = 5  # a batch finished but some of its lines failed
    BUSY = 6  # another `qa index` holds the index lock
    MODEL = 7  # the reader model shipped with qa is missing or damaged
    INTERRUPTED = 130  # Ctrl-C / SIGINT


class QAError(Exception):
    """Base class: an expected failure with a message for people."""

    exit_code = ExitStatus.ERROR


class BadInput(QAError):
    exit_code = ExitStatus.BAD_INPUT


class CorpusError(BadInput):
    """The corpus folder is missing, empty or unusable."""


class BadQuestion(BadInput):
    """The question is empty, too long or otherwise unusable."""


class IndexProblem(QAError):
    exit_code = ExitStatus.INDEX


class IndexMissing(IndexProblem):
    pass


class IndexStale(IndexProblem):
    pass


class IndexDamaged(IndexProblem):
    pass


class IndexForeign(IndexProblem):
    """Built with another model or other chunking settings."""


class IndexBusy(QAError):
    exit_code = ExitStatus.BUSY


class ModelProblem(QAError):
    """The reader model shipped with qa is missing or damaged."""

    exit_code = ExitStatus.MODEL


class UsageProblem(QAError):
    """A setting or argument qa cannot use (exit code 2, as for a bad command line)."""

    exit_code = ExitStatus.USAGE
