"""`Idempotency-Key` on POSTs: a retried request gets the first answer, and does nothing again.

How it holds under concurrency: the request inserts its (caller, key) row and does its work in
one transaction. A second request with the same key inserts the same row; the unique index makes
it wait until the first commits (PostgreSQL) — or the write lock serializes them (SQLite) — and
then fails, so it reads the stored answer and replays it. If the first request fails, its
transaction (row included) is rolled back and the waiting one does the work itself.

Cases, each with its test in tests/api/test_idempotency.py:
- the same key and body again: the first answer, with `Idempotent-Replayed: true`;
- the same key with another body (or path): 422, nothing done;
- twenty simultaneous launches with one key: one run;
- the first request refused (4xx) or failed: nothing stored, a retry is tried afresh;
- a key older than API_IDEMPOTENCY_HOURS: forgotten, the request is new;
- keys are per caller: two tokens may use the same key;
- expired keys are swept by the requests themselves, a batch at a time (no schedule needed).
"""

import hashlib
import json
import random
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from ninja import Status
from pydantic import BaseModel

from a2a_site.api.auth import caller_of
from a2a_site.api.models import IdempotencyRecord
from a2a_site.api.problems import ApiError, FieldError

HEADER = "Idempotency-Key"
# One stored answer in PURGE_CHANCE⁻¹ sweeps up to PURGE_BATCH expired keys after it commits.
PURGE_CHANCE = 0.01
PURGE_BATCH = 500
MAX_KEY = 255
# The operation ids (as ninja names them: module_function) that honour the header, for the schema.
IDEMPOTENT_OPERATIONS: set[str] = set()


def _fingerprint(request: HttpRequest) -> str:
    digest = hashlib.sha256()
    digest.update(f"{request.method} {request.path}\n".encode())
    digest.update(request.body)
    return digest.hexdigest()


def _key_of(request: HttpRequest) -> str | None:
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_KEY or not key.isprintable():
        raise ApiError(
            "malformed",
            f"{HEADER} must be 1 to {MAX_KEY} printable characters (a UUID is a good key).",
            errors=[FieldError(HEADER, "Not a usable key.")],
        )
    return key


def _render(result: Any) -> HttpResponse:
    status = 200
    if isinstance(result, Status):
        status, result = result.status_code, result.value
    if isinstance(result, HttpResponse):
        return result
    if isinstance(result, BaseModel):
        result = result.model_dump(mode="json")
    return HttpResponse(json.dumps(result), status=status, content_type="application/json")


def _replay(record: IdempotencyRecord) -> HttpResponse:
    response = HttpResponse(
        bytes(record.body), status=record.status or 200, content_type=record.content_type
    )
    response["Idempotent-Replayed"] = "true"
    return response


def idempotent(view: Callable[..., Any]) -> Callable[..., Any]:
    """For a POST endpoint: honours `Idempotency-Key` (see the module's docstring)."""
    IDEMPOTENT_OPERATIONS.add(f"{view.__module__.replace('.', '_')}_{view.__name__}")

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        key = _key_of(request)
        if key is None:
            return view(request, *args, **kwargs)
        owner = caller_of(request).idempotency_owner
        fingerprint = _fingerprint(request)
        now = timezone.now()
        expired = now - timedelta(hours=settings.API_IDEMPOTENCY_HOURS)
        with transaction.atomic():
            IdempotencyRecord.objects.filter(caller=owner, key=key, created_at__lt=expired).delete()
            try:
                with transaction.atomic():
                    record = IdempotencyRecord.objects.create(
                        caller=owner, key=key, fingerprint=fingerprint, created_at=now
                    )
            except IntegrityError:
                # Another request with this key committed first (we waited for it): its answer.
                first = IdempotencyRecord.objects.get(caller=owner, key=key)
                if first.fingerprint != fingerprint:
                    raise ApiError(
                        "idempotency-mismatch",
                        f"This {HEADER} was used for a different request; use a new key for "
                        "a new request.",
                    ) from None
                return _replay(first)
            response = _render(view(request, *args, **kwargs))
            if response.status_code >= 400:
                # A refusal is not remembered: nothing was done, and a retry may succeed.
                transaction.set_rollback(True)
                return response
            record.status = response.status_code
            record.body = response.content
            record.content_type = response.get("Content-Type", "application/json")
            record.save(update_fields=["status", "body", "content_type"])
        if random.random() < PURGE_CHANCE:
            # Expired keys are swept a batch at a time by the requests themselves: no schedule
            # to set up in either mode, and a busy API sweeps more often than a quiet one.
            transaction.on_commit(lambda: idempotency_records_purge(limit=PURGE_BATCH))
        return response

    return wrapper


def idempotency_records_purge(*, now: Any = None, limit: int | None = None) -> int:
    """Deletes keys older than API_IDEMPOTENCY_HOURS (at most `limit`); returns how many."""
    now = now or timezone.now()
    expired = now - timedelta(hours=settings.API_IDEMPOTENCY_HOURS)
    rows = IdempotencyRecord.objects.filter(created_at__lt=expired)
    if limit is not None:
        rows = IdempotencyRecord.objects.filter(
            pk__in=list(rows.order_by("created_at").values_list("pk", flat=True)[:limit])
        )
    deleted, _ = rows.delete()
    return deleted
