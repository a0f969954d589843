"""Demo data's vocabulary: name pools, shares of each kind of record, countries and their currencies.

Everything a generated record is drawn from, and nothing about how it is drawn: the shares are
the demo's assumptions about a plausible mid-sized B2B sales team, kept in one place.
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from collections.abc import Callable
from typing import NamedTuple

from faker import Faker

from ..model.catalog import (
    ACTIVITY_STATUSES,
    ACTIVITY_TYPES,
    LIFECYCLE_STAGES,
    ROLES,
)

PER_SCALE = {"users": 10, "companies": 1_000, "contacts": 5_000, "deals": 2_000, "activities": 20_000}
# The fewest of a kind at any scale: the users are an admin, an analyst and a team (its manager
# and a rep), so that every role and the team view have someone to show.
AT_LEAST = {"users": 4}

# The sales staff: one team per this many sellers, each led by a manager who sells too; the
# reps are spread evenly over the teams (10 users: 2 teams of a manager and 3 reps).
SELLERS_PER_TEAM = 4
TEAM_NAMES = ("North", "South", "East", "West", "Central", "Enterprise", "Mid-Market", "Partners")

# Enum values are drawn as positions in the catalog's tuples of them.
ADMIN, MANAGER, REP, ANALYST = (ROLES.index(v) for v in ("admin", "manager", "rep", "analyst"))
LEAD, PROSPECT, CUSTOMER, CHAMPION, INACTIVE = (
    LIFECYCLE_STAGES.index(v) for v in ("lead", "prospect", "customer", "champion", "inactive")
)
CALL, MEETING, TASK = (ACTIVITY_TYPES.index(v) for v in ("call", "meeting", "task"))
PENDING, IN_PROGRESS, COMPLETED, CANCELLED = (
    ACTIVITY_STATUSES.index(v) for v in ("pending", "in_progress", "completed", "cancelled")
)


class Country(NamedTuple):
    code: str
    locale: str  # Faker locale for its cities and streets
    share: float  # of companies
    phone_prefix: str
    tld: str
    legal_suffix: str
    currency: str
    timezones: tuple[str, ...]


COUNTRIES = (
    Country(
        "US",
        "en_US",
        0.50,
        "+1",
        "com",
        "Inc.",
        "USD",
        ("America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles"),
    ),
    Country("GB", "en_GB", 0.13, "+44", "co.uk", "Ltd", "GBP", ("Europe/London",)),
    Country("DE", "de_DE", 0.10, "+49", "de", "GmbH", "EUR", ("Europe/Berlin",)),
    Country("FR", "fr_FR", 0.07, "+33", "fr", "SA", "EUR", ("Europe/Paris",)),
    Country("NL", "nl_NL", 0.05, "+31", "nl", "B.V.", "EUR", ("Europe/Amsterdam",)),
    Country("CA", "en_CA", 0.09, "+1", "ca", "Inc.", "CAD", ("America/Toronto", "America/Vancouver")),
    Country("AU", "en_AU", 0.06, "+61", "com.au", "Pty Ltd", "AUD", ("Australia/Sydney", "Australia/Melbourne")),
)

# Employee bands per company size and the share of companies in each.
SIZE_EMPLOYEES = ((1, 10), (11, 50), (51, 500), (501, 5_000), (5_001, 100_000))
SIZE_SHARES = (0.22, 0.35, 0.28, 0.11, 0.04)
# Typical deal value relative to a medium company's.
SIZE_DEAL_FACTOR = (0.35, 0.6, 1.0, 1.8, 3.0)

INDUSTRIES = (
    "Software",
    "Financial services",
    "Healthcare",
    "Manufacturing",
    "Retail",
    "Logistics",
    "Education",
    "Media",
    "Telecommunications",
    "Energy",
    "Real estate",
    "Professional services",
    "Hospitality",
    "Construction",
    "Biotech",
    "Automotive",
    "Insurance",
    "Public sector",
    "Agriculture",
    "Nonprofit",
)
COMPANY_KINDS = (
    "Analytics",
    "Systems",
    "Labs",
    "Group",
    "Partners",
    "Logistics",
    "Health",
    "Foods",
    "Energy",
    "Media",
    "Software",
    "Consulting",
    "Manufacturing",
    "Capital",
    "Solutions",
    "Networks",
    "Robotics",
    "Design",
    "Retail",
    "Bio",
    "Dynamics",
    "Works",
    "Industries",
    "Ventures",
    "Technologies",
)
DEPARTMENTS = (
    "Sales",
    "Marketing",
    "Operations",
    "Finance",
    "Engineering",
    "Product",
    "IT",
    "Procurement",
    "Customer Success",
    "People",
)
JOB_TITLES = (
    "CEO",
    "CFO",
    "CTO",
    "COO",
    "Founder",
    *(
        pattern.format(d)
        for d in DEPARTMENTS
        for pattern in ("Head of {}", "VP of {}", "{} Director", "{} Manager", "Senior {} Specialist", "{} Analyst")
    ),
)
FREE_MAIL = ("gmail.com", "outlook.com", "yahoo.com", "icloud.com", "proton.me")
LEAD_SOURCES = (
    "website",
    "referral",
    "linkedin",
    "trade_show",
    "webinar",
    "cold_outreach",
    "partner",
    "paid_search",
    "content_download",
)
LEAD_SOURCE_SHARES = (0.24, 0.16, 0.12, 0.08, 0.09, 0.12, 0.07, 0.08, 0.04)
CAMPAIGNS = (
    "Spring webinar series",
    "Summer promotion",
    "Autumn product launch",
    "Year-end push",
    "Partner co-marketing",
    "Retargeting ads",
    "Customer newsletter",
    "Industry summit",
)
DEAL_TYPE_SHARES = {"new_business": 0.55, "existing_business": 0.15, "renewal": 0.20, "upgrade": 0.10}
PRODUCTS = {  # deal titles by deal type
    "new_business": (
        "Platform subscription",
        "Starter plan",
        "Enterprise licence",
        "Pilot project",
        "Implementation package",
        "Analytics add-on",
    ),
    "existing_business": ("Additional seats", "Professional services", "Training package", "Support upgrade"),
    "renewal": ("Annual renewal", "Multi-year renewal", "Support renewal"),
    "upgrade": ("Upgrade to Enterprise", "Premium tier upgrade", "Seat expansion"),
}
WIN_REASONS = (
    "Best product fit",
    "Competitive price",
    "Strong relationship",
    "Feature set",
    "Fast implementation",
    "Executive sponsor",
)
LOSS_REASONS = (
    "Lost to competitor",
    "No budget",
    "No decision",
    "Bad timing",
    "Price too high",
    "Went silent",
    "Built in-house",
)
# Stage changes come from the deals' histories (history.py), one per move.
ACTIVITY_SHARES = {"call": 0.24, "email": 0.36, "meeting": 0.10, "task": 0.12, "note": 0.10, "linkedin_message": 0.08}
SUBJECTS = {
    "call": ("Discovery call", "Check-in call", "Follow-up call", "Pricing call", "Reference call", "Left voicemail"),
    "email": (
        "Introduction",
        "Re: proposal",
        "Re: pricing question",
        "Follow-up",
        "Meeting recap",
        "Contract draft",
        "Case studies",
        "Re: next steps",
    ),
    "meeting": (
        "Product demo",
        "Kick-off meeting",
        "Quarterly business review",
        "Contract review",
        "Onsite workshop",
        "Technical deep dive",
    ),
    "task": (
        "Send proposal",
        "Prepare quote",
        "Follow up on contract",
        "Schedule demo",
        "Update forecast",
        "Send case study",
        "Book onboarding",
    ),
    "note": (
        "Budget confirmed",
        "Decision maker identified",
        "Competitor in play",
        "Meeting notes",
        "Call notes",
        "Procurement process",
    ),
    "linkedin_message": (
        "Connection request",
        "InMail: introduction",
        "Shared article",
        "Congratulations on the new role",
    ),
}

# What one unit of each demo currency is worth in US dollars, about: where the exchange rates'
# random walk starts and what it is pulled back to; and its daily volatility (log-returns).
USD_VALUE = {"USD": 1.0, "EUR": 1.08, "GBP": 1.27, "CAD": 0.74, "AUD": 0.66}
DAILY_VOLATILITY = {"USD": 0.0, "EUR": 0.0045, "GBP": 0.005, "CAD": 0.004, "AUD": 0.006}


def distinct(make: Callable[[], str], n: int) -> tuple[str, ...]:
    """Up to ``n`` distinct values of ``make()``, in first-seen order."""
    seen: dict[str, None] = {}
    for _ in range(50 * n):
        seen.setdefault(make(), None)
        if len(seen) == n:
            break
    return tuple(seen)


def slug(text: str) -> str:
    """Lower-case ASCII letters only, for e-mail addresses and domains."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z]", "", ascii_text.lower()) or "x"


def json_text(text: str) -> str:
    """``text`` escaped for the inside of a JSON string."""
    return json.dumps(text)[1:-1]


class Pools:
    """Small vocabularies from Faker that numpy samples from; each country's lists laid end to end."""

    def __init__(self, seed: int):
        fake = Faker("en_US")
        fake.seed_instance(seed)
        self.first_names = distinct(fake.first_name, 500)
        self.last_names = distinct(fake.last_name, 500)
        self.company_words = distinct(fake.last_name, 300)
        self.deal_notes = distinct(fake.catch_phrase, 200)
        self.activity_notes = distinct(lambda: f"Discussed how to {fake.bs()}.", 300)
        self.cities, self.streets, self.postcodes = [], [], []
        self.city_counts, self.street_counts, self.postcode_counts = [], [], []
        for country in COUNTRIES:
            local = Faker(country.locale)
            local.seed_instance(seed)
            for pool, counts, make in (
                (self.cities, self.city_counts, local.city),
                (self.streets, self.street_counts, local.street_name),
                (self.postcodes, self.postcode_counts, local.postcode),
            ):
                values = distinct(make, 60)
                pool.extend(json_text(v) for v in values)
                counts.append(len(values))


@functools.lru_cache(maxsize=4)
def pools(seed: int) -> Pools:
    """The pools for ``seed``, built once per process (Faker is the slow part of generation)."""
    return Pools(seed)
