from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    name = "apps.datasets"
    label = "datasets"
    verbose_name = "Data sets"

    def ready(self):
        # the conversion algorithm (a job kind of its own) and the job-end receiver
        from apps.datasets import conversion, signals  # noqa: F401
