from django.contrib import admin

from workflows.models import Worker


@admin.register(Worker)
class WorkerAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "hostname", "pid", "last_seen_at", "stopped_at"]
    readonly_fields = [field.name for field in Worker._meta.fields]
