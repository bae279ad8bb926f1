from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "apps.jobs"
    label = "jobs"
    verbose_name = "Job modeling"

    def ready(self):
        from apps.jobs import counting, signals  # noqa: F401  (job counts; clean-up receivers)
