"""Web pages through trafilatura (with htmldate for dates): the article, not the page around it.

trafilatura finds the main text and leaves out menus, cookie banners, related-article lists,
sidebars, footers and comments; it reads the title, author and date from the page's metadata
(meta tags, JSON-LD, <time>). The only module that imports it.
"""
from __future__ import annotations

from pathlib import Path

from . import Extracted, Limits, Unreadable, assemble


def extract(path: Path, limits: Limits) -> Extracted:
    import trafilatura

    raw = path.read_bytes()
    result = trafilatura.bare_extraction(
        raw, with_metadata=True, include_comments=False, include_tables=True, include_images=False,
        include_links=False, deduplicate=False,
    )
    if result is None or not (result.text or "").strip():
        raise Unreadable("has no article text that trafilatura could find")
    paragraphs = result.text.split("\n")
    title = result.title
    # The headline is the page's first line, as in a .txt article, when trafilatura left it out.
    if title and paragraphs and paragraphs[0].strip() != title.strip():
        paragraphs.insert(0, title)
    return assemble([paragraphs], paged=False, title=title, date=result.date, author=result.author)
