"""Markdown from LLM output, rendered to HTML that is safe to put in a page.

Model output is untrusted (a prompt injection can make it write anything), so two layers: the
Markdown renderer treats raw HTML as text, and the result is sanitized against an allow-list
anyway, so a renderer quirk or a future option change cannot let markup through.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import nh3
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

ALLOWED_TAGS = frozenset(
    {
        "p", "br", "strong", "em", "code", "pre", "blockquote", "ul", "ol", "li",
        "h1", "h2", "h3", "h4", "h5", "h6", "a",
        "table", "thead", "tbody", "tr", "th", "td", "hr",
    }
)  # fmt: skip
# "*" given explicitly: otherwise the sanitizer keeps its default generic ones (title, lang).
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {"*": set(), "a": {"href"}}
URL_SCHEMES = frozenset({"http", "https", "mailto"})
LINK_REL = "noopener noreferrer nofollow"


def _image_as_text(
    renderer: Any, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    # No images: a model-chosen URL would be fetched by every viewer's browser (tracking, and a
    # channel out for whatever the prompt contained). Its alt text still says what was meant.
    token = tokens[idx]
    alt = renderer.renderInlineAsText(token.children or [], options, env)
    return escapeHtml(alt)


def _markdown() -> MarkdownIt:
    # `html=False`: raw HTML in the source is shown as text, never passed through.
    # Linkify off: bare URLs stay text, so a link is only ever one the source spelled out.
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    # Models write tables often; the commonmark preset leaves the GFM table rule off.
    md.enable("table")
    md.add_render_rule("image", _image_as_text)
    return md


_MD = _markdown()


def markdown_html(text: str) -> str:
    """Model-written Markdown as sanitized HTML (links open in a new tab, no images)."""
    return sanitize_html(_MD.render(text))


def sanitize_html(html: str) -> str:
    """The allow-list pass on its own: tags above, `href` on links with safe schemes only."""
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        # Relative links would point into this site on the model's say-so: drop them.
        url_relative="deny",
        link_rel=LINK_REL,
        set_tag_attribute_values={"a": {"target": "_blank"}},
    )
