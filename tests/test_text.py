"""User text as literal text: the Markdown escaping of hqcnn/markdown.py and the HTML escaping of figure labels.

The browser tests (tests/e2e/test_shared_server.py) render the same payloads in Streamlit; these
check the rules themselves."""

from __future__ import annotations

import re

import pytest

from hqcnn import plots
from hqcnn.markdown import MAX_SHOWN, WORD_JOINER, md

PAYLOADS = [
    "**Session expired** [log in](https://evil.example/login)",
    "![t](https://evil.example/t.png)",
    "<img src=x onerror=alert(1)>",
    ":red[alert] $x^2$ `code` # heading",
    "line one\n# a heading\n- a list\r\n> a quote",
    "mail me: someone@evil.example, or www.evil.example",
]
SPECIAL = set("!#$&()*+-.:<>@[\\]^_`{|}~")


@pytest.mark.parametrize("payload", PAYLOADS)
def test_every_markdown_character_is_escaped(payload):
    out = md(payload)
    assert "\n" not in out and "\r" not in out  # one line: no heading, list or quote can start
    i = 0
    while i < len(out):  # every special character is the second half of a backslash escape
        if out[i] == "\\":
            assert out[i + 1] in SPECIAL, out
            i += 2
            continue
        assert out[i] not in SPECIAL, (out, i)
        i += 1
    # What a reader sees is the payload itself (escapes and word joiners are invisible).
    shown = re.sub(r"\\(.)", r"\1", out).replace(WORD_JOINER, "")
    assert shown == re.sub(r"[\r\n]+", " ", payload)


def test_bare_urls_and_addresses_cannot_autolink():
    out = md("https://evil.example www.evil.example a@evil.example").replace("\\", "")
    assert "://" not in out and "www." not in out.lower() and "@e" not in out


def test_long_values_are_cut():
    assert len(md("x" * 10_000)) == MAX_SHOWN and md("x" * 10_000).endswith("…")
    assert len(md("x" * 10_000, limit=20)) == 20


def test_figure_labels_are_html_escaped():
    names = ["<a href='https://evil.example'>x</a>", "a & b", "plain"]
    assert plots.plain(names) == ["&lt;a href='https://evil.example'&gt;x&lt;/a&gt;", "a &amp; b", "plain"]
    fig = plots.class_balance({"train": [3, 4], "val": [1, 1], "test": [1, 1]}, names[:2])
    labels = " ".join(str(v) for trace in fig.data for v in (trace.x or ()))
    assert "<a" not in labels and "&lt;a" in labels
