"""Supervision: the review queue, triage, supervision sessions, countertransference notes."""

from __future__ import annotations

from django.urls import URLPattern, path  # noqa: F401

urlpatterns: list[URLPattern] = []
