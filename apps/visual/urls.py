from django.urls import path

from apps.visual import views

app_name = "visual"

urlpatterns = [
    path("", views.experiment_list, name="list"),
    path("<int:pk>/", views.canvas, name="canvas"),
    path("<int:pk>/runs/<int:run>/", views.run_version, name="run"),
]
