from __future__ import annotations

from django.apps import AppConfig


class AllianceConfig(AppConfig):
    name = "alliance"
