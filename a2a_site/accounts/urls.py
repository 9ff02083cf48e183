from django.contrib.auth import views as auth_views
from django.urls import path

import a2a_site.converters  # noqa: F401  (registers <id:…>)
from a2a_site.accounts import views

urlpatterns = [
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/signup/sent/", views.signup_sent, name="signup_sent"),
    path("accounts/signup/confirm/<str:token>/", views.signup_confirm, name="signup_confirm"),
    path("accounts/login/", views.ThrottledLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "accounts/password/change/",
        auth_views.PasswordChangeView.as_view(),
        name="password_change",
    ),
    path(
        "accounts/password/change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path(
        "accounts/password/reset/",
        views.ThrottledPasswordResetView.as_view(),
        name="password_reset",
    ),
    path(
        "accounts/password/reset/sent/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "accounts/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "accounts/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("workspaces/", views.workspace_list, name="workspace_list"),
    path("workspaces/new/", views.workspace_create, name="workspace_create"),
    path("workspace/", views.workspace_settings_current, name="workspace_settings_current"),
    path("workspaces/<uuid:workspace_id>/", views.workspace_settings, name="workspace_settings"),
    path("workspaces/<uuid:workspace_id>/switch/", views.workspace_switch, name="workspace_switch"),
    path("workspaces/<uuid:workspace_id>/rename/", views.workspace_rename, name="workspace_rename"),
    path("workspaces/<uuid:workspace_id>/leave/", views.workspace_leave, name="workspace_leave"),
    path("workspaces/<uuid:workspace_id>/delete/", views.workspace_delete, name="workspace_delete"),
    path(
        "workspaces/<uuid:workspace_id>/members/invite/",
        views.member_invite,
        name="member_invite",
    ),
    path(
        "workspaces/<uuid:workspace_id>/members/<id:membership_id>/role/",
        views.member_role,
        name="member_role",
    ),
    path(
        "workspaces/<uuid:workspace_id>/members/<id:membership_id>/remove/",
        views.member_remove,
        name="member_remove",
    ),
]
