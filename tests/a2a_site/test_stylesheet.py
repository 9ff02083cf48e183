"""The stylesheet stays well-formed: one unclosed block (a merge that drops a `}`) silently puts
every rule after it inside a media query, and the pages after it lose their styles on desktops."""

from __future__ import annotations

import re
from pathlib import Path

STYLESHEET = Path(__file__).resolve().parents[2] / "static" / "css" / "app.css"


def test_every_block_of_the_stylesheet_is_closed() -> None:
    text = re.sub(r"/\*.*?\*/", "", STYLESHEET.read_text(), flags=re.S)
    text = re.sub(r"\"[^\"]*\"|'[^']*'", "", text)
    open_blocks: list[int] = []
    for number, line in enumerate(text.splitlines(), 1):
        for char in line:
            if char == "{":
                open_blocks.append(number)
            elif char == "}":
                assert open_blocks, f"app.css line {number}: a `}}` closes nothing"
                open_blocks.pop()
    assert not open_blocks, f"app.css: the blocks opened on lines {open_blocks} are never closed"
