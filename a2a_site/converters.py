"""Path converters. Importing this module registers them (once: Python imports a module once).

`<id:name>` is Django's `<int:name>` bounded to what a 64-bit column holds: a longer number in a
URL is a 404, not an overflow in the database driver (a 500).
"""

from __future__ import annotations

from django.urls import register_converter


class BoundedIntConverter:
    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(BoundedIntConverter, "id")
