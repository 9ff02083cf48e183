"""Model providers (with their encrypted credentials), Ollama nodes, agents and the call ledger."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from a2a_site.accounts.models import Workspace
from agents.histogram import FIRST_TOKEN_COLUMNS, LATENCY_COLUMNS
from agents.llm.kinds import KINDS, ProviderKind, provider_kind

PROVIDER_KIND_CHOICES = [(kind.value, kind.label) for kind in KINDS.values()]


class RoutingStrategy(models.TextChoices):
    LEAST_BUSY = "least_busy", "Least busy"
    LOWEST_LATENCY = "lowest_latency", "Lowest latency"
    ROUND_ROBIN = "round_robin", "Round robin"
    PRIORITY = "priority", "Priority"


class Provider(models.Model):
    """A way to reach models: one account of a hosted API, an endpoint, or a fleet of nodes.

    The credential is stored only as a Fernet token (see `agents.crypto`); `credential_base_url`
    is the base URL it was saved with, and the gateway refuses to send it anywhere else.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="providers")
    kind = models.CharField(max_length=32, choices=PROVIDER_KIND_CHOICES)
    name = models.CharField(max_length=80)
    base_url = models.URLField(max_length=500, blank=True)
    api_version = models.CharField(max_length=40, blank=True)
    credential_ciphertext = models.TextField(blank=True, editable=False)
    credential_hint = models.CharField(max_length=8, blank=True, editable=False)
    credential_base_url = models.CharField(max_length=500, blank=True, editable=False)
    input_price_per_1k = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    output_price_per_1k = models.DecimalField(
        max_digits=12, decimal_places=6, null=True, blank=True
    )
    # Prices of single models, USD per 1M tokens, as strings so no float noise creeps in:
    # {"gpt-4o-mini": {"input": "0.15", "output": "0.60", "cached_input": "0.075"}}. They win
    # over the per-1k prices above and the public price list (see agents/prices.py).
    model_prices = models.JSONField(default=dict, blank=True)
    rpm_limit = models.PositiveIntegerField(null=True, blank=True)
    tpm_limit = models.PositiveIntegerField(null=True, blank=True)
    # A model call's limits (see agents/llm/timeouts.py); an agent may override each one.
    timeout_s = models.PositiveIntegerField(default=60)
    first_byte_timeout_s = models.PositiveIntegerField(default=30)
    chunk_timeout_s = models.PositiveIntegerField(default=30)
    routing_strategy = models.CharField(
        max_length=20, choices=RoutingStrategy.choices, default=RoutingStrategy.LEAST_BUSY
    )
    # Per model overrides of `routing_strategy` across nodes: {"llama3.2": "lowest_latency"}.
    model_routing = models.JSONField(default=dict, blank=True)
    # Command-line agents: the argv template, working-directory mode and limits.
    cli_config = models.JSONField(default=dict, blank=True)
    # What the last connection test found.
    models_available = models.JSONField(default=list, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_check_ok = models.BooleanField(null=True)
    last_check_message = models.CharField(max_length=500, blank=True)
    last_check_latency_ms = models.PositiveIntegerField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "name"], name="agents_provider_name_unique"
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def kind_info(self) -> ProviderKind:
        return provider_kind(self.kind)

    @property
    def has_credential(self) -> bool:
        return bool(self.credential_ciphertext)

    @property
    def credential_masked(self) -> str:
        return f"••••{self.credential_hint}" if self.credential_ciphertext else ""


class OllamaNode(models.Model):
    class Status(models.TextChoices):
        UNKNOWN = "unknown", "Not probed yet"
        UP = "up", "Up"
        DOWN = "down", "Down"

    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="nodes")
    name = models.CharField(max_length=80)
    base_url = models.URLField(max_length=500)
    labels = models.JSONField(default=list, blank=True)
    priority = models.IntegerField(default=0, help_text="Higher first under the priority strategy.")
    max_parallel = models.PositiveIntegerField(default=4)
    enabled = models.BooleanField(default=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.UNKNOWN)
    version = models.CharField(max_length=40, blank=True)
    response_ms = models.PositiveIntegerField(null=True, blank=True)
    available_models = models.JSONField(default=list, blank=True)
    loaded_models = models.JSONField(default=list, blank=True)
    # What the node's /api/tags says of each model it has: {name: {size, parameter_size,
    # quantization_level, family}} (the capacity planner reads it).
    models_info = models.JSONField(default=dict, blank=True)
    last_probe_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    # Entered by the operator (Ollama does not report it): the memory models may use, in GB.
    memory_gb = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0.5), MaxValueValidator(100_000)],
        help_text="VRAM of its GPUs, or RAM for a CPU-only node; the capacity planner uses it.",
    )
    # Bounded rings of probe results (agents/services/nodes.py): {"hour": [...], "day": [...]}.
    history = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-priority", "name"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "name"], name="agents_node_name_unique")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.base_url})"


class Agent(models.Model):
    """A reusable team member. Its configuration lives in versions; a save makes a new one."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="agents")
    name = models.CharField(max_length=80)
    description = models.CharField(max_length=300, blank=True)
    latest_version = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="agents_agent_name_unique")
        ]

    def __str__(self) -> str:
        return self.name


class AgentVersion(models.Model):
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    # Validated by `agents.config.AgentConfig` (with its own schema_version) before it is saved.
    config = models.JSONField()
    note = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(fields=["agent", "number"], name="agents_version_unique")
        ]

    def __str__(self) -> str:
        return f"{self.agent.name} v{self.number}"


class LedgerEntry(models.Model):
    """One provider attempt, written before the HTTP call and completed after it.

    Dashboard totals are sums over this table, so no call may go unrecorded: a row still pending
    after its run's lease expired is closed as `unknown` with an estimated cost.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        UNKNOWN = "unknown", "Unknown"

    call_id = models.UUIDField(primary_key=True)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    provider = models.ForeignKey(
        Provider, null=True, blank=True, on_delete=models.SET_NULL, related_name="ledger"
    )
    deployment_id = models.CharField(max_length=200)
    provider_kind = models.CharField(max_length=32)
    model = models.CharField(max_length=200)
    attempt = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    prompt_tokens_estimate = models.PositiveIntegerField(default=0)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    # Of prompt_tokens, those the provider read from its prompt cache (when it says).
    cached_tokens = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=14, decimal_places=8, default=Decimal(0))
    cost_estimated = models.BooleanField(default=False)

    class PriceSource(models.TextChoices):
        CONFIGURED = "configured", "Provider's prices"
        PRICE_LIST = "price_list", "Public price list"
        FREE = "free", "Free (local model)"
        UNKNOWN = "unknown", "Price unknown"

    # How `cost` was priced; "unknown" means the cost is not known (its 0 is not a price), and
    # "" a call that never completed (or made before this was recorded).
    price_source = models.CharField(max_length=12, choices=PriceSource.choices, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    # Streamed calls only: from the request to the first token of the answer.
    first_token_ms = models.PositiveIntegerField(null=True, blank=True)
    error_kind = models.CharField(max_length=32, blank=True)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    # The run it was made for (no foreign key: runs live in the workflows app, which depends on
    # this one); totals per run are sums over this column.
    run_id = models.UUIDField(null=True, blank=True)
    # Where the call came from: step, agent, playground.
    source = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            models.Index(fields=["workspace", "started_at"], name="agents_ledger_ws_time"),
            models.Index(fields=["status", "started_at"], name="agents_ledger_status_time"),
            # A run's calls in order: the trace reads them without a sort.
            models.Index(fields=["run_id", "started_at"], name="agents_ledger_run_time"),
        ]

    def __str__(self) -> str:
        return f"{self.model} {self.status} {self.call_id}"


class CallPayload(models.Model):
    """What one provider attempt of a run sent and received, for the trace's inspector.

    Kept beside the ledger rather than in it: the ledger is summed by every dashboard and must
    stay narrow, while a payload is read one at a time, when someone opens a call. Written with
    the ledger row's completion (agents/payloads.py), redacted and bounded in size; `truncated`
    says that something was cut. A call without a row was made before payloads were kept.
    """

    call_id = models.UUIDField(primary_key=True)
    # Deleting a workspace deletes its payloads with it (the prompts of its runs).
    workspace = models.ForeignKey(
        Workspace, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    # The run it belongs to (as on the ledger row); whatever deletes runs deletes their payloads
    # with `agents.payloads.payloads_delete_for_runs` (no foreign key: runs live in workflows).
    run_id = models.UUIDField(db_index=True)
    request = models.JSONField(default=dict)
    response = models.JSONField(default=dict)
    truncated = models.BooleanField(default=False)
    # The payload's size as it would have been stored whole (JSON bytes).
    size_bytes = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"payload {self.call_id}"


ROLLUP_SUM_FIELDS = (
    "calls",
    "retries",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cost",
    "unpriced_calls",
    "unpriced_tokens",
    "estimated_calls",
    "latency_ms_sum",
    "latency_count",
    "first_token_ms_sum",
    "first_token_count",
)


class LedgerRollup(models.Model):
    """Sums of the ledger's finished calls per hour and per dimension, for the dashboards.

    Kept up to date in the transaction that finishes each call (`agents.rollups`), so no
    dashboard reads the ledger itself; `manage.py check_rollups` recomputes them from the ledger
    and reports any difference. Dimension columns hold ids as text, "" for none, so that the
    unique key (which NULLs would slip through) catches every row.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    hour = models.DateTimeField()  # the call's start, truncated to the hour (UTC)
    provider_id = models.CharField(max_length=36, blank=True)
    deployment_id = models.CharField(max_length=200, blank=True)
    model = models.CharField(max_length=200, blank=True)
    agent_id = models.CharField(max_length=36, blank=True)
    workflow_id = models.CharField(max_length=36, blank=True)
    user_id = models.CharField(max_length=36, blank=True)
    error_kind = models.CharField(max_length=32, blank=True)  # "" for a call that succeeded

    calls = models.BigIntegerField(default=0)
    retries = models.BigIntegerField(default=0)  # attempts after the first of one request
    prompt_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    cached_tokens = models.BigIntegerField(default=0)
    cost = models.DecimalField(max_digits=20, decimal_places=8, default=Decimal(0))
    # Calls (and their tokens) whose price is unknown: their cost above counts nothing for them.
    unpriced_calls = models.BigIntegerField(default=0)
    unpriced_tokens = models.BigIntegerField(default=0)
    estimated_calls = models.BigIntegerField(default=0)
    latency_ms_sum = models.BigIntegerField(default=0)
    latency_count = models.BigIntegerField(default=0)
    first_token_ms_sum = models.BigIntegerField(default=0)
    first_token_count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "workspace",
                    "hour",
                    "provider_id",
                    "deployment_id",
                    "model",
                    "agent_id",
                    "workflow_id",
                    "user_id",
                    "error_kind",
                ],
                name="agents_rollup_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}:00 {self.model} ×{self.calls}"


class LedgerRollupDay(models.Model):
    """The same sums per day: what ranges of weeks and months read, about 7 times fewer rows.

    Kept in the same statement batch as the hourly rows, rebuilt from them, and checked by
    `check_rollups` like them. `day` is midnight UTC; the key is the hourly key otherwise.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    day = models.DateTimeField()
    provider_id = models.CharField(max_length=36, blank=True)
    deployment_id = models.CharField(max_length=200, blank=True)
    model = models.CharField(max_length=200, blank=True)
    agent_id = models.CharField(max_length=36, blank=True)
    workflow_id = models.CharField(max_length=36, blank=True)
    user_id = models.CharField(max_length=36, blank=True)
    error_kind = models.CharField(max_length=32, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "workspace",
                    "day",
                    "provider_id",
                    "deployment_id",
                    "model",
                    "agent_id",
                    "workflow_id",
                    "user_id",
                    "error_kind",
                ],
                name="agents_rollup_day_key",
            )
        ]
        # `/metrics` sums today's rows of every workspace at each scrape (the past days are
        # kept between scrapes): by day alone, not by workspace first.
        indexes = [models.Index(fields=["day"], name="agents_rollup_day_day")]

    def __str__(self) -> str:
        return f"{self.day:%Y-%m-%d} {self.model}"


def _sum_field(name: str) -> models.Field[Any, Any]:
    if name == "cost":
        return models.DecimalField(max_digits=20, decimal_places=8, default=Decimal(0))
    return models.BigIntegerField(default=0)


# The day table's sums are the hourly table's; then one count per latency bucket (see
# agents/histogram.py), and the same for time to first token, on both.
for _name in ROLLUP_SUM_FIELDS:
    LedgerRollupDay.add_to_class(_name, _sum_field(_name))
for _column in (*LATENCY_COLUMNS, *FIRST_TOKEN_COLUMNS):
    LedgerRollup.add_to_class(_column, models.BigIntegerField(default=0))
    LedgerRollupDay.add_to_class(_column, models.BigIntegerField(default=0))


class ToolHostPolicy(models.Model):
    """Which hosts this workspace's tools (such as http_get) may fetch from.

    It can only narrow what the administrator allows: private and loopback addresses are reached
    only for hosts both here and in A2A_TOOL_ALLOWED_HOSTS, and with `public_hosts` off, public
    hosts only when listed here. A workspace without a row: public hosts, no private ones.
    """

    workspace = models.OneToOneField(
        Workspace, on_delete=models.CASCADE, related_name="tool_host_policy"
    )
    public_hosts = models.BooleanField(default=True)
    # Host names, or patterns like "*.example.com", lower case.
    hosts = models.JSONField(default=list, blank=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Tool hosts of {self.workspace_id}"


class GatewayMiddleware(models.Model):
    """A workspace's ordered gateway hooks (agents/llm/middleware.py), applied to every model
    call it makes. Stored as the validated JSON of `Middleware.hooks`; no row means no hooks."""

    workspace = models.OneToOneField(
        Workspace, on_delete=models.CASCADE, related_name="gateway_middleware"
    )
    hooks = models.JSONField(default=list, blank=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Gateway middleware of {self.workspace_id}"


# Budgets sit in their own module; importing them here lets Django find them.
from agents.budgets.models import Budget, BudgetCharge, BudgetPeriod  # noqa: E402, F401


class RemoteAgent(models.Model):
    """A remote A2A agent a workspace calls from its workflows, with the credential it needs.

    Like a provider's key, the credential is stored only as a Fernet token (`agents.crypto`),
    never shown again, and sent only to the origin it was saved with (`credential_origin`): a
    card that moves the agent's endpoint to another host does not receive it.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="remote_agents")
    name = models.CharField(max_length=80)
    url = models.URLField(max_length=500)
    credential_ciphertext = models.TextField(blank=True, editable=False)
    credential_hint = models.CharField(max_length=8, blank=True, editable=False)
    credential_origin = models.CharField(max_length=500, blank=True, editable=False)
    # What the last card fetch found: the card's summary, or why it failed.
    card = models.JSONField(default=dict, blank=True)
    card_fetched_at = models.DateTimeField(null=True, blank=True)
    card_error = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "name"], name="agents_remote_agent_name_unique"
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def has_credential(self) -> bool:
        return bool(self.credential_ciphertext)

    @property
    def credential_masked(self) -> str:
        return f"••••{self.credential_hint}" if self.credential_ciphertext else ""


# MCP servers sit in their own package; importing them here lets Django find them.
from agents.mcp.models import McpServer, McpToolCall  # noqa: E402, F401
