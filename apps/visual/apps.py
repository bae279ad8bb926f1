from django.apps import AppConfig


class VisualConfig(AppConfig):
    name = "apps.visual"
    label = "visual"
    verbose_name = "Visual modeling"

    def ready(self):
        # the node algorithm (a job kind of its own) and the job-end receiver
        from apps.visual import node_jobs, signals  # noqa: F401
