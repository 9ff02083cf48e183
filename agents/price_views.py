"""Setting and removing a model's prices on a provider (the provider page's "Prices" card)."""

from __future__ import annotations

from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from a2a_site.accounts.models import Role
from a2a_site.http import AuthedRequest
from agents.prices import PriceError, provider_model_price_remove, provider_model_price_set
from agents.selectors import get_provider_for_user


def _prices_card(provider_id: UUID) -> HttpResponse:
    return redirect(reverse("provider_detail", args=[provider_id]) + "#prices")


@login_required
@require_POST
def provider_price_set(request: AuthedRequest, provider_id: UUID) -> HttpResponse:
    provider, _ = get_provider_for_user(request.user, provider_id, role=Role.EDITOR)
    model = request.POST.get("model", "").strip()
    try:
        provider_model_price_set(
            provider=provider,
            model=model,
            input=request.POST.get("input"),
            output=request.POST.get("output"),
            cached_input=request.POST.get("cached_input"),
        )
    except PriceError as error:
        messages.error(request, f"Prices not saved: {error}")
    else:
        messages.success(request, f"Prices of {model} saved; its next calls are priced with them.")
    return _prices_card(provider.pk)


@login_required
@require_POST
def provider_price_remove(request: AuthedRequest, provider_id: UUID) -> HttpResponse:
    provider, _ = get_provider_for_user(request.user, provider_id, role=Role.EDITOR)
    model = request.POST.get("model", "")
    if provider_model_price_remove(provider=provider, model=model):
        messages.success(request, f"Prices of {model} removed.")
    else:
        messages.error(request, f"{model or 'That model'} had no prices of its own.")
    return _prices_card(provider.pk)
