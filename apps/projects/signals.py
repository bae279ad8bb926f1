from django.conf import settings
from django.db.models.signals import post_save
from django.dispatch import receiver


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def give_every_user_a_default_project(sender, instance, created, **kwargs):
    if created:
        from apps.projects.services import ensure_default_project

        ensure_default_project(instance)
