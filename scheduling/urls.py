from __future__ import annotations

from django.urls import path

from scheduling import client_views, noshow_views, short_links, views, workload_views

urlpatterns = [
    path("calendar/", views.calendar_week, name="calendar_week"),
    path("calendar/day/", views.calendar_day, name="calendar_day"),
    path("appointments/new/", views.appointment_new, name="appointment_new"),
    path("appointments/<int:pk>/", views.appointment_detail, name="appointment_detail"),
    path(
        "appointments/<int:pk>/reschedule/",
        views.appointment_reschedule,
        name="appointment_reschedule",
    ),
    path("appointments/<int:pk>/cancel/", views.appointment_cancel, name="appointment_cancel"),
    path(
        "appointments/<int:pk>/attendance/",
        views.appointment_attendance,
        name="appointment_attendance",
    ),
    path("calendar/time-off/", views.time_off, name="time_off"),
    path("calendar/time-off/<int:pk>/delete/", views.time_off_delete, name="time_off_delete"),
    path("calendar/feed/", client_views.calendar_feed_settings, name="calendar_feed_settings"),
    # Feed tokens and short codes are URL-safe base64: anything else (a NUL byte, which
    # PostgreSQL refuses in a query) is no such link, a 404, never a 500.
    path(
        "calendar/feed/<slug:token>.ics", client_views.calendar_feed_ics, name="calendar_feed_ics"
    ),
    path("c/<str:action>/<str:token>/", client_views.client_link, name="client_link"),
    path("portal/appointments/", client_views.portal_appointments, name="portal_appointments"),
    path(
        "portal/appointments/<int:pk>/<str:action>/",
        client_views.portal_appointment_action,
        name="portal_appointment_action",
    ),
    path("s/<slug:code>/", short_links.short_link, name="short_link"),
    path("calendar/no-shows/", noshow_views.noshow_review_list, name="noshow_review_list"),
    path(
        "calendar/no-shows/<int:pk>/",
        noshow_views.noshow_review_action,
        name="noshow_review_action",
    ),
    path("calendar/workload/", workload_views.workload_alerts, name="workload_alerts"),
]
