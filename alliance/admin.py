"""The Django admin, for operators: define instruments; responses are read-only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from alliance.models import (
    AlliancePolicy,
    Instrument,
    InstrumentItem,
    MeasureRequest,
    Response,
    SafetyAlert,
    SafetyRule,
    SeverityBand,
)


class InstrumentItemInline(admin.TabularInline[InstrumentItem, Instrument]):
    model = InstrumentItem
    extra = 0
    fields = [
        "position",
        "key",
        "wording",
        "kind",
        "scale_min",
        "scale_max",
        "scale_labels",
        "subscale",
        "scored",
    ]


class SeverityBandInline(admin.TabularInline[SeverityBand, Instrument]):
    model = SeverityBand
    extra = 0


class SafetyRuleInline(admin.TabularInline[SafetyRule, Instrument]):
    model = SafetyRule
    extra = 0

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        # Offer only this instrument's own items, not every item of every instrument.
        if db_field.name == "item":
            object_id = (
                request.resolver_match.kwargs.get("object_id") if request.resolver_match else None
            )
            # On the add page there are no items yet: save the items, then add the rules.
            kwargs["queryset"] = (
                InstrumentItem.objects.filter(instrument_id=object_id)
                if object_id is not None
                else InstrumentItem.objects.none()
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(Instrument)
class InstrumentAdmin(admin.ModelAdmin[Instrument]):
    """A practice holding a licence (ORS, SRS, WAI-SR) enters its instrument here."""

    list_display = ["code", "name", "version", "kind", "practice", "active"]
    list_filter = ["kind", "active", "practice"]
    search_fields = ["code", "name"]
    inlines = [InstrumentItemInline, SeverityBandInline, SafetyRuleInline]


@admin.register(Response)
class ResponseAdmin(admin.ModelAdmin[Response]):
    # Item answers and free text are for the care team and supervisor only, never an
    # operator: the admin shows that a response exists and its score, not what was said.
    list_display = ["instrument", "client", "completed_at", "total", "band", "safety_triggered"]
    list_filter = ["safety_triggered", "collected_via", "instrument"]
    list_select_related = ["instrument", "client"]
    date_hierarchy = "completed_at"
    fields = readonly_fields = (
        "instrument",
        "instrument_version",
        "client",
        "episode",
        "appointment",
        "total",
        "subscales",
        "band",
        "safety_triggered",
        "completed_at",
        "collected_via",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Response | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Response | None = None) -> bool:
        return False


@admin.register(AlliancePolicy)
class AlliancePolicyAdmin(admin.ModelAdmin[AlliancePolicy]):
    list_display = ["practice", "low_alliance_below", "alliance_drop_points", "dropout_after_days"]


class DeliveryLogAdmin(admin.ModelAdmin[Any]):
    """Delivery rows are a log: operators look at states and errors, and change nothing."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(MeasureRequest)
class MeasureRequestAdmin(DeliveryLogAdmin):
    list_display = ["pk", "purpose", "channel", "state", "due_at", "expires_at", "attempts"]
    list_filter = ["state", "purpose", "channel"]
    readonly_fields = [f.name for f in MeasureRequest._meta.fields if f.name != "nonce"]
    exclude = ["nonce"]


@admin.register(SafetyAlert)
class SafetyAlertAdmin(DeliveryLogAdmin):
    list_display = ["flag", "recipient", "role", "state", "sent_at", "attempts"]
    list_filter = ["state", "role"]
