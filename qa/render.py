"""Rich output for people. Data for machines goes out as JSON elsewhere; this is only looks.

On a terminal long lines wrap at words, each continuation hanging under the text it continues.
Anywhere else (a pipe, a file) nothing is wrapped: one logical line is one line, with no
trailing spaces, so `grep`, `cut` and diffs see whole sentences and whole citations.
"""
from __future__ import annotations

from rich.console import Console
from rich.text import Text

from .types import Answer, Citation, Result

CONTEXT_CHARS = 110  # shown either side of the answer inside a long sentence
HIGHLIGHT = "bold yellow"  # the answer inside its sentence
MARK = "bold reverse"  # a cited span in its file, on a terminal with colour
BRACKETS = ("[[", "]]")  # the same without colour: visible in a pipe, in a log, with NO_COLOR
QUOTES = "\"“”‘’'«»„"
MIN_WRAP = 20  # never wrap a continuation narrower than this, however deep its indent


def console(stderr: bool = False) -> Console:
    """A console that wraps at words on a terminal and not at all elsewhere."""
    # rich already honours NO_COLOR and drops colour when the stream is not a terminal.
    out = Console(stderr=stderr, highlight=False)
    out.soft_wrap = not out.is_terminal
    return out


def wraps(out: Console) -> bool:
    return out.is_terminal and not out.soft_wrap


def marks_with_style(out: Console) -> bool:
    """Whether a highlight will be seen: a terminal with colour. Elsewhere spans get brackets."""
    return out.is_terminal and not out.no_color and out.color_system is not None


def emit(out: Console, prefix: str | Text, body: Text, hang: int | None = None) -> None:
    """prefix then body; on a terminal body wraps at words, continuation lines hanging `hang`
    columns in (default: under the body's first character)."""
    prefix = Text(prefix) if isinstance(prefix, str) else prefix
    hang = prefix.cell_len if hang is None else hang
    if not wraps(out):
        _print_line(out, Text.assemble(prefix, body))
        return
    first = max(out.width - prefix.cell_len, MIN_WRAP)
    rest = max(out.width - hang, MIN_WRAP)
    lines = body.wrap(out, first) if body.plain else [Text()]
    _print_line(out, Text.assemble(prefix, lines[0]))
    if len(lines) == 1:
        return
    # The rest of body, from where the first line ended, wrapped again at its own width.
    cut = len(lines[0].plain)
    cut += len(body.plain[cut:]) - len(body.plain[cut:].lstrip(" "))
    for line in body[cut:].wrap(out, rest):
        _print_line(out, Text.assemble(" " * hang, line))


def _print_line(out: Console, line: Text) -> None:
    line.rstrip()  # a gutter before an empty line, a space where a line was broken: never kept
    out.print(line, soft_wrap=True)


def message(out: Console, text: Text | str) -> None:
    """A note or an error: one line off a terminal, wrapped at words (never mid-word) on one."""
    emit(out, "", Text(text) if isinstance(text, str) else text, hang=2)


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
    text.append(sentence[start:end], style=HIGHLIGHT)
    text.append(sentence[end:hi])
    if hi < len(sentence):
        text.append("…")
    return text


def quoted(excerpt: Text) -> tuple[str, Text]:
    """The opening mark and the excerpt with its closing one: “…” around it, or no marks at all
    when the sentence starts or ends with a quotation mark of its own (no ““ and no lone ”)."""
    plain = excerpt.plain
    if plain[:1] in QUOTES or plain[-1:] in QUOTES:
        return "", excerpt
    body = excerpt.copy()
    body.append("”")
    return "“", body


def cite(c: Citation, with_meta: bool = True) -> Text:
    text = Text(c.ref, style="cyan")
    if with_meta:
        meta = " · ".join(x for x in (f"page {c.page}" if c.page is not None else None, c.date, c.title) if x)
        if meta:
            text.append(f"  {meta}", style="dim")
    return text


def answer(out: Console, a: Answer, rank: int | None = None) -> None:
    head = Text()
    head.append(a.answer if a.answer != a.sentence else "(the whole sentence)", style="bold green")
    head.append(f"  confidence {a.score:.2f}", style="dim")
    emit(out, Text(f"{rank}. ", style="dim") if rank is not None else Text(), head)
    rel = a.source.start - a.source.sentence_start
    opening, body = quoted(_excerpt(a.sentence, rel, rel + len(a.answer)))
    # Continuations hang under the first letter, past an opening quotation mark when there is one.
    emit(out, "   " + opening, body, hang=4 if (opening + body.plain)[:1] in QUOTES else 3)
    emit(out, "   ", cite(a.source))
    if a.supporting:
        also = Text()
        for i, c in enumerate(a.supporting):
            if i:
                also.append(", ", style="dim")
            also.append_text(cite(c, with_meta=False))
        emit(out, Text("   also: ", style="dim"), also)


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


def marked(out: Console, text: str, lo: int, hi: int, start: int, end: int) -> Text:
    """text[lo:hi] with the part inside [start, end) marked: reverse video on a colour terminal,
    [[brackets]] anywhere else."""
    a, b = max(lo, min(start, hi)), min(hi, max(end, lo))
    piece = Text(text[lo:a])
    if b > a:
        if marks_with_style(out):
            piece.append(text[a:b], style=MARK)
        else:
            piece.append(BRACKETS[0] if a == start else "")
            piece.append(text[a:b])
            piece.append(BRACKETS[1] if b == end else "")
    piece.append(text[b:hi])
    return piece


def passage(out: Console, header: Text, text: str, start: int, end: int, context: int | None) -> None:
    """The file's lines around [start, end) under a line-number gutter, the cited lines flagged
    with > and the span marked; the whole file when context is None.

    Shared by `qa show` and chat's `:open`, so a citation looks the same wherever it is followed.
    """
    lines = text.split("\n")
    if lines and lines[-1] == "" and len(lines) > 1:
        lines.pop()  # the newline ending the file is not a line of its own
    first_cited = text.count("\n", 0, start) + 1
    last_cited = text.count("\n", 0, max(start, end - 1)) + 1
    if context is None:
        first, last = 1, len(lines)
    else:
        first, last = max(1, first_cited - context), min(len(lines), last_cited + context)
    emit(out, "", header)
    width = len(str(last))
    offset = sum(len(s) + 1 for s in lines[: first - 1])  # where line `first` starts in text
    for number in range(first, last + 1):
        body = lines[number - 1]
        cited = end > start and first_cited <= number <= last_cited
        gutter = Text(f"{'>' if cited else ' '} {number:>{width}} │ ", style="dim")
        emit(out, gutter, marked(out, text, offset, offset + len(body), start, end))
        offset += len(body) + 1
