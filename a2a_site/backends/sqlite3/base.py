"""Django's SQLite backend, with the conversion of a query's placeholders kept.

Django turns every query's `%s` into SQLite's `?` with a regular expression over the whole
text, at every execution. The engine's statements are the same texts step after step (a
step's completion is some 16 KB of SQL on SQLite): that conversion was about 7 % of the
embedded mode's CPU with 50 runs at once. Here a text's conversion is kept (up to 256 texts
of up to 32 KB each); anything else is Django's own backend.

Selected by the settings when no DATABASE_URL is given (the embedded mode).
"""

from __future__ import annotations

import functools
from typing import Any, Final

from django.db.backends.sqlite3 import base

CACHED_QUERY_CHARS: Final = 32_768


@functools.lru_cache(maxsize=256)
def _qmark(query: str) -> str:
    return str(base.FORMAT_QMARK_REGEX.sub("?", query).replace("%%", "%"))


class SQLiteCursorWrapper(base.SQLiteCursorWrapper):
    def convert_query(self, query: str, *, param_names: Any = None) -> str:
        if param_names is None and len(query) <= CACHED_QUERY_CHARS:
            return _qmark(query)
        return str(super().convert_query(query, param_names=param_names))  # type: ignore[misc]  # not in the stubs


class DatabaseWrapper(base.DatabaseWrapper):
    def create_cursor(self, name: Any = None) -> Any:
        return self.connection.cursor(factory=SQLiteCursorWrapper)
