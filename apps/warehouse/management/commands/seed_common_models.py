from django.core.management.base import BaseCommand

from apps.warehouse.common import seed_common_models


class Command(BaseCommand):
    help = "Create the common models (iris classifier, digits image classifier) if missing."

    def handle(self, *args, **options):
        seeded = seed_common_models()
        if seeded:
            self.stdout.write(f"Common models ready: {', '.join(seeded)}")
