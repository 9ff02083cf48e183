"""The SQLite backend keeps each text's conversion of `%s` into `?`: a text executed again is
not converted again, and the conversion is Django's (a literal `%%` is a percent sign)."""

from __future__ import annotations

import sqlite3

import pytest
from django.db import connection

from a2a_site.backends.sqlite3 import base


def test_a_text_is_converted_once_and_as_django_converts_it() -> None:
    cursor = sqlite3.connect(":memory:").cursor(factory=base.SQLiteCursorWrapper)
    text = "SELECT %s, '100%%', %s /* a2a conversion probe */"
    assert cursor.execute(text, [1, "a"]).fetchone() == (1, "100%", "a")
    hits = base._qmark.cache_info().hits
    assert cursor.execute(text, [2, "b"]).fetchone() == (2, "100%", "b")
    assert base._qmark.cache_info().hits == hits + 1


def test_a_text_longer_than_the_limit_is_converted_every_time() -> None:
    cursor = sqlite3.connect(":memory:").cursor(factory=base.SQLiteCursorWrapper)
    text = "SELECT %s /* " + "x" * base.CACHED_QUERY_CHARS + " */"
    misses = base._qmark.cache_info().misses
    assert cursor.execute(text, [3]).fetchone() == (3,)
    assert base._qmark.cache_info().misses == misses  # not cached


@pytest.mark.django_db
def test_the_embedded_mode_uses_it() -> None:
    if connection.vendor != "sqlite":  # the services pass runs on PostgreSQL
        assert connection.settings_dict["ENGINE"] != "a2a_site.backends.sqlite3"
        return
    assert connection.settings_dict["ENGINE"] == "a2a_site.backends.sqlite3"
    with connection.cursor() as cursor:
        assert isinstance(cursor.cursor, base.SQLiteCursorWrapper)
