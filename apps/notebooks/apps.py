from django.apps import AppConfig


class NotebooksConfig(AppConfig):
    name = "apps.notebooks"
    label = "notebooks"
    verbose_name = "Notebooks"

    def ready(self):
        # project clean-up and counts
        from apps.notebooks import signals  # noqa: F401
