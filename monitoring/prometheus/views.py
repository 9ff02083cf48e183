"""`/metrics`: for Prometheus, not for people — a bearer token or an allowed address, never both
missing. A studio that configured neither refuses every scrape, so installing it exposes nothing.
"""

from __future__ import annotations

import hmac
import ipaddress

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from a2a_site.accounts.throttle import client_address
from monitoring.prometheus.collector import metrics_text
from monitoring.prometheus.exposition import CONTENT_TYPE


def _text(status: int, message: str) -> HttpResponse:
    return HttpResponse(message + "\n", status=status, content_type="text/plain; charset=utf-8")


def _address_allowed(request: HttpRequest) -> bool:
    try:
        client = ipaddress.ip_network(client_address(request), strict=False)
    except ValueError:
        return False
    for allowed in settings.METRICS_ALLOWED_NETWORKS:
        network = ipaddress.ip_network(allowed, strict=False)
        if client.version == network.version and client.subnet_of(network):  # type: ignore[arg-type]
            return True
    return False


def metrics_refusal(request: HttpRequest) -> HttpResponse | None:
    """None when the scrape may go on, else the answer that says why not."""
    token = settings.METRICS_TOKEN
    networks = settings.METRICS_ALLOWED_NETWORKS
    if not token and not networks:
        return _text(
            403,
            "Metrics are off: set A2A_METRICS_TOKEN (sent as 'Authorization: Bearer …') or "
            "A2A_METRICS_ALLOWED_NETWORKS (addresses or networks that may scrape).",
        )
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, given = header.partition(" ")
        if token and scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token):
            return None
        response = _text(401, "The metrics token is wrong.")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if networks and _address_allowed(request):
        return None
    if token:
        response = _text(401, "Send the metrics token as 'Authorization: Bearer …'.")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return _text(403, "This address may not read the metrics.")


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    refusal = metrics_refusal(request)
    if refusal is not None:
        return refusal
    return HttpResponse(metrics_text(), content_type=CONTENT_TYPE)
