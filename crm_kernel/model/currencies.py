"""Currencies: the ISO 4217 codes in circulation and amounts formatted for a locale, from babel.

The list is CLDR's (through babel), not typed by hand: a code is accepted when some territory
uses it as legal tender today or did so within the last ten years (a CRM keeps deals closed in
a currency that has since been replaced, such as BGN before the euro).

    >>> format_money(Decimal("1234.5"), "EUR", "de_DE")
    '1.234,50\xa0€'
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from functools import cache

from babel import Locale, UnknownLocaleError
from babel.core import get_global
from babel.numbers import format_currency, get_currency_name, get_currency_precision

RECENT_YEARS = 10


@cache
def iso_4217() -> frozenset[str]:
    """The ISO 4217 codes some territory uses as legal tender, or did within ``RECENT_YEARS``."""
    today = dt.date.today()
    since = today.replace(year=today.year - RECENT_YEARS, day=min(today.day, 28))
    codes = set()
    for uses in get_global("territory_currencies").values():
        for code, start, end, tender in uses:
            if tender and (start is None or dt.date(*start) <= today) and (end is None or dt.date(*end) > since):
                codes.add(code)
    return frozenset(code for code in codes if len(code) == 3 and code.isalpha() and code.isupper())


def is_currency(code: str) -> bool:
    return code in iso_4217()


def currency_name(code: str, locale: str = "en") -> str:
    return get_currency_name(code, locale=_locale(locale))


def minor_digits(code: str) -> int:
    """Digits after the decimal point the currency uses (JPY 0, EUR 2, BHD 3)."""
    return get_currency_precision(code)


def format_money(amount: Decimal | float | int | None, currency: str, locale: str = "en_US") -> str:
    """``amount`` in ``currency`` the way ``locale`` writes it; an empty string for no amount."""
    if amount is None:
        return ""
    return format_currency(amount, currency, locale=_locale(locale))


def _locale(name: str) -> Locale:
    try:
        return Locale.parse(name.replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        return Locale.parse("en_US")
