"""The review pages of runs, at the runs' own addresses (runs/<id>/trace/, runs/compare/)."""

from django.urls import path

from monitoring import run_views

urlpatterns = [
    path("runs/compare/", run_views.run_compare, name="run_compare"),
    path("runs/<uuid:run_id>/trace/", run_views.run_trace, name="run_trace"),
]
