"""The admin's caseload pages: board, waitlist and matching, transfers, exports."""

from __future__ import annotations

from django.urls import URLPattern, path

from practice import caseload_views as views

urlpatterns: list[URLPattern] = [
    path("caseload/", views.caseload_board, name="caseload_board"),
    path("caseload/board.csv", views.caseload_board_csv, name="caseload_board_csv"),
    path("caseload/waitlist/", views.waitlist, name="waitlist"),
    path("caseload/waitlist/<int:pk>/", views.waitlist_client, name="waitlist_client"),
    path("caseload/waitlist/<int:pk>/assign/", views.client_assign, name="client_assign"),
    path("caseload/episodes/<int:pk>/transfer/", views.episode_transfer, name="episode_transfer"),
    path(
        "caseload/episodes/<int:pk>/transferred/",
        views.episode_transferred,
        name="episode_transferred",
    ),
    path("caseload/exports/appointments/", views.appointments_export, name="appointments_export"),
]
