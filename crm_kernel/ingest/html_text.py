"""HTML mail bodies as readable plain text, with the standard library's HTML parser."""

from __future__ import annotations

import re
from html.parser import HTMLParser

# Tags that start and end a line of their own; a paragraph-like one is set off by a blank line.
_LINES = {"br", "div", "li", "tr", "table", "ul", "ol", "blockquote", "pre", "hr"}
_PARAGRAPHS = {"p", "h1", "h2", "h3", "h4", "h5", "h6"}
_HIDDEN = {"script", "style", "head", "title", "template"}
_LINE, _PARAGRAPH = "\x00L", "\x00P"  # break markers, merged when several meet


class _Text(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)  # &amp; &eacute; &#8364; arrive decoded
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag, attrs):
        if tag in _HIDDEN:
            self.hidden += 1
        elif tag in _PARAGRAPHS:
            self.parts.append(_PARAGRAPH)
        elif tag in _LINES:
            self.parts.append(_LINE)
            if tag == "li":
                self.parts.append("- ")

    def handle_endtag(self, tag):
        if tag in _HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in _PARAGRAPHS or tag in ("ul", "ol", "table"):
            self.parts.append(_PARAGRAPH)
        elif tag in _LINES:
            self.parts.append(_LINE)
        elif tag in ("td", "th"):
            self.parts.append(" ")

    def handle_data(self, data):
        if not self.hidden:
            self.parts.append(re.sub(r"\s+", " ", data.replace("\x00", "")))


def _breaks(run: re.Match) -> str:
    return "\n\n" if _PARAGRAPH in run.group(0) else "\n"


def html_to_text(html: str) -> str:
    """The text of an HTML document: no tags, scripts or styles; block elements on lines of
    their own, paragraphs and lists set off by a blank line; entities decoded; spaces
    collapsed."""
    parser = _Text()
    parser.feed(html)
    parser.close()
    text = re.sub(r"(?:\s*\x00[LP])+\s*", _breaks, "".join(parser.parts))
    return "\n".join(line.strip() for line in text.splitlines()).strip()
