"""qa: extractive question answering over a folder of news articles, with exact citations.

    >>> from pathlib import Path
    >>> from qa import open_answerer
    >>> answerer = open_answerer(Path("seeds"), Path("vectors"))
    >>> answerer.ask("Who is the UN's special envoy for Syria?").answers[0].answer
"""
from .errors import ExitStatus, QAError
from .types import Answer, Citation, Document, Hit, Passage, Result, Sentence

__all__ = [
    "Answer", "Citation", "Document", "ExitStatus", "Hit", "Passage", "QAError", "Result", "Sentence",
    "build_index", "open_answerer",
]


def __getattr__(name):
    # The heavy parts load on first use, so `import qa` and `qa --help` stay fast.
    if name in ("build_index", "open_answerer"):
        from . import api

        return getattr(api, name)
    raise AttributeError(name)
