"""What the seeded history talks about, who launches it, and how its calls fail."""

from __future__ import annotations

from a2a_site.accounts.models import Role
from agents.models import LedgerEntry

SEED_PEOPLE = (
    ("history-ana", Role.OWNER),
    ("history-ben", Role.EDITOR),
    ("history-chloe", Role.EDITOR),
    ("history-dev", Role.VIEWER),
)

# Provider name, kind, base URL, models with (input, output) USD per 1k tokens or None when the
# price is unknown, and how a cost is priced.
PROVIDERS: tuple[tuple[str, str, str, dict[str, tuple[str, str] | None], str], ...] = (
    (
        "OpenAI",
        "openai",
        "",
        {"gpt-4o-mini": ("0.00015", "0.0006"), "gpt-4o": ("0.0025", "0.01")},
        LedgerEntry.PriceSource.PRICE_LIST,
    ),
    (
        "Anthropic",
        "anthropic",
        "",
        {"claude-3-5-haiku": ("0.0008", "0.004"), "claude-3-5-sonnet": ("0.003", "0.015")},
        LedgerEntry.PriceSource.CONFIGURED,
    ),
    ("Lab Ollama", "ollama", "http://ollama.lab.internal:11434", {"llama3.2": None}, "free"),
    (
        "Partner gateway",
        "openai_compatible",
        "https://gateway.partner.example/v1",
        {"partner-large": None},
        LedgerEntry.PriceSource.UNKNOWN,
    ),
)

TOPICS = (
    "solar panel efficiency",
    "wind farm maintenance",
    "invoice disputes",
    "GDPR data requests",
    "kubernetes upgrades",
    "postgres replication lag",
    "quarterly churn",
    "onboarding emails",
    "warehouse robotics",
    "coffee supply chains",
    "battery recycling",
    "flight delay refunds",
    "phishing awareness",
    "carbon accounting",
    "open source licensing",
    "mortgage rates",
    "hospital staffing",
    "river flood forecasts",
    "ransomware response",
    "school lunch menus",
    "electric bus fleets",
    "customer refund policy",
    "api rate limiting",
    "tax filing deadlines",
    "remote work policy",
    "vaccine cold chain",
    "satellite imagery",
    "password resets",
    "museum ticketing",
    "urban beekeeping",
    "drone deliveries",
    "retail shrinkage",
    "lithium mining",
    "podcast advertising",
    "insurance claims",
    "translation quality",
    "bicycle lanes",
    "cloud cost spikes",
    "employee surveys",
    "data center cooling",
    "wine tariffs",
    "subscription pricing",
    "heat pump installs",
    "legacy cobol migration",
    "volcano monitoring",
    "sourdough starters",
    "chess openings",
    "marathon training",
    "recipe scaling",
    "noise complaints",
    "parking permits",
    "library late fees",
    "semiconductor shortages",
    "shipping container rates",
    "fraud detection",
    "sleep tracking",
)
ASKS = (
    "Summarise what we know about {t}",
    "Draft a short brief on {t}",
    "Compare options for {t}",
    "What are the risks around {t}?",
    "Write a customer reply about {t}",
    "Should we change our approach to {t}?",
    "List the open questions on {t}",
)
SAYS = (
    "The main facts about {t} are well documented; the trend is steady and costs keep falling.",
    "On {t}, the evidence points two ways: short-term savings and longer-term maintenance risk.",
    "I checked three sources on {t}. They agree on the basics but differ on the numbers.",
    "For {t} I would start small, measure for a month, then decide with real figures.",
    "Here is a draft about {t}. Tell me the tone and length you want and I will revise it.",
    "My vote on {t}: adopt, provided the budget review in the next quarter agrees.",
    "Handing {t} over to billing: this is about a charge, not about the product.",
    "The customer asked about {t}; I answered with the policy and offered a follow-up call.",
)
ERRORS = (
    ("rate_limit", 429, "The provider refused the call: rate limit reached (429)."),
    ("timeout", None, "The model did not answer within 60 s."),
    ("provider_error", 503, "The provider answered 503 Service Unavailable."),
    ("context_length", 400, "The conversation is longer than the model's context window."),
    ("content_filter", 400, "The provider's content filter blocked the answer."),
    ("auth", 401, "The provider refused the API key (401)."),
    ("bad_request", 400, "The provider rejected the request as malformed (400)."),
)
