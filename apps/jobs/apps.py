from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "apps.jobs"
    label = "jobs"
    verbose_name = "Job modeling"

    def ready(self):
        # job counts, clean-up receivers, the machine learning and AutoML algorithms
        from apps.jobs import automl, counting, machine_learning, signals  # noqa: F401
