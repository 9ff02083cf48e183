from django.urls import path

from workflows import views

urlpatterns = [
    path("workflows/", views.workflow_list, name="workflow_list"),
    path("runs/", views.run_list, name="run_list"),
]
