from django.apps import AppConfig


class ServingConfig(AppConfig):
    name = "apps.serving"
    label = "serving"
    verbose_name = "Prediction services"

    def ready(self):
        # project clean-up and counts, the warehouse's "in use" rule
        from apps.serving import signals  # noqa: F401
