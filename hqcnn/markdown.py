"""Text that comes from users, shown as text in Markdown: never interpreted as Markdown, HTML or a link.

Streamlit renders Markdown (links, images, emphasis, colour directives, LaTeX, autolinked URLs)
in st.markdown, st.caption, st.info/warning/error/success, headers, tab and expander labels. Any
value a user controls (a URL value, a file, folder, class or dataset name, a zip member, a field
of an uploaded JSON file, a message quoting one) goes through `md` before it reaches them.
"""

from __future__ import annotations

import re

# CommonMark lets a backslash escape any ASCII punctuation character, and an escaped character is
# always literal text. Escaping these also breaks GFM autolinks ("https\://", "www\."), e-mail
# autolinks ("\@"), HTML tags ("\<"), Streamlit's ":colour[…]" directives and "$" maths. Left
# as they are: , ; ' " = ? % / — inert on one line, and common in names and messages.
_PUNCTUATION = re.compile(r"([!#$&()*+\-.:<>@\[\\\]^_`{|}~])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")  # newlines included: no new block (heading, list) can start
# GFM turns bare URLs and e-mail addresses in text into links after escapes are read, so an
# escape cannot stop them: an invisible word joiner after "http:", "@" and "www" breaks the pattern.
_AUTOLINK = re.compile(r"(?i)(:|@|www(?=\.))")
WORD_JOINER = "\u2060"
MAX_SHOWN = 300  # characters of one user value shown; the rest is cut


def md(value: object, limit: int = MAX_SHOWN) -> str:
    """`value` as literal text for a Markdown context, on one line, at most `limit` characters."""
    text = _CONTROL.sub(" ", str(value))
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return _PUNCTUATION.sub(r"\\\1", _AUTOLINK.sub(r"\1" + WORD_JOINER, text))
