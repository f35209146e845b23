"""The Django admin, for operators."""

from __future__ import annotations

from django.contrib import admin

from scheduling.models import (
    Appointment,
    AppointmentSeries,
    AppointmentStatusChange,
    CalendarFeed,
    RescheduleRequest,
    TimeOff,
)


class StatusChangeInline(admin.TabularInline[AppointmentStatusChange, Appointment]):
    model = AppointmentStatusChange
    extra = 0
    readonly_fields = ["from_status", "to_status", "changed_by", "via", "reason", "at"]
    can_delete = False


@admin.register(Appointment)
class AppointmentAdmin(admin.ModelAdmin[Appointment]):
    list_display = ["starts_at", "clinician", "client", "kind", "status", "practice"]
    list_filter = ["status", "kind", "practice"]
    date_hierarchy = "starts_at"
    raw_id_fields = ["clinician", "client", "episode", "series", "created_by"]
    list_select_related = ["clinician", "client", "practice"]
    inlines = [StatusChangeInline]


@admin.register(AppointmentSeries)
class AppointmentSeriesAdmin(admin.ModelAdmin[AppointmentSeries]):
    list_display = ["first_start", "clinician", "client", "frequency", "interval", "until", "count"]
    raw_id_fields = ["clinician", "client", "episode", "created_by"]


@admin.register(TimeOff)
class TimeOffAdmin(admin.ModelAdmin[TimeOff]):
    list_display = ["clinician", "starts_at", "ends_at", "reason"]


@admin.register(RescheduleRequest)
class RescheduleRequestAdmin(admin.ModelAdmin[RescheduleRequest]):
    list_display = ["appointment", "created_at", "resolved_at"]
    raw_id_fields = ["appointment"]


@admin.register(CalendarFeed)
class CalendarFeedAdmin(admin.ModelAdmin[CalendarFeed]):
    list_display = ["clinician", "created_at"]
    readonly_fields = ["token"]
