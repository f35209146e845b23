"""The admin's caseload pages: board, waitlist and matching, transfers, exports."""

from __future__ import annotations

from django.urls import URLPattern, path  # noqa: F401

urlpatterns: list[URLPattern] = []
