from django.urls import path

from monitoring.budgets import views

urlpatterns = [
    path("", views.budget_list, name="budget_list"),
    path("new/", views.budget_create, name="budget_create"),
    path("<uuid:budget_id>/", views.budget_detail, name="budget_detail"),
    path("<uuid:budget_id>/edit/", views.budget_edit, name="budget_edit"),
    path("<uuid:budget_id>/delete/", views.budget_delete, name="budget_delete"),
]
