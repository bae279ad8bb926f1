from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _seed_packages(sender, **kwargs):
    from apps.billing.services import ensure_catalog

    ensure_catalog()


class BillingConfig(AppConfig):
    name = "apps.billing"
    label = "billing"
    verbose_name = "Resource packages"

    def ready(self):
        post_migrate.connect(_seed_packages, sender=self)
