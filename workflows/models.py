"""Workflows, their published versions, runs with their steps and events, and worker processes.

The database is the truth about a run: its status, its lease, every finished step and every
message. Redis only carries wake-ups and live traffic and may be lost without losing a run.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.conf import settings
from django.db import models

from a2a_site.accounts.models import Workspace


class Workflow(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="workflows")
    name = models.CharField(max_length=120)
    description = models.CharField(max_length=500, blank=True)
    # The draft the builder autosaves; it may be invalid. Only valid graphs are published.
    draft = models.JSONField(default=dict)
    draft_updated_at = models.DateTimeField(auto_now_add=True)
    latest_version = models.PositiveIntegerField(default=0)
    # Offered as a tool on the studio's MCP endpoint (/mcp/) to callers with an API token.
    mcp_offered = models.BooleanField(default=False, db_default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="workflows_name_unique")
        ]

    def __str__(self) -> str:
        return self.name


class WorkflowVersion(models.Model):
    """An immutable, validated graph. Runs pin the version they started with."""

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    graph = models.JSONField()
    # Agent versions the graph's agents had when this was published; runs use these.
    agent_versions = models.JSONField(default=dict)
    note = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(fields=["workflow", "number"], name="workflows_version_unique")
        ]

    def __str__(self) -> str:
        return f"{self.workflow.name} v{self.number}"


class A2AExposure(models.Model):
    """A published workflow served as an A2A agent at /a2a/<workflow id>/ (workflows/a2a)."""

    workflow = models.OneToOneField(Workflow, on_delete=models.CASCADE, related_name="a2a")
    enabled = models.BooleanField(default=False)
    # The card's skills as edited on the workflow's page: [{"id", "name", "description",
    # "tags", "examples"}]; empty means one skill derived from the workflow itself.
    skills = models.JSONField(default=list, blank=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"A2A agent of {self.workflow_id} ({'on' if self.enabled else 'off'})"


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    WAITING = "waiting", "Waiting for a person"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


TERMINAL_STATUSES = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)


class LaunchedVia(models.TextChoices):
    """Which edge started a run; `created_by` says who, when a person did."""

    WEB = "web", "Web"
    API = "api", "API"
    SCHEDULE = "schedule", "Schedule"
    A2A = "a2a", "A2A"
    MCP = "mcp", "MCP"
    COMMAND_LINE = "command_line", "Command line"
    WORKFLOW = "workflow", "Parent workflow"


class RunPriority(models.IntegerChoices):
    LOW = 0, "low"
    NORMAL = 1, "normal"
    HIGH = 2, "high"

    @classmethod
    def parse(cls, value: object) -> RunPriority:
        """ "low", "normal" or "high" (or 0, 1, 2); anything else is a ValueError that says so."""
        for member in cls:
            if value == member.label or (isinstance(value, int) and value == member.value):
                return member
        raise ValueError(f"priority: expected low, normal or high, got {value!r}")


class Run(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="runs")
    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="runs")
    version = models.ForeignKey(WorkflowVersion, on_delete=models.PROTECT, related_name="runs")
    status = models.CharField(
        max_length=12, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True
    )
    reason = models.TextField(blank=True)
    inputs = models.JSONField(default=dict)
    output = models.JSONField(null=True, blank=True)
    variables = models.JSONField(default=dict)
    answers = models.JSONField(default=dict)  # human answers by step key
    # Who gave each answer (by step key), for the transcript: "olivia approved", not "human".
    answered_by = models.JSONField(default=dict, blank=True)
    waiting_request = models.JSONField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    # Lease: the one process executing the run renews it; the reaper resumes expired ones.
    lease_owner = models.CharField(max_length=200, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)  # executions started (1 + resumes)
    # Sub-workflows: a child run is identified by its parent and the parent's step.
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    parent_step_key = models.CharField(max_length=300, blank=True)
    depth = models.PositiveSmallIntegerField(default=0)
    # Served in this order: by the Celery queues (one per priority) and by a deployment's line
    # of calls waiting for capacity (agents/llm/capacity.py).
    priority = models.PositiveSmallIntegerField(
        choices=RunPriority.choices, default=RunPriority.NORMAL, db_default=RunPriority.NORMAL
    )
    # Forks: a run started again from a finished step of another. The steps before that step
    # were copied from it (reused, not run again). `fork_edits` lists where a person set
    # variable values — this fork's step and those its ancestors set earlier — as
    # [{"step": key, "variables": {...}, "before": [reused keys]}] (workflows/services/fork.py).
    forked_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="forks"
    )
    fork_step_key = models.CharField(max_length=300, blank=True, db_default="")
    fork_edits = models.JSONField(default=list, blank=True, db_default=[])
    # Totals, kept current as steps finish (the ledger remains the source of cost truth).
    prompt_tokens = models.PositiveBigIntegerField(default=0)
    completion_tokens = models.PositiveBigIntegerField(default=0)
    cost = models.DecimalField(max_digits=14, decimal_places=8, default=Decimal(0))
    model_calls = models.PositiveIntegerField(default=0)
    steps_completed = models.PositiveIntegerField(default=0)
    last_seq = models.PositiveIntegerField(default=0)
    deadline = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    launched_via = models.CharField(
        max_length=16, choices=LaunchedVia.choices, default=LaunchedVia.WEB
    )
    # The API token of a launch over the API or A2A (None for the pages, or once revoked and
    # deleted): "launched over A2A by <token> (<user>)".
    api_token = models.ForeignKey(
        "api.ApiToken", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The A2A context the caller named (or the run's own id): ListTasks filters by it.
    a2a_context_id = models.CharField(max_length=200, blank=True, db_default="", default="")
    # The messageId of the A2A message that started the run: the same message sent again (a
    # client's retry) answers with this run instead of starting another (unique per caller).
    a2a_message_id = models.CharField(max_length=200, blank=True, db_default="", default="")
    # A pinned run outlives the workspace's retention policy.
    pinned = models.BooleanField(default=False)
    # Plain text of the inputs, output and messages, for the history's search (a GIN index over
    # its tsvector on PostgreSQL). Written at launch and again when the run stops.
    search_text = models.TextField(blank=True, default="")
    # What the run's calls used, for the history's filters once it stops: {"models": [...],
    # "providers": [...], "agents": [...], "errors": [...]} (a GIN index on PostgreSQL).
    facets = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # When the run was last handed to the executors; the reaper re-sends runs queued too long.
    dispatched_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "lease_until"], name="workflows_run_lease"),
            models.Index(fields=["workspace", "created_at"], name="workflows_run_ws_time"),
            # The dashboards' costliest runs: walked by cost, the range checked row by row.
            models.Index(fields=["workspace", "-cost"], name="workflows_run_ws_cost"),
            models.Index(fields=["workflow", "-cost"], name="workflows_run_wf_cost"),
            # The history's "launched from" filter, newest first, and its capped count: on the
            # time index alone both read ~7 rows for each one that matches.
            models.Index(
                fields=["workspace", "launched_via", "created_at", "id"],
                name="workflows_run_hist_via",
            ),
            # The history's "pinned only" (few rows, counted whole) and retention's exclusions.
            models.Index(
                fields=["workspace", "created_at"],
                condition=models.Q(pinned=True),
                name="workflows_run_pinned",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["parent", "parent_step_key"],
                condition=models.Q(parent__isnull=False),
                name="workflows_run_child_unique",
            ),
            models.UniqueConstraint(
                fields=["workflow", "created_by", "a2a_message_id"],
                condition=~models.Q(a2a_message_id=""),
                name="workflows_run_a2a_message_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.workflow.name} run {self.pk}"

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class Step(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="steps")
    key = models.CharField(max_length=300)
    node_id = models.CharField(max_length=64)
    node_type = models.CharField(max_length=32)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    attempt = models.PositiveSmallIntegerField(default=1)
    input = models.JSONField(null=True, blank=True)
    output = models.JSONField(null=True, blank=True)
    branch = models.CharField(max_length=64, blank=True)
    variables = models.JSONField(default=dict)
    error = models.TextField(blank=True)
    # Copied from the run this one was forked from: its result is reused, it was not run here.
    reused = models.BooleanField(default=False, db_default=False)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["started_at"]
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="workflows_step_unique")]

    def __str__(self) -> str:
        return f"{self.key} ({self.status})"


class RunEvent(models.Model):
    """One thing that happened in a run, in order. `seq` is gapless per run and never reused."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveIntegerField()
    step_key = models.CharField(max_length=300, blank=True)
    kind = models.CharField(max_length=32)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["seq"]
        constraints = [
            models.UniqueConstraint(fields=["run", "seq"], name="workflows_event_seq_unique")
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.kind}"


class Worker(models.Model):
    """A process that executes runs: a Celery worker, or the web process in the embedded mode.

    Each process upserts its own row every few seconds; the monitoring pages read them, and the
    run reaper treats a worker whose heartbeat stopped as gone.
    """

    class Kind(models.TextChoices):
        CELERY = "celery", "Celery worker"
        EMBEDDED = "embedded", "Embedded (web process)"
        WEB = "web", "Web process"

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    hostname = models.CharField(max_length=200)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    stopped_at = models.DateTimeField(null=True, blank=True)
    rss_bytes = models.PositiveBigIntegerField(default=0)
    cpu_percent = models.FloatField(default=0.0)
    # Null: not measured (a figure the process could not read, or that it does not have).
    open_files = models.PositiveIntegerField(null=True, blank=True)
    threads = models.PositiveIntegerField(null=True, blank=True)
    runs_in_flight = models.PositiveIntegerField(null=True, blank=True)
    runs_capacity = models.PositiveIntegerField(null=True, blank=True)
    loop_lag_ms = models.FloatField(null=True, blank=True)
    # Bounded rings of recent figures, written by the process itself with each heartbeat:
    # {"hour": [60 one-minute points], "day": [96 quarter-hour points]} (workflows/workers.py).
    history = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-last_seen_at"]

    def __str__(self) -> str:
        return self.name


class RetentionPolicy(models.Model):
    """How long a workspace keeps its runs. Pinned runs are kept whatever the policy says."""

    workspace = models.OneToOneField(
        Workspace, on_delete=models.CASCADE, related_name="run_retention"
    )
    # None keeps every run forever.
    keep_days = models.PositiveIntegerField(null=True, blank=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Retention of {self.workspace_id}: {self.keep_days or 'forever'}"


class RemoteTask(models.Model):
    """The remote A2A task a step of a run is driving, remembered as soon as the remote agent
    names it: a step interrupted mid-call (a worker died) follows that task again instead of
    sending its message a second time."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="remote_tasks")
    step_key = models.CharField(max_length=300)
    host = models.CharField(max_length=255)
    task_id = models.CharField(max_length=200)
    context_id = models.CharField(max_length=200, blank=True)
    state = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "step_key"], name="workflows_remote_task_step")
        ]

    def __str__(self) -> str:
        return f"{self.step_key}: {self.host} task {self.task_id} ({self.state})"


# Webhook subscriptions and their deliveries are this app's tables, kept in their package.
from workflows.webhooks.models import (  # noqa: E402, F401
    WebhookDelivery,
    WebhookSubscription,
)
