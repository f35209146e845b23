from __future__ import annotations

from django.urls import path

from alliance import client_views, views

urlpatterns = [
    path("clients/<int:pk>/timeline/", views.client_timeline, name="client_timeline"),
    path("responses/<int:pk>/", views.response_detail, name="response_detail"),
    path("flags/", views.flag_list, name="flag_list"),
    path("flags/<int:pk>/", views.flag_detail, name="flag_detail"),
    path("flags/<int:pk>/status/", views.flag_transition, name="flag_transition"),
    path("flags/<int:pk>/repairs/new/", views.repair_action_new, name="repair_action_new"),
    path("episodes/<int:pk>/ruptures/new/", views.rupture_log_new, name="rupture_log_new"),
    path("episodes/<int:pk>/outreach/", views.outreach, name="outreach"),
    path("episodes/<int:pk>/ending/plan/", views.ending_plan, name="ending_plan"),
    path(
        "episodes/<int:pk>/ending/termination/", views.termination_offer, name="termination_offer"
    ),
    path("episodes/<int:pk>/ending/close/", views.ending_close, name="ending_close"),
    path("episodes/<int:pk>/measures/", views.measurement_plan_edit, name="measurement_plan_edit"),
    path("appointments/<int:pk>/measure/", views.in_session_start, name="in_session_start"),
    path("appointments/<int:pk>/measure/done/", views.in_session_done, name="in_session_done"),
    path(
        "appointments/<int:pk>/measure/<int:instrument>/",
        views.in_session_form,
        name="in_session_form",
    ),
    path("settings/alliance/", views.alliance_policy_edit, name="alliance_policy_edit"),
    path("m/<str:token>/", client_views.measure_link, name="measure_link"),
    path("portal/questionnaires/", client_views.portal_measures, name="portal_measures"),
]
