from django.contrib import admin

from workflows.models import Run, RunEvent, Step, Worker, Workflow, WorkflowVersion


@admin.register(Worker)
class WorkerAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "hostname", "pid", "last_seen_at", "stopped_at"]
    readonly_fields = [field.name for field in Worker._meta.fields]


class VersionInline(admin.TabularInline):
    model = WorkflowVersion
    extra = 0
    can_delete = False
    fields = ("number", "note", "created_by", "created_at")
    readonly_fields = fields


@admin.register(Workflow)
class WorkflowAdmin(admin.ModelAdmin):
    list_display = ["name", "workspace", "latest_version", "updated_at"]
    search_fields = ["name", "workspace__name"]
    inlines = [VersionInline]


class StepInline(admin.TabularInline):
    model = Step
    extra = 0
    can_delete = False
    fields = ("key", "node_type", "status", "attempt", "started_at", "finished_at", "error")
    readonly_fields = fields


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ["pk", "workflow", "status", "attempts", "cost", "created_at"]
    list_filter = ["status"]
    readonly_fields = [field.name for field in Run._meta.fields]
    inlines = [StepInline]


@admin.register(RunEvent)
class RunEventAdmin(admin.ModelAdmin):
    list_display = ["run", "seq", "kind", "step_key", "created_at"]
    readonly_fields = [field.name for field in RunEvent._meta.fields]
