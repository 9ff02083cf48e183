"""Model output rendered as Markdown: formatting survives, nothing executable does."""

from __future__ import annotations

import pytest

from workflows.rendering import markdown_html, sanitize_html

REL = 'target="_blank" rel="noopener noreferrer nofollow"'


@pytest.mark.parametrize(
    "source",
    [
        "<script>alert(1)</script>",
        "before <script>alert(1)</script> after",
        "<img src=x onerror=alert(1)>",
        '<a href="data:text/html,<script>alert(1)</script>">x</a>',
        "<iframe src=https://evil.example></iframe>",
        '<p onclick="alert(1)">x</p>',
    ],
)
def test_raw_html_is_shown_as_text(source: str) -> None:
    html = markdown_html(source)
    assert "<script" not in html
    assert "<img" not in html
    assert "<iframe" not in html
    assert "<a " not in html
    assert "<p onclick" not in html
    assert "&lt;" in html


@pytest.mark.parametrize(
    "source",
    [
        "[x](javascript:alert(1))",
        "[x](JaVaScRiPt:alert(1))",
        "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "[x](vbscript:msgbox(1))",
        "<javascript:alert(1)>",
        "[x](ftp://files.example/a)",
        "[x](/settings/delete)",
    ],
)
def test_unsafe_links_lose_their_target(source: str) -> None:
    html = markdown_html(source)
    assert "href" not in html


def test_safe_links_get_rel_and_a_new_tab() -> None:
    html = markdown_html('[site](https://example.com "title") and [mail](mailto:a@example.com)')
    assert f'<a href="https://example.com" {REL}>site</a>' in html
    assert f'<a href="mailto:a@example.com" {REL}>mail</a>' in html
    assert "title=" not in html


def test_the_sanitizer_alone_removes_what_the_renderer_would_never_emit() -> None:
    # The second layer holds even if the first one changes.
    html = sanitize_html(
        '<a href="javascript:alert(1)" onclick="x()">a</a>'
        '<a href="data:text/html,hi">b</a><img src=x onerror=alert(1)>'
        "<script>alert(1)</script><div style='x'><em>ok</em></div>"
    )
    assert "javascript:" not in html
    assert "data:" not in html
    assert "onclick" not in html
    assert "<img" not in html
    assert "<script" not in html and "alert(1)" not in html
    assert "<div" not in html and "style" not in html
    assert "<em>ok</em>" in html


def test_images_become_their_alt_text() -> None:
    html = markdown_html("see ![a <b>chart</b> of *costs*](https://tracker.example/p.png) here")
    assert "<img" not in html
    assert "tracker.example" not in html
    assert "a &lt;b&gt;chart&lt;/b&gt; of costs" in html


def test_nested_markdown_keeps_its_structure() -> None:
    source = (
        "# Plan\n\n> **Note:** read *this*\n>\n> 1. first\n>    - nested `code`\n"
        ">    - [link](https://example.com)\n\n---\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
    )
    html = markdown_html(source)
    for fragment in (
        "<h1>Plan</h1>",
        "<blockquote>",
        "<strong>Note:</strong>",
        "<em>this</em>",
        "<ol>",
        "<ul>",
        "<code>code</code>",
        f'<a href="https://example.com" {REL}>link</a>',
        "<hr>",
        "<table>",
        "<th>a</th>",
        "<td>2</td>",
    ):
        assert fragment in html, fragment


def test_code_blocks_keep_their_content_escaped() -> None:
    html = markdown_html("```html\n<script>alert('x')</script> & <b>\n```\n\n`<i>inline</i>`")
    assert "<pre><code>&lt;script&gt;alert('x')&lt;/script&gt; &amp; &lt;b&gt;\n</code></pre>" in (
        html
    )
    assert "<code>&lt;i&gt;inline&lt;/i&gt;</code>" in html
    assert "<script" not in html


def test_plain_text_and_empty_input() -> None:
    assert markdown_html("") == ""
    assert markdown_html("hello") == "<p>hello</p>\n"
