from django.conf import settings
from django.db import models


class Project(models.Model):
    """A workspace: everything a user owns hangs off one (the spec's "Project Management")."""

    name = models.CharField(max_length=64)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="owned_projects"
    )
    is_default = models.BooleanField(default=False)
    # JupyterLab's terminal in this project's notebooks: off, or the least role that gets it
    # (a terminal is a shell on the appliance's host, so it is not on by default).
    notebook_terminal = models.CharField(
        max_length=16,
        blank=True,
        default="",
        choices=[("", "Off"), ("owner", "Owners"), ("developer", "Developers and owners")],
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-is_default", "name"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="project_name_unique_per_owner"),
            models.UniqueConstraint(
                fields=["owner"],
                condition=models.Q(is_default=True),
                name="one_default_project_per_owner",
            ),
        ]

    def __str__(self):
        return self.name


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    DEVELOPER = "developer", "Developer"
    VIEWER = "viewer", "Viewer"


# Higher rank may do everything a lower rank may.
ROLE_RANK = {Role.VIEWER: 0, Role.DEVELOPER: 1, Role.OWNER: 2}


class Membership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.DEVELOPER)
    created_at = models.DateTimeField(auto_now_add=True)
    # When the member last chose this project in the console: the next sign-in opens it.
    last_chosen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["project", "user__username"]
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="one_membership_per_user")
        ]

    def __str__(self):
        return f"{self.user} in {self.project} ({self.role})"

    def allows(self, needed: str) -> bool:
        return ROLE_RANK[Role(self.role)] >= ROLE_RANK[Role(needed)]
