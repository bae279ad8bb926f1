from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "apps.jobs"
    label = "jobs"
    verbose_name = "Job modeling"

    def ready(self):
        # job counts, clean-up receivers, the machine learning, AutoML and AutoDL algorithms
        from apps.jobs import autodl, automl, counting, machine_learning, signals  # noqa: F401
