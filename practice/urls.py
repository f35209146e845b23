from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from practice import bench_views, home, views

urlpatterns = [
    path("", home.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("mfa-required/", views.mfa_required, name="mfa_required"),
    path("invite/<str:token>/", views.invitation_accept, name="invitation_accept"),
    path("members/", views.member_list, name="member_list"),
    path("members/invite/", views.member_invite, name="member_invite"),
    path("members/<int:pk>/", views.member_edit, name="member_edit"),
    path("members/<int:pk>/profile/", views.clinician_profile_edit, name="clinician_profile_edit"),
    path("invitations/<int:pk>/resend/", views.invitation_resend, name="invitation_resend"),
    path("invitations/<int:pk>/revoke/", views.invitation_revoke, name="invitation_revoke"),
    path("clients/", views.client_list, name="client_list"),
    path("clients/new/", views.client_new, name="client_new"),
    path("clients/<int:pk>/", views.client_detail, name="client_detail"),
    path("clients/<int:pk>/edit/", views.client_edit, name="client_edit"),
    path("clients/<int:pk>/invite/", views.client_invite, name="client_invite"),
    path("clients/<int:pk>/episodes/new/", views.episode_open, name="episode_open"),
    path("episodes/<int:pk>/stage/", views.episode_stage, name="episode_stage"),
    path("episodes/<int:pk>/close/", views.episode_close, name="episode_close"),
    path("supervision/pairings/", views.pairing_list, name="pairing_list"),
    path("supervision/pairings/new/", views.pairing_new, name="pairing_new"),
    path("supervision/pairings/<int:pk>/end/", views.pairing_end, name="pairing_end"),
    path("audit/", views.audit_log, name="audit_log"),
    path("", include("scheduling.urls")),
    path("", include("alliance.urls")),
    path("", include("alliance.supervision_urls")),
    path("", include("practice.caseload_urls")),
    path("", include("practice.import_urls")),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
]

# The benchmark's baseline (bench/pages.py): off unless BENCH_TRIVIAL_VIEW=true.
if settings.BENCH_TRIVIAL_VIEW:
    urlpatterns.append(path("bench/trivial/", bench_views.trivial, name="bench_trivial"))
