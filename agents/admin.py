from django.contrib import admin

from agents.models import Agent, AgentVersion, LedgerEntry, OllamaNode, Provider


class OllamaNodeInline(admin.TabularInline):
    model = OllamaNode
    extra = 0
    fields = ["name", "base_url", "priority", "max_parallel", "enabled", "status", "last_probe_at"]
    readonly_fields = ["status", "last_probe_at"]


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "workspace", "last_check_ok", "updated_at"]
    list_filter = ["kind"]
    search_fields = ["name", "workspace__name"]
    # The key is write-only everywhere: the admin shows only its last characters.
    exclude = ["credential_ciphertext"]
    readonly_fields = ["credential_hint", "credential_base_url", "last_checked_at"]
    inlines = [OllamaNodeInline]


class AgentVersionInline(admin.TabularInline):
    model = AgentVersion
    extra = 0
    can_delete = False
    readonly_fields = ["number", "config", "note", "created_by", "created_at"]


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = ["name", "workspace", "latest_version", "updated_at"]
    search_fields = ["name", "workspace__name"]
    readonly_fields = ["latest_version"]
    inlines = [AgentVersionInline]


@admin.register(LedgerEntry)
class LedgerEntryAdmin(admin.ModelAdmin):
    list_display = ["started_at", "model", "status", "prompt_tokens", "completion_tokens", "cost"]
    list_filter = ["status", "provider_kind"]
    readonly_fields = [field.name for field in LedgerEntry._meta.fields]
