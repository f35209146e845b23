"""Importing another system's history: the admin upload page and its progress."""

from __future__ import annotations

from django.urls import URLPattern, path

from practice import import_views

urlpatterns: list[URLPattern] = [
    path("imports/", import_views.import_upload, name="import_upload"),
    path("imports/<int:pk>/", import_views.import_detail, name="import_detail"),
    path("imports/<int:pk>/status.json", import_views.import_status, name="import_status"),
]
