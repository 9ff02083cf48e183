"""JSON sent by a client, parsed so that no malformed input reaches a 500.

Every endpoint that reads JSON from a request (a body, a form field, an uploaded file, a
WebSocket frame) goes through `json_parse`; it refuses, with a message a person can act on:

- bytes that are not UTF-8;
- nesting deeper than `MAX_DEPTH`, counted by a scan of the text before parsing (Python's parser,
  and every recursive walk after it — validation, storage, rendering — would otherwise end in a
  RecursionError);
- NaN, Infinity and numbers too large to be finite (JSON has no such values; PostgreSQL refuses
  them), and integers longer than Python converts;
- text the database cannot store: NUL characters and lone surrogates;
- a document of the wrong type where an object (or a list) is expected.

The size of a request body is bounded by Django (`DATA_UPLOAD_MAX_MEMORY_SIZE`); what a body that
is too large gets is decided by `a2a_site.refusals`.
"""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.http import HttpRequest

# Deeper than any graph, node config or input schema we write (about 10), far from Python's
# recursion limit (1000) for every walk that follows the parse.
MAX_DEPTH = 64

# Longer integers are no count or amount anything here stores.
MAX_DIGITS = 100

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKETS = str.maketrans({"[": "(", "{": "(", "]": ")", "}": ")"})
_NOT_BRACKETS = re.compile(r"[^()]+")
_STEP = {"(": 1, ")": -1}
_SUSPECT_ESCAPE = re.compile(r"\\u(?:0000|d[89a-f])", re.IGNORECASE)


class JsonInputError(ValueError):
    """The input is not JSON we accept; `str()` says why, `status` is the HTTP status for it."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def json_depth(text: str) -> int:
    """How deeply arrays and objects nest in `text` (0 for a scalar); iterative, never recursive.

    Brackets inside strings do not count. Text that is not JSON gets a number too; the parser
    refuses it afterwards.
    """
    if "[" not in text and "{" not in text:
        return 0
    # Strings out, then every bracket as "(" or ")": the depth is the highest running sum.
    bare = _STRING.sub("", text.replace("(", "").replace(")", ""))
    brackets = _NOT_BRACKETS.sub("", bare.translate(_BRACKETS))
    return max(accumulate(map(_STEP.__getitem__, brackets), initial=0))


def json_too_deep(text: str, limit: int = MAX_DEPTH) -> bool:
    # Fewer brackets than the limit cannot nest deeper: most documents are never scanned.
    return text.count("[") + text.count("{") > limit and json_depth(text) > limit


def _no_constant(name: str) -> Any:
    raise JsonInputError(f"{name} is not a JSON number.")


def _short_int(text: str) -> int:
    if len(text) > MAX_DIGITS:
        raise JsonInputError(f"The number {text[:20]}… has more than {MAX_DIGITS} digits.")
    return int(text)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonInputError(f"The number {text[:20]} is too large.")
    return value


def _storable(document: Any) -> None:
    """Refuses strings a database cannot store (NUL, lone surrogates); walks with a stack."""
    stack = [document]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, str):
            if "\x00" in value:
                raise JsonInputError("Text cannot contain NUL (\\u0000) characters.")
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise JsonInputError(
                    "Text contains a lone surrogate (\\ud800–\\udfff); send valid Unicode."
                ) from None


def json_parse(
    data: bytes | str,
    *,
    what: str = "The body",
    expect: type | tuple[type, ...] | None = None,
    max_depth: int = MAX_DEPTH,
) -> Any:
    """The JSON document in `data`, or JsonInputError naming `what` and what is wrong with it."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise JsonInputError(
                f"{what} is not UTF-8 (byte {error.start} cannot be decoded)."
            ) from None
    else:
        text = data
    if not text.strip():
        raise JsonInputError(f"{what} is empty; it must be JSON.")
    if json_too_deep(text, max_depth):
        raise JsonInputError(f"{what} nests arrays and objects more than {max_depth} levels deep.")
    try:
        document = json.loads(
            text, parse_constant=_no_constant, parse_float=_finite_float, parse_int=_short_int
        )
    except JsonInputError as error:
        raise JsonInputError(f"{what}: {error}") from None
    except RecursionError:  # a scan can be fooled by text that is not JSON; the parser cannot
        raise JsonInputError(f"{what} nests too deeply.") from None
    except ValueError as error:  # JSONDecodeError
        raise JsonInputError(f"{what} is not valid JSON: {error}.") from None
    if _SUSPECT_ESCAPE.search(text):
        try:
            _storable(document)
        except JsonInputError as error:
            raise JsonInputError(f"{what}: {error}") from None
    if expect is not None and not isinstance(document, expect):
        raise JsonInputError(f"{what} must be a JSON {_type_name(expect)}.")
    return document


def _type_name(expect: type | tuple[type, ...]) -> str:
    names = {dict: "object", list: "array", str: "string", int: "number", float: "number"}
    kinds = expect if isinstance(expect, tuple) else (expect,)
    return " or ".join(dict.fromkeys(names.get(kind, kind.__name__) for kind in kinds))


def body_bytes(request: HttpRequest) -> bytes:
    """The raw body, or JsonInputError when it is too large or was sent as a form."""
    from django.core.exceptions import RequestDataTooBig  # the parsing above needs no Django
    from django.http.request import RawPostDataException

    try:
        return request.body
    except RequestDataTooBig:
        raise JsonInputError("The body is too large.", status=413) from None
    except RawPostDataException:  # multipart: parsed as a form (by the CSRF check) already
        raise JsonInputError("Send JSON (Content-Type: application/json), not a form.") from None


def json_body(
    request: HttpRequest, *, expect: type | tuple[type, ...] | None = dict, empty: Any = None
) -> Any:
    """The request's body as JSON; `empty` (when given) stands for a body with nothing in it."""
    body = body_bytes(request)
    if empty is not None and not body.strip():
        return empty
    return json_parse(body, what="The body", expect=expect)
