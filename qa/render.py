"""Rich output for people. Data for machines goes out as JSON elsewhere; this is only looks."""
from __future__ import annotations

from rich.console import Console
from rich.text import Text

from .types import Answer, Citation, Result

CONTEXT_CHARS = 110  # shown either side of the answer inside a long sentence


def console(stderr: bool = False) -> Console:
    # rich already honours NO_COLOR and drops colour when the stream is not a terminal.
    # Messages on stderr stay one line each, however narrow the terminal.
    return Console(stderr=stderr, highlight=False, soft_wrap=stderr)


def _excerpt(sentence: str, start: int, end: int) -> Text:
    """The sentence with [start:end] highlighted, cut at word boundaries around it if long."""
    lo, hi = 0, len(sentence)
    if start - lo > CONTEXT_CHARS:
        lo = sentence.rfind(" ", 0, start - CONTEXT_CHARS) + 1
    if hi - end > CONTEXT_CHARS:
        cut = sentence.find(" ", end + CONTEXT_CHARS)
        hi = cut if cut != -1 else hi
    text = Text("…" if lo else "")
    text.append(sentence[lo:start])
    text.append(sentence[start:end], style="bold yellow")
    text.append(sentence[end:hi])
    if hi < len(sentence):
        text.append("…")
    return text


def cite(c: Citation, with_meta: bool = True) -> Text:
    text = Text(f"{c.path}:{c.line}", style="cyan")
    text.append(f" [{c.start}-{c.end}]", style="dim")
    if with_meta:
        meta = " · ".join(x for x in (c.date, c.title) if x)
        if meta:
            text.append(f"  {meta}", style="dim")
    return text


def answer(out: Console, a: Answer, rank: int | None = None) -> None:
    head = Text()
    if rank is not None:
        head.append(f"{rank}. ", style="dim")
    head.append(a.answer if a.answer != a.sentence else "(the whole sentence)", style="bold green")
    head.append(f"  confidence {a.score:.2f}", style="dim")
    out.print(head)
    rel = a.source.start - a.source.sentence_start
    body = Text("   “")
    body.append_text(_excerpt(a.sentence, rel, rel + len(a.answer)))
    body.append("”")
    out.print(body)
    line = Text("   ")
    line.append_text(cite(a.source))
    out.print(line)
    if a.supporting:
        also = Text("   also: ", style="dim")
        for i, c in enumerate(a.supporting):
            if i:
                also.append(", ", style="dim")
            also.append_text(cite(c, with_meta=False))
        out.print(also)


def result(out: Console, r: Result) -> None:
    if r.abstained:
        out.print(Text("The articles don't say.", style="bold red"))
        if r.answers:
            out.print(Text("Nearest evidence (low confidence):", style="dim"))
            for i, a in enumerate(r.answers, 1):
                answer(out, a, i if len(r.answers) > 1 else None)
        return
    for i, a in enumerate(r.answers, 1):
        answer(out, a, i if len(r.answers) > 1 else None)


def passage(path: str, text: str, start: int, end: int, context: int | None) -> Text:
    """Lines of text around [start:end] with the span highlighted; the whole text when context is None."""
    if context is None:
        lo, hi = 0, len(text)
    else:
        lo = start
        for _ in range(context + 1):
            lo = text.rfind("\n", 0, max(lo - 1, 0)) + 1 if lo > 0 else 0
        hi = end
        for _ in range(context + 1):
            nxt = text.find("\n", hi + 1 if hi < len(text) and text[hi:hi + 1] == "\n" else hi)
            hi = len(text) if nxt == -1 else nxt
    first_line = text.count("\n", 0, lo) + 1
    out = Text(f"{path}:{first_line}\n", style="cyan")
    out.append(text[lo:start])
    out.append(text[start:end], style="bold yellow reverse" if end > start else "")
    out.append(text[end:hi])
    return out
