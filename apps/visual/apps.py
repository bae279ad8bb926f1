from django.apps import AppConfig


class VisualConfig(AppConfig):
    name = "apps.visual"
    label = "visual"
    verbose_name = "Visual modeling"
