"""“Test connection”: can we reach the provider, does it accept the key, which models does it have.

Every failure is put in words a user can act on (bad key, unreachable, timeout, TLS, not an LLM
endpoint), and no message ever contains the key.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from agents.llm.redaction import redact_secrets
from agents.urlpolicy import OutboundURLRefused, model_url_check, policy_resolver

CHECK_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class ConnectionCheck:
    ok: bool
    message: str
    latency_ms: int | None = None
    models: list[str] = field(default_factory=list)
    version: str = ""


@dataclass(frozen=True)
class CheckTarget:
    kind: str
    base_url: str
    api_key: str = ""
    api_version: str = ""
    check_url_policy: bool = True


def _request_for(target: CheckTarget) -> tuple[str, dict[str, str]]:
    base = target.base_url.rstrip("/")
    headers: dict[str, str] = {}
    if target.kind == "anthropic":
        if target.api_key:
            headers["x-api-key"] = target.api_key
        headers["anthropic-version"] = "2023-06-01"
        return f"{base}/v1/models", headers
    if target.kind == "gemini":
        if target.api_key:
            headers["x-goog-api-key"] = target.api_key
        return f"{base}/v1beta/models", headers
    if target.kind == "ollama":
        return f"{base}/api/tags", headers
    if target.kind == "azure":
        if target.api_key:
            headers["api-key"] = target.api_key
        return f"{base}/openai/models?api-version={target.api_version}", headers
    if target.api_key:
        headers["Authorization"] = f"Bearer {target.api_key}"
    return f"{base}/models", headers


def _model_names(kind: str, payload: Any) -> list[str] | None:
    """The model names in a listing, or None when the answer is not a model listing at all."""
    if not isinstance(payload, dict):
        return None
    if kind == "ollama":
        models = payload.get("models")
        if not isinstance(models, list):
            return None
        return sorted(str(m.get("name") or m.get("model")) for m in models if isinstance(m, dict))
    if kind == "gemini":
        models = payload.get("models")
        if not isinstance(models, list):
            return None
        return sorted(str(m.get("name", "")).removeprefix("models/") for m in models)
    data = payload.get("data")
    if not isinstance(data, list):
        return None
    return sorted(str(item.get("id")) for item in data if isinstance(item, dict))


async def connection_check(target: CheckTarget) -> ConnectionCheck:
    secret = target.api_key
    if target.check_url_policy:
        try:
            model_url_check(target.base_url)
        except OutboundURLRefused as refused:
            return ConnectionCheck(False, str(refused))
    url, headers = _request_for(target)
    timeout = aiohttp.ClientTimeout(total=CHECK_TIMEOUT_S, sock_connect=5)
    # The address actually connected to is checked again (its DNS answer may have changed).
    resolver = policy_resolver() if target.check_url_policy else None
    started = time.perf_counter()
    try:
        async with (
            aiohttp.ClientSession(
                timeout=timeout, connector=aiohttp.TCPConnector(resolver=resolver)
            ) as session,
            session.get(url, headers=headers, allow_redirects=False) as response,
        ):
            latency = int((time.perf_counter() - started) * 1000)
            body = await response.read()
            status = response.status
            if status in (401, 403):
                return ConnectionCheck(
                    False,
                    f"The provider refused the API key (HTTP {status}). Check the key and that "
                    "it belongs to this provider.",
                    latency,
                )
            if 300 <= status < 400:
                return ConnectionCheck(
                    False,
                    f"The base URL redirects (HTTP {status}); enter the address it redirects to.",
                    latency,
                )
            if status == 404:
                return ConnectionCheck(
                    False,
                    "The server answered, but not as an LLM API (HTTP 404 for the model list). "
                    "Check the base URL — OpenAI-compatible servers usually end in /v1.",
                    latency,
                )
            if status >= 400:
                return ConnectionCheck(
                    False, f"The provider answered with an error (HTTP {status}).", latency
                )
            try:
                payload = json.loads(body)
            except ValueError:
                payload = None
            names = _model_names(target.kind, payload)
            if names is None:
                return ConnectionCheck(
                    False,
                    "The server answered, but not with a model list: this does not look like "
                    "an LLM endpoint. Check the base URL.",
                    latency,
                )
            return ConnectionCheck(
                True,
                # The models are listed beside the result; the message does not count them again.
                f"Connected in {latency} ms.",
                latency,
                names,
            )
    except OutboundURLRefused as refused:
        return ConnectionCheck(False, str(refused))
    except TimeoutError:
        return ConnectionCheck(
            False, f"No answer within {CHECK_TIMEOUT_S:.0f} s: the server is too slow or hangs."
        )
    except aiohttp.ClientConnectorCertificateError:
        return ConnectionCheck(False, "The TLS certificate could not be verified.")
    except (aiohttp.ClientSSLError, ssl.SSLError):
        return ConnectionCheck(False, "The TLS handshake failed: check http:// versus https://.")
    except aiohttp.ClientConnectorDNSError:
        return ConnectionCheck(False, "The host name could not be resolved.")
    except aiohttp.ClientConnectorError as error:
        return ConnectionCheck(
            False, f"Could not connect: {redact_secrets(str(error.os_error), secret)}."
        )
    except aiohttp.ClientError as error:
        return ConnectionCheck(False, f"The connection failed ({type(error).__name__}).")


def connection_check_sync(target: CheckTarget) -> ConnectionCheck:
    return asyncio.run(connection_check(target))
