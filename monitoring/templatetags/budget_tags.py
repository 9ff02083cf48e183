from __future__ import annotations

from decimal import Decimal

from django import template

from agents.budgets.enforcement import money

register = template.Library()


@register.filter
def usd(amount: Decimal | None) -> str:
    """An amount in USD as budgets show it ($1.50, $0.0042), "—" for none."""
    return money(amount)
