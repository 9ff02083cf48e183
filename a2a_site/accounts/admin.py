from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from a2a_site.accounts.forms import AdminLoginForm
from a2a_site.accounts.models import Membership, User, Workspace

# The admin's log-in goes through the same throttle; its form says when to try again.
admin.site.login_form = AdminLoginForm


@admin.register(User)
class StudioUserAdmin(UserAdmin):
    pass


class MembershipInline(admin.TabularInline):
    model = Membership
    fk_name = "workspace"
    extra = 0
    autocomplete_fields = ["user"]
    readonly_fields = ["created_at", "invited_by"]


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ["name", "created_at", "created_by"]
    search_fields = ["name"]
    readonly_fields = ["created_at", "created_by"]
    inlines = [MembershipInline]
