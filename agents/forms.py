"""Forms for providers, nodes and agents. They parse input; the services decide and save."""

from __future__ import annotations

import json
import shlex
from decimal import Decimal
from typing import Any

from django import forms
from pydantic import ValidationError as PydanticValidationError

from a2a_site.json_input import JsonInputError, json_parse
from agents.config import ModelPolicy
from agents.llm.kinds import ProviderKind
from agents.models import Agent, OllamaNode, Provider, RoutingStrategy
from agents.services.providers import ProviderInput
from agents.services.tool_hosts import host_patterns_parse

WORKDIR_MODES = [("tempdir", "A fresh temporary directory"), ("worktree", "A git worktree")]


class ProviderForm(forms.Form):
    name = forms.CharField(max_length=80)
    base_url = forms.CharField(
        label="Base URL",
        max_length=500,
        required=False,
        widget=forms.URLInput(attrs={"placeholder": "https://…"}),
    )
    api_version = forms.CharField(
        label="API version", max_length=40, required=False, help_text="e.g. 2024-10-21"
    )
    api_key = forms.CharField(
        label="API key",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Stored encrypted and never shown again. Leave empty to keep the stored key.",
    )
    remove_key = forms.BooleanField(label="Remove the stored key", required=False)
    input_price_per_1k = forms.DecimalField(
        label="Input price per 1k tokens (USD)",
        required=False,
        min_value=Decimal(0),
        max_digits=12,
        decimal_places=6,
        help_text="Leave empty to use the public price list; 0 for free local models.",
    )
    output_price_per_1k = forms.DecimalField(
        label="Output price per 1k tokens (USD)",
        required=False,
        min_value=Decimal(0),
        max_digits=12,
        decimal_places=6,
    )
    rpm_limit = forms.IntegerField(label="Requests per minute", required=False, min_value=1)
    tpm_limit = forms.IntegerField(label="Tokens per minute", required=False, min_value=1)
    first_byte_timeout_s = forms.IntegerField(
        label="First byte within (seconds)",
        initial=30,
        required=False,
        min_value=1,
        max_value=3600,
        help_text="How long to wait for the answer to begin. A provider that hangs fails here. "
        "Answers that are not streamed arrive all at once, so for them this is the whole wait.",
    )
    chunk_timeout_s = forms.IntegerField(
        label="Between chunks within (seconds)",
        initial=30,
        required=False,
        min_value=1,
        max_value=3600,
        help_text="Once a streamed answer has begun, the longest silence allowed between two "
        "of its pieces. A provider that stalls mid-answer fails here.",
    )
    timeout_s = forms.IntegerField(
        label="Whole call within (seconds)",
        initial=60,
        min_value=1,
        max_value=3600,
        help_text="The longest one model call may take, from sending the request to the last "
        "word of the answer. A call that times out is retried (up to twice), then fails.",
    )
    routing_strategy = forms.ChoiceField(
        label="Routing across nodes",
        choices=RoutingStrategy.choices,
        initial=RoutingStrategy.LEAST_BUSY,
        required=False,
    )
    model_routing = forms.CharField(
        label="Per-model routing",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "class": "mono"}),
        help_text="Optional, one per line: model = strategy (least_busy, lowest_latency, "
        "round_robin, priority). Other models use the strategy above.",
    )
    command = forms.CharField(
        label="Command",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "class": "mono"}),
        help_text="One command line, split like a shell would but never run by one. Placeholders: "
        "{prompt} {max_turns} {allowed_tools} {model} {system}. The program must be on the "
        "administrator's allow-list (A2A_CLI_AGENT_COMMANDS).",
    )
    workdir_mode = forms.ChoiceField(
        label="Working directory", choices=WORKDIR_MODES, initial="tempdir", required=False
    )
    repository = forms.CharField(
        label="Repository path", required=False, help_text="For the git worktree mode."
    )

    def __init__(self, *args: Any, kind: ProviderKind, provider: Provider | None = None, **kw: Any):
        super().__init__(*args, **kw)
        self.kind = kind
        self.provider = provider
        if kind.value in ("demo", "ollama", "cli"):
            del self.fields["base_url"]
        else:
            self.fields["base_url"].required = kind.base_url_required
            if kind.default_base_url:
                self.fields["base_url"].widget.attrs["placeholder"] = kind.default_base_url
                self.fields["base_url"].help_text = f"Leave empty for {kind.default_base_url}"
        if not kind.api_version_required:
            del self.fields["api_version"]
        if kind.value in ("demo", "cli"):
            del self.fields["api_key"]
        elif not (provider and provider.has_credential):
            self.fields["api_key"].help_text = "Stored encrypted and never shown again." + (
                "" if kind.key_required else " Optional for this kind of provider."
            )
        if not (provider and provider.has_credential):
            del self.fields["remove_key"]
        if kind.value != "ollama":
            del self.fields["routing_strategy"]
            del self.fields["model_routing"]
        if kind.value != "cli":
            for name in ("command", "workdir_mode", "repository"):
                del self.fields[name]
        else:  # a command's time limit is its only one
            del self.fields["first_byte_timeout_s"]
            del self.fields["chunk_timeout_s"]
            self.fields["timeout_s"].label = "Timeout (seconds)"
            self.fields["timeout_s"].help_text = "The longest the command may run for one step."
        if provider and provider.has_credential and "api_key" in self.fields:
            self.fields["api_key"].widget.attrs["placeholder"] = (
                f"Stored: {provider.credential_masked}"
            )
        if self.is_bound and "api_key" in self.fields and str(self.data.get("api_key", "")).strip():
            # The page comes back (a refused save, a test without JavaScript): a key is never
            # written into a page, so the field is empty again, and the user must know it.
            self.fields["api_key"].help_text = (
                "The key you entered was not saved and is never sent back to the page: enter it "
                "again"
                + (
                    ", or leave empty to keep the stored key."
                    if provider and provider.has_credential
                    else "."
                )
            )

    def clean_model_routing(self) -> dict[str, str]:
        strategies = {value for value, _ in RoutingStrategy.choices}
        routing: dict[str, str] = {}
        for number, line in enumerate(self.cleaned_data.get("model_routing", "").splitlines(), 1):
            if not line.strip():
                continue
            model, sep, strategy = (part.strip() for part in line.partition("="))
            if not sep or not model or strategy not in strategies:
                raise forms.ValidationError(
                    f"Line {number}: write “model = strategy”, with a strategy among "
                    f"{', '.join(sorted(strategies))}."
                )
            routing[model] = strategy
        return routing

    def clean_command(self) -> list[str]:
        text = self.cleaned_data.get("command", "").strip()
        if self.kind.value != "cli":
            return []
        if not text:
            raise forms.ValidationError("Enter the command to run, e.g. claude -p {prompt} …")
        try:
            argv = shlex.split(text)
        except ValueError as error:
            raise forms.ValidationError(f"The command cannot be split: {error}.") from None
        if "{prompt}" not in " ".join(argv):
            raise forms.ValidationError("The command must pass the step's prompt: add {prompt}.")
        return argv

    def to_input(self) -> ProviderInput:
        data = self.cleaned_data
        cli_config = None
        if self.kind.value == "cli":
            cli_config = {
                "argv": data["command"],
                "workdir_mode": data.get("workdir_mode") or "tempdir",
                "repository": data.get("repository", "").strip(),
                "timeout_s": data["timeout_s"],
            }
        return ProviderInput(
            kind=self.kind.value,
            name=data["name"],
            base_url=data.get("base_url", ""),
            api_version=data.get("api_version", ""),
            api_key=data.get("api_key") or None,
            remove_key=bool(data.get("remove_key")),
            input_price_per_1k=data.get("input_price_per_1k"),
            output_price_per_1k=data.get("output_price_per_1k"),
            rpm_limit=data.get("rpm_limit"),
            tpm_limit=data.get("tpm_limit"),
            timeout_s=data["timeout_s"],
            first_byte_timeout_s=data.get("first_byte_timeout_s") or 30,
            chunk_timeout_s=data.get("chunk_timeout_s") or 30,
            routing_strategy=data.get("routing_strategy") or RoutingStrategy.LEAST_BUSY,
            model_routing=data.get("model_routing") if self.kind.value == "ollama" else None,
            cli_config=cli_config,
        )

    @classmethod
    def initial_for(cls, provider: Provider) -> dict[str, Any]:
        cli = provider.cli_config or {}
        return {
            "name": provider.name,
            "base_url": "" if provider.kind in ("demo", "ollama", "cli") else provider.base_url,
            "api_version": provider.api_version,
            "input_price_per_1k": provider.input_price_per_1k,
            "output_price_per_1k": provider.output_price_per_1k,
            "rpm_limit": provider.rpm_limit,
            "tpm_limit": provider.tpm_limit,
            "timeout_s": provider.timeout_s,
            "first_byte_timeout_s": provider.first_byte_timeout_s,
            "chunk_timeout_s": provider.chunk_timeout_s,
            "routing_strategy": provider.routing_strategy,
            "model_routing": "\n".join(f"{m} = {s}" for m, s in provider.model_routing.items()),
            "command": shlex.join(cli.get("argv", [])),
            "workdir_mode": cli.get("workdir_mode", "tempdir"),
            "repository": cli.get("repository", ""),
        }


class NodeForm(forms.ModelForm):
    base_url = forms.URLField(
        label="Base URL",
        max_length=500,
        assume_scheme="http",
        widget=forms.URLInput(attrs={"placeholder": "http://10.0.0.5:11434"}),
        help_text="Ollama listens on port 11434 by default.",
    )
    labels_text = forms.CharField(
        label="Labels",
        required=False,
        help_text="Comma-separated, e.g. gpu, fast",
    )

    class Meta:
        model = OllamaNode
        fields = ["name", "base_url", "priority", "max_parallel", "memory_gb", "enabled"]
        labels = {"max_parallel": "Max parallel requests", "memory_gb": "Memory for models (GB)"}

    def clean_labels_text(self) -> list[str]:
        text = self.cleaned_data.get("labels_text", "")
        return [label.strip() for label in text.split(",") if label.strip()][:20]


def _json_field(text: str, *, what: str) -> Any:
    if not text.strip():
        return None
    try:
        return json_parse(text, what=what)
    except JsonInputError as error:
        raise forms.ValidationError(str(error)) from None


class AgentForm(forms.Form):
    """The agent editor. Its fields map onto `AgentConfig`; pydantic has the last word."""

    name = forms.CharField(max_length=80)
    description = forms.CharField(max_length=300, required=False)
    role = forms.CharField(
        max_length=200,
        required=False,
        help_text="e.g. “a meticulous research analyst”. Rendered into the system message.",
    )
    goal = forms.CharField(
        max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    backstory = forms.CharField(
        max_length=4000, required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    system_message = forms.CharField(
        label="Raw system message",
        max_length=20_000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Replaces role, goal and backstory when filled in.",
    )
    provider = forms.ChoiceField(label="Provider")
    model = forms.CharField(
        max_length=200, help_text="The provider's model name, e.g. gpt-4o-mini."
    )
    temperature = forms.FloatField(required=False, min_value=0, max_value=2)
    top_p = forms.FloatField(label="Top p", required=False, min_value=0.0001, max_value=1)
    max_tokens = forms.IntegerField(label="Max tokens", required=False, min_value=1)
    seed = forms.IntegerField(required=False)
    response_schema = forms.CharField(
        label="Structured output (JSON schema)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "class": "mono"}),
        help_text='Optional. A JSON schema with "type": "object" the replies must follow.',
    )
    fallback_provider = forms.ChoiceField(label="Fallback provider", required=False)
    fallback_model = forms.CharField(label="Fallback model", max_length=200, required=False)
    policy_kind = forms.ChoiceField(
        label="Model policy",
        required=False,
        choices=[
            ("", "None: every turn uses the model above"),
            ("rules", "Rules choose the model of each turn"),
            ("classifier", "A classifier model sorts each turn: simple or complex"),
        ],
        help_text="The model above stays the default: the choice falls back to it.",
    )
    policy_rules = forms.CharField(
        label="Policy rules",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "class": "mono"}),
        help_text='JSON list, tried in order, e.g. [{"when": "input_longer_than", "value": 2000, '
        '"use": {"provider": "OpenAI", "model": "gpt-4o"}}]. Conditions: input_longer_than, '
        "input_shorter_than (characters), input_contains (text), variable_equals (with "
        '"variable"), role_is (proposer, member, voter, chair, selector, or the node type). '
        '"provider" is a provider\'s name.',
    )
    classifier_provider = forms.ChoiceField(label="Classifier provider", required=False)
    classifier_model = forms.CharField(
        label="Classifier model",
        max_length=200,
        required=False,
        help_text="A small, cheap model: it answers one word per turn.",
    )
    complex_provider = forms.ChoiceField(label="Provider for complex turns", required=False)
    complex_model = forms.CharField(
        label="Model for complex turns",
        max_length=200,
        required=False,
        help_text="Simple turns use the model above.",
    )
    tools = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Functions it may call: built in, or tools of the workspace's MCP servers.",
    )
    handoff_targets = forms.MultipleChoiceField(
        label="Can hand off to",
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    context_window_tokens = forms.IntegerField(
        label="Context budget (tokens)",
        required=False,
        min_value=256,
        help_text="Keeps the system messages and the most recent messages within this budget.",
    )
    max_tool_iterations = forms.IntegerField(
        label="Max tool iterations", initial=5, min_value=0, max_value=50
    )
    timeout_s = forms.IntegerField(
        label="Turn time limit (seconds)",
        initial=120,
        min_value=1,
        max_value=3600,
        help_text="The longest one turn of this agent may take in a workflow step, all its "
        "model calls, retries and tool calls included.",
    )
    call_timeout_s = forms.IntegerField(
        label="Whole call within (seconds)",
        required=False,
        min_value=1,
        max_value=3600,
        help_text="One model call, from request to last word. Empty: the provider's setting.",
    )
    first_byte_timeout_s = forms.IntegerField(
        label="First byte within (seconds)",
        required=False,
        min_value=1,
        max_value=3600,
        help_text="How long a call may wait for its answer to begin. Empty: the provider's "
        "setting.",
    )
    chunk_timeout_s = forms.IntegerField(
        label="Between chunks within (seconds)",
        required=False,
        min_value=1,
        max_value=3600,
        help_text="The longest silence in a streamed answer. Empty: the provider's setting.",
    )
    stream = forms.BooleanField(
        label="Always stream answers",
        required=False,
        help_text="In runs nobody watches, calls are made whole (faster) once the model has "
        "answered well within its first-byte limit, and each message shows when complete. "
        "Check this to stream every answer anyway.",
    )
    requests_per_minute = forms.IntegerField(required=False, min_value=1)
    tokens_per_minute = forms.IntegerField(required=False, min_value=1)
    cost_budget_usd = forms.FloatField(
        label="Cost budget per run (USD)",
        required=False,
        min_value=0,
        help_text="Checked before and during every call of this agent in a run. A model whose "
        "price is not known is refused while this is set.",
    )
    max_queue_wait_s = forms.IntegerField(
        label="Max wait for capacity (s)",
        required=False,
        min_value=0,
        max_value=3600,
        help_text="How long a call waits in line when its model is at its rate limit, cooling "
        "down or busy, before the fallback model is tried or the step fails. Empty: 120.",
    )
    note = forms.CharField(
        label="Change note", max_length=200, required=False, help_text="Shown in the version list."
    )

    def __init__(
        self,
        *args: Any,
        providers: list[Provider],
        other_agents: list[Agent],
        tool_names: list[tuple[str, str]],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        choices = [
            (
                str(p.pk),
                p.name if p.name == p.kind_info.label else f"{p.name} · {p.kind_info.label}",
            )
            for p in providers
        ]
        self._choices("provider", [("", "Choose a provider…"), *choices])
        self._choices("fallback_provider", [("", "No fallback"), *choices])
        self._choices("classifier_provider", [("", "Choose a provider…"), *choices])
        self._choices("complex_provider", [("", "Choose a provider…"), *choices])
        self.provider_names = {str(p.pk): p.name for p in providers}
        self._choices("tools", tool_names)
        self._choices("handoff_targets", [(str(a.pk), a.name) for a in other_agents])
        if len(providers) == 1 and not self.is_bound and not self.initial.get("provider"):
            self.initial["provider"] = str(providers[0].pk)

    def _choices(self, name: str, choices: list[tuple[str, str]]) -> None:
        field = self.fields[name]
        assert isinstance(field, forms.ChoiceField)
        field.choices = choices

    def clean_response_schema(self) -> Any:
        return _json_field(self.cleaned_data.get("response_schema", ""), what="The schema")

    def clean_policy_rules(self) -> Any:
        rules = _json_field(self.cleaned_data.get("policy_rules", ""), what="The rules")
        if rules is None:
            return []
        if not isinstance(rules, list):
            raise forms.ValidationError("Write a JSON list of rules.")
        by_name = {name.lower(): pk for pk, name in self.provider_names.items()}
        resolved = []
        for index, rule in enumerate(rules, start=1):
            if not isinstance(rule, dict) or not isinstance(rule.get("use"), dict):
                raise forms.ValidationError(
                    f'Rule {index}: write {{"when": …, "value": …, "use": {{"provider": …, '
                    '"model": …}}.'
                )
            use = dict(rule["use"])
            named = str(use.pop("provider", use.pop("provider_id", "")) or "")
            provider_id = named if named in self.provider_names else by_name.get(named.lower())
            if provider_id is None:
                raise forms.ValidationError(
                    f"Rule {index}: no provider named “{named}” in this workspace."
                )
            resolved.append({**rule, "use": {**use, "provider_id": provider_id}})
        return resolved

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if bool(data.get("fallback_provider")) != bool((data.get("fallback_model") or "").strip()):
            self.add_error("fallback_model", "Choose both a fallback provider and its model.")
        kind = data.get("policy_kind")
        if kind and "policy_rules" in data:
            try:
                ModelPolicy.model_validate(self._policy(data))
            except PydanticValidationError as error:
                for item in error.errors():
                    where = [str(part) for part in item["loc"]]
                    if where[:1] == ["rules"] and len(where) > 1:
                        field, prefix = "policy_rules", f"Rule {int(where[1]) + 1}: "
                    elif where[:1] == ["classifier"]:
                        field, prefix = "classifier_model", ""
                    elif where[:1] == ["complex_model"]:
                        field, prefix = "complex_model", ""
                    else:
                        field = "policy_rules" if kind == "rules" else "classifier_model"
                        prefix = ""
                    message = item["msg"].removeprefix("Value error, ")
                    self.add_error(field, prefix + message)
        return data

    def _policy(self, data: dict[str, Any]) -> dict[str, Any]:
        kind = data.get("policy_kind")
        policy: dict[str, Any] = {"kind": kind}
        if kind == "rules":
            policy["rules"] = data.get("policy_rules") or []
        else:
            for name in ("classifier", "complex"):
                provider = data.get(f"{name}_provider")
                model = (data.get(f"{name}_model") or "").strip()
                if provider and model:
                    policy["classifier" if name == "classifier" else "complex_model"] = {
                        "provider_id": provider,
                        "model": model,
                    }
        return policy

    def config_data(self) -> dict[str, Any]:
        data = self.cleaned_data
        fallbacks = []
        if data.get("fallback_provider"):
            fallbacks.append(
                {"provider_id": data["fallback_provider"], "model": data["fallback_model"].strip()}
            )
        config: dict[str, Any] = {
            "role": data.get("role", ""),
            "goal": data.get("goal", ""),
            "backstory": data.get("backstory", ""),
            "system_message": data.get("system_message", ""),
            "model": {"provider_id": data["provider"], "model": data["model"].strip()},
            "fallbacks": fallbacks,
            "tools": list(data.get("tools") or []),
            "handoff_targets": list(data.get("handoff_targets") or []),
            "max_tool_iterations": data["max_tool_iterations"],
            **({"model_policy": self._policy(data)} if data.get("policy_kind") else {}),
            "timeout_s": data["timeout_s"],
            **({"stream": True} if data.get("stream") else {}),
        }
        for key in (
            "temperature",
            "top_p",
            "max_tokens",
            "seed",
            "response_schema",
            "context_window_tokens",
            "requests_per_minute",
            "tokens_per_minute",
            "cost_budget_usd",
            "max_queue_wait_s",
            "call_timeout_s",
            "first_byte_timeout_s",
            "chunk_timeout_s",
        ):
            if data.get(key) is not None:
                config[key] = data[key]
        return config

    @classmethod
    def initial_for(
        cls, agent: Agent, config: dict[str, Any], providers_named: dict[str, str] | None = None
    ) -> dict[str, Any]:
        fallback = (config.get("fallbacks") or [{}])[0]
        schema = config.get("response_schema")
        return {
            **{
                key: value
                for key, value in config.items()
                if key not in ("model", "fallbacks", "model_policy")
            },
            "name": agent.name,
            "description": agent.description,
            "provider": config["model"]["provider_id"],
            "model": config["model"]["model"],
            "fallback_provider": fallback.get("provider_id", ""),
            "fallback_model": fallback.get("model", ""),
            "response_schema": json.dumps(schema, indent=2) if schema else "",
            **_policy_initial(config.get("model_policy"), providers_named),
        }


def _policy_initial(policy: Any, providers_named: dict[str, str] | None) -> dict[str, Any]:
    """The form's policy fields for a stored policy; rules name their providers by name."""
    if not isinstance(policy, dict):
        return {"policy_kind": ""}
    names = providers_named or {}
    rules = []
    for rule in policy.get("rules") or []:
        use = dict(rule.get("use") or {})
        provider_id = str(use.pop("provider_id", ""))
        rules.append({**rule, "use": {"provider": names.get(provider_id, provider_id), **use}})
    classifier = policy.get("classifier") or {}
    complex_model = policy.get("complex_model") or {}
    return {
        "policy_kind": policy.get("kind", ""),
        "policy_rules": json.dumps(rules, indent=2, ensure_ascii=False) if rules else "",
        "classifier_provider": classifier.get("provider_id", ""),
        "classifier_model": classifier.get("model", ""),
        "complex_provider": complex_model.get("provider_id", ""),
        "complex_model": complex_model.get("model", ""),
    }


class AgentQuickForm(forms.Form):
    """The few choices that make a working agent, for the builder's palette; the full editor
    (tools, limits, fallbacks) stays on the agent's page."""

    name = forms.CharField(max_length=80)
    role = forms.CharField(
        max_length=200, required=False, help_text="e.g. “a meticulous research analyst”."
    )
    goal = forms.CharField(
        label="Instructions",
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What it should do and how it should answer.",
    )
    provider = forms.ChoiceField(label="Provider")
    model = forms.CharField(max_length=200, help_text="The provider's model name.")

    def __init__(self, *args: Any, providers: list[Provider], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["provider"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", "Choose a provider…")] + [(str(p.pk), p.name) for p in providers]
        if providers and not self.is_bound:
            first = providers[0]
            self.initial.setdefault("provider", str(first.pk))
            models = list(first.models_available or [])
            self.initial.setdefault("model", models[0] if models else "demo")

    def config_data(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "role": data.get("role", ""),
            "goal": data.get("goal", ""),
            "model": {"provider_id": data["provider"], "model": data["model"].strip()},
        }


class ToolHostPolicyForm(forms.Form):
    public_hosts = forms.BooleanField(
        label="Tools may fetch from any public host",
        required=False,
        help_text="Untick to let tools reach only the hosts listed below.",
    )
    hosts = forms.CharField(
        label="Hosts",
        required=False,
        widget=forms.Textarea(
            attrs={"rows": 6, "placeholder": "wiki.example.com\n*.docs.example.com"}
        ),
        help_text="One per line: a host name, an IP address or a pattern such as "
        "*.example.com. A host at a private or loopback address is reached only if the "
        "administrator also allows it for tools.",
    )

    def clean_hosts(self) -> list[str]:
        return host_patterns_parse(self.cleaned_data["hosts"])
