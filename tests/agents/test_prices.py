"""Prices per model on any provider: per 1M tokens, with cached input, set on its page."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.urls import reverse

from agents.llm.lean import _usage
from agents.llm.pricing import price_call
from agents.llm.types import Deployment, ModelPrices, Usage
from agents.models import Provider
from agents.prices import PriceError, model_prices_of, provider_model_price_set
from tests.agents.factories import make_provider
from tests.conftest import Personas


def deployment(**prices: Any) -> Deployment:
    return Deployment(
        id="p:m", provider_kind="openai_compatible", model="house", base_url="", **prices
    )


def test_a_models_own_prices_win_and_price_cached_input_apart() -> None:
    own = ModelPrices(input=Decimal("2"), output=Decimal("8"), cached_input=Decimal("0.5"))
    usage = Usage(1_000_000, 500_000, 1_500_000, cached_tokens=400_000)

    cost, source = price_call(deployment(model_prices=own, input_price_per_1k=Decimal(1)), usage)

    assert source == "configured"
    assert cost == Decimal("1.2") + Decimal("0.2") + Decimal("4")  # 600k in, 400k cached, 500k out


def test_without_a_cached_price_cached_tokens_bill_as_input() -> None:
    own = ModelPrices(input=Decimal("2"), output=Decimal("0"))
    cost, _ = price_call(deployment(model_prices=own), Usage(1_000_000, 0, 1_000_000, 900_000))
    assert cost == Decimal("2")


def test_the_public_price_list_prices_cache_reads_too() -> None:
    plain = Deployment(id="p:m", provider_kind="openai", model="gpt-4o-mini", base_url="")
    full, _ = price_call(plain, Usage(1000, 0, 1000))
    cached, source = price_call(plain, Usage(1000, 0, 1000, cached_tokens=1000))
    assert source == "price_list"
    assert 0 < cached < full


def test_openai_usage_says_how_much_came_from_the_cache() -> None:
    usage = _usage(
        {
            "prompt_tokens": 50,
            "completion_tokens": 5,
            "prompt_tokens_details": {"cached_tokens": 32},
        }
    )
    assert usage is not None and usage.cached_tokens == 32
    assert _usage({"prompt_tokens": 5, "completion_tokens": 1}).cached_tokens == 0  # type: ignore[union-attr]


@pytest.mark.django_db
def test_an_editor_sets_and_removes_a_models_prices(personas: Personas, client_for: Any) -> None:
    provider = make_provider(
        personas.workspace,
        kind="openai_compatible",
        name="Gateway",
        base_url="https://llm.example.com/v1",
    )
    url = reverse("provider_price_set", args=[provider.pk])

    page = client_for(personas.owner).post(
        url, {"model": "house", "input": "0.15", "output": "$0.60", "cached_input": ""}, follow=True
    )

    assert "Prices of house saved" in page.content.decode()
    provider.refresh_from_db()
    assert provider.model_prices == {"house": {"input": "0.15", "output": "0.60"}}
    assert model_prices_of(provider, "house") == ModelPrices(Decimal("0.15"), Decimal("0.60"))
    client_for(personas.owner).post(
        reverse("provider_price_remove", args=[provider.pk]), {"model": "house"}
    )
    assert Provider.objects.get(pk=provider.pk).model_prices == {}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"model": "", "input": "1", "output": "1"}, "model's name"),
        ({"model": "m", "input": "", "output": "1"}, "Enter the input price"),
        ({"model": "m", "input": "abc", "output": "1"}, "number of dollars"),
        ({"model": "m", "input": "1", "output": "-2"}, "zero or more"),
        ({"model": "m", "input": "1", "output": "1", "cached_input": "NaN"}, "zero or more"),
    ],
)
def test_bad_prices_are_refused_with_a_reason_and_nothing_is_saved(
    personas: Personas, client_for: Any, values: dict[str, str], message: str
) -> None:
    provider = make_provider(personas.workspace)
    with pytest.raises(PriceError, match=message):
        provider_model_price_set(
            provider=provider,
            model=values["model"],
            input=values["input"],
            output=values["output"],
            cached_input=values.get("cached_input"),
        )
    page = client_for(personas.owner).post(
        reverse("provider_price_set", args=[provider.pk]), values, follow=True
    )
    assert "Prices not saved" in page.content.decode()
    assert Provider.objects.get(pk=provider.pk).model_prices == {}


@pytest.mark.django_db
def test_a_viewer_cannot_set_prices(personas: Personas, client_for: Any) -> None:
    provider = make_provider(personas.workspace)
    response = client_for(personas.viewer).post(
        reverse("provider_price_set", args=[provider.pk]),
        {"model": "m", "input": "1", "output": "1"},
    )
    assert response.status_code in (403, 404)
    assert Provider.objects.get(pk=provider.pk).model_prices == {}
