from django.core.management.base import BaseCommand

from apps.datasets.public import seed_public_datasets


class Command(BaseCommand):
    help = "Create the public data sets (iris, Boston housing) if they are missing."

    def handle(self, *args, **options):
        seeded = seed_public_datasets()
        if seeded:
            self.stdout.write(f"Public data sets ready: {', '.join(seeded)}")
