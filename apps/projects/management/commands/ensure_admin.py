import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the first administrator if there is none, and print its login once."

    def handle(self, *args, **options):
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            return
        username = os.environ.get("BML_ADMIN_USER", "admin")
        password = os.environ.get("BML_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email="", password=password)
        self.stdout.write(
            "\n" + "=" * 60 + "\n"
            f"First login (shown once): {username} / {password}\n"
            "Forgot it later? .venv/bin/python manage.py changepassword "
            + username
            + "\n"
            + "=" * 60
        )
