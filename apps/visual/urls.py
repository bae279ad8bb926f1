from django.urls import path

from apps.visual import views

app_name = "visual"

urlpatterns = [
    path("spike/", views.spike, name="spike"),
]
