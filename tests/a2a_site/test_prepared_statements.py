"""PostgreSQL: the engine's long statements are prepared once per connection and sent as
EXECUTE; what they do and return is the same, a statement PostgreSQL will not prepare is sent as
text, a prepared statement someone removed is prepared again, and nothing is prepared inside a
transaction block or with A2A_PG_PREPARED_STATEMENTS off."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from a2a_site import db

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

# Long enough to be prepared: the padding is a comment, so the statement stays what it says.
PAD = "/* " + "p" * db.PREPARE_MIN_LENGTH + " */"


@pytest.fixture
def table():
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE prepared_probe (k text PRIMARY KEY, n integer NOT NULL)")
    yield "prepared_probe"
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE prepared_probe")
        cursor.execute("DEALLOCATE ALL")
    db._forget_prepared()


def _prepared_names() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM pg_prepared_statements")
        return {row[0] for row in cursor.fetchall()}


def _upsert(key: str, n: int) -> tuple[str, list[object]]:
    return (
        f"INSERT INTO prepared_probe (k, n) VALUES (%s, %s) ON CONFLICT (k) "
        f"DO UPDATE SET n = prepared_probe.n + EXCLUDED.n RETURNING n {PAD}",
        [key, n],
    )


def test_a_long_statement_is_prepared_once_and_executed_by_name(table) -> None:
    assert connection.vendor == "postgresql"
    before = _prepared_names()
    with connection.cursor() as cursor:
        db.execute_statements(cursor, [_upsert("a", 2), _upsert("b", 5)])
        assert cursor.fetchone() == (2,)
        cursor.nextset()
        assert cursor.fetchone() == (5,)
    names = _prepared_names() - before
    assert len(names) == 1 and next(iter(names)).startswith("a2a_")

    with connection.cursor() as cursor:
        db.execute_one(cursor, *_upsert("a", 3))
        assert cursor.fetchone() == (5,)
    assert _prepared_names() - before == names  # the same statement, not prepared again
    with connection.cursor() as cursor:
        cursor.execute("SELECT k, n FROM prepared_probe ORDER BY k")
        assert cursor.fetchall() == [("a", 5), ("b", 5)]


def test_the_statements_of_one_text_are_one_transaction(table) -> None:
    """A failure in the last statement undoes the first: they are sent as one text."""
    failing = (f"INSERT INTO prepared_probe (k, n) VALUES (%s, %s) {PAD}", ["c", None])
    with pytest.raises(Exception, match="null value"), connection.cursor() as cursor:
        db.execute_statements(cursor, [_upsert("c", 1), failing])
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM prepared_probe")
        assert cursor.fetchone() == (0,)


def test_a_statement_postgresql_will_not_prepare_is_sent_as_text(table, caplog) -> None:
    # Two parameters of unknown type cannot be added: PREPARE refuses it, the text (with the
    # numbers as literals) works.
    sql = f"SELECT %s + %s AS value {PAD}"
    with connection.cursor() as cursor:
        db.execute_one(cursor, sql, [1, 2])
        assert cursor.fetchone() == (3,)
        db.execute_one(cursor, sql, [4, 5])
        assert cursor.fetchone() == (9,)
    assert sql in db._unpreparable
    assert "could not be prepared" in caplog.text


def test_a_prepared_statement_removed_by_someone_else_is_prepared_again(table, caplog) -> None:
    with connection.cursor() as cursor:
        db.execute_one(cursor, *_upsert("d", 1))
        cursor.execute("DEALLOCATE ALL")  # as a pooler or another tool might
        db.execute_statements(cursor, [_upsert("d", 1), _upsert("e", 1)])
        assert cursor.fetchone() == (2,)
        db.execute_one(cursor, *_upsert("e", 1))  # prepared again
        assert cursor.fetchone() == (2,)
    assert "prepared again" in caplog.text
    assert any(name.startswith("a2a_") for name in _prepared_names())


def test_nothing_is_prepared_inside_a_transaction_block(table) -> None:
    before = _prepared_names()
    with transaction.atomic(), connection.cursor() as cursor:
        db.execute_one(cursor, *_upsert("f", 1))
        assert cursor.fetchone() == (1,)
    assert _prepared_names() == before


def test_nothing_is_prepared_when_turned_off(table, settings) -> None:
    settings.PG_PREPARED_STATEMENTS = False
    before = _prepared_names()
    with connection.cursor() as cursor:
        db.execute_statements(cursor, [_upsert("g", 1), _upsert("h", 1)])
        assert cursor.fetchone() == (1,)
    assert _prepared_names() == before


def test_a_connection_keeps_a_bounded_number_of_prepared_statements(table, monkeypatch) -> None:
    monkeypatch.setattr(db, "_PREPARED_PER_CONNECTION", 3)
    with connection.cursor() as cursor:
        for i in range(7):
            sql, params = _upsert(f"k{i}", 1)
            db.execute_one(cursor, sql.replace(PAD, f"{PAD} /* shape {i} */"), params)
    assert 1 <= len({n for n in _prepared_names() if n.startswith("a2a_")}) <= 3


def test_nothing_is_prepared_while_autocommit_is_off(table) -> None:
    before = _prepared_names()
    transaction.set_autocommit(False)
    try:
        with connection.cursor() as cursor:
            db.execute_one(cursor, *_upsert("i", 1))
            assert cursor.fetchone() == (1,)
    finally:
        transaction.rollback()
        transaction.set_autocommit(True)
    assert _prepared_names() == before


def test_a_prepare_cut_off_by_a_lost_connection_is_tried_again_on_the_next(table) -> None:
    """Only a statement PostgreSQL refuses is sent as text for good: a PREPARE that failed
    because the connection went away fails the call, and the next connection prepares it."""
    from django.db import DatabaseError, connections

    sql, params = _upsert("j", 1)
    sql = sql.replace(PAD, f"{PAD} /* cut off */")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    finally:
        other.close()
    with pytest.raises(DatabaseError), connection.cursor() as cursor:
        db.execute_one(cursor, sql, params)
    assert sql not in db._unpreparable
    connection.close()
    with connection.cursor() as cursor:
        db.execute_one(cursor, sql, params)
        assert cursor.fetchone() == (1,)
    assert db._names[sql] in _prepared_names()


def test_an_execute_with_many_parameters_is_split_once(table) -> None:
    """The EXECUTE text of a statement with 150 parameters is split around its placeholders
    once, then found in psycopg's cache (without it, split again at every execution)."""
    from psycopg import _queries

    columns = ", ".join(f"%s::integer AS c{i}" for i in range(150))
    sql = f"SELECT {columns} {PAD}"
    before_names = _prepared_names()
    with connection.cursor() as cursor:
        db.execute_one(cursor, sql, list(range(150)))
        assert cursor.fetchone() == tuple(range(150))
        before = _queries._query2pg_client.cache_info().hits
        db.execute_one(cursor, sql, list(range(1, 151)))
        assert cursor.fetchone() == tuple(range(1, 151))
        assert _queries._query2pg_client.cache_info().hits == before + 1
    assert len(_prepared_names() - before_names) == 1  # it went as an EXECUTE
