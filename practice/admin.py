"""The Django admin, for operators (superusers). Practice admins use the practice pages."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from practice.models import (
    AuditEvent,
    Client,
    ClinicianProfile,
    Episode,
    Invitation,
    Membership,
    Practice,
    SupervisionPairing,
    User,
)


@admin.register(User)
class UserAdmin(BaseUserAdmin[User]):
    ordering = ["email"]
    list_display = ["email", "first_name", "last_name", "is_active", "is_superuser"]
    search_fields = ["email", "first_name", "last_name"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Name", {"fields": ("first_name", "last_name")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)


@admin.register(Practice)
class PracticeAdmin(admin.ModelAdmin[Practice]):
    list_display = ["name", "slug", "timezone"]
    prepopulated_fields = {"slug": ("name",)}


class ClinicianProfileInline(admin.StackedInline[ClinicianProfile, Membership]):
    model = ClinicianProfile


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin[Membership]):
    list_display = ["user", "practice", "is_admin", "is_clinician", "is_supervisor", "is_active"]
    list_filter = ["practice", "is_admin", "is_clinician", "is_supervisor", "is_active"]
    search_fields = ["user__email"]
    inlines = [ClinicianProfileInline]
    list_select_related = ["user", "practice"]


@admin.register(Client)
class ClientAdmin(admin.ModelAdmin[Client]):
    list_display = ["last_name", "first_name", "practice", "status"]
    list_filter = ["practice", "status"]
    search_fields = ["last_name", "first_name", "email"]
    raw_id_fields = ["user"]


@admin.register(Episode)
class EpisodeAdmin(admin.ModelAdmin[Episode]):
    list_display = ["client", "clinician", "stage", "opened_on", "closed_on", "close_reason"]
    list_filter = ["stage", "close_reason"]
    raw_id_fields = ["client", "clinician"]
    list_select_related = ["client", "clinician"]


@admin.register(SupervisionPairing)
class SupervisionPairingAdmin(admin.ModelAdmin[SupervisionPairing]):
    list_display = ["supervisor", "supervisee", "started_on", "ended_on", "practice"]
    list_select_related = ["supervisor", "supervisee", "practice"]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin[Invitation]):
    list_display = ["email", "kind", "practice", "created_at", "sent_at", "accepted_at"]
    list_filter = ["kind", "practice"]
    readonly_fields = ["nonce", "sent_at", "accepted_at"]


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin[AuditEvent]):
    list_display = ["at", "actor", "action", "object_type", "object_id", "ip_address"]
    list_filter = ["action", "practice"]
    date_hierarchy = "at"

    # The audit log is append-only, even for operators.
    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: object, obj: object = None) -> bool:
        return False
