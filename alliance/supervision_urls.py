"""Supervision: the review queue, triage, supervision sessions, countertransference notes."""

from __future__ import annotations

from django.urls import URLPattern, path

from alliance import supervision_views as views

urlpatterns: list[URLPattern] = [
    path("supervision/queue/", views.review_queue, name="review_queue"),
    path(
        "supervision/flags/<int:pk>/acknowledge/",
        views.flag_acknowledge,
        name="supervision_flag_acknowledge",
    ),
    path(
        "supervision/flags/<int:pk>/agenda/",
        views.flag_add_to_agenda,
        name="supervision_flag_agenda",
    ),
    path(
        "supervision/flags/<int:pk>/repair-plan/",
        views.repair_plan_request_new,
        name="supervision_repair_plan_request",
    ),
    path("supervision/flags/<int:pk>/close/", views.flag_close, name="supervision_flag_close"),
    path(
        "supervision/workload/<int:pk>/agenda/",
        views.workload_alert_add_to_agenda,
        name="supervision_workload_agenda",
    ),
    path("supervision/sessions/", views.session_list, name="supervision_session_list"),
    path("supervision/sessions/new/", views.session_new, name="supervision_session_new"),
    path(
        "supervision/sessions/<int:pk>/",
        views.session_detail,
        name="supervision_session_detail",
    ),
    path(
        "supervision/sessions/<int:pk>/record/",
        views.session_record,
        name="supervision_session_record",
    ),
    path(
        "supervision/sessions/<int:pk>/topics/",
        views.session_topic_add,
        name="supervision_topic_add",
    ),
    path(
        "supervision/sessions/<int:pk>/follow-ups/",
        views.follow_up_new,
        name="supervision_follow_up_new",
    ),
    path(
        "supervision/agenda/<int:pk>/decision/",
        views.agenda_item_decide,
        name="supervision_agenda_decide",
    ),
    path(
        "supervision/follow-ups/<int:pk>/done/",
        views.follow_up_done,
        name="supervision_follow_up_done",
    ),
    path("supervision/supervisees/", views.supervisee_overview, name="supervisee_overview"),
    path("supervision/export/", views.flag_export, name="supervision_flag_export"),
    path(
        "supervision/export/flags.<str:fmt>",
        views.flag_export_download,
        name="supervision_flag_export_download",
    ),
    path("repair-plans/<int:pk>/answer/", views.repair_plan_answer, name="repair_plan_answer"),
    path(
        "clients/<int:pk>/countertransference/",
        views.countertransference_list,
        name="countertransference_list",
    ),
    path(
        "countertransference/<int:pk>/",
        views.countertransference_detail,
        name="countertransference_detail",
    ),
]
