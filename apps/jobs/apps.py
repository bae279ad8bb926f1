from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "apps.jobs"
    label = "jobs"
    verbose_name = "Job modeling"

    def ready(self):
        from apps.jobs import counting  # noqa: F401  (registers the project list's job counts)
