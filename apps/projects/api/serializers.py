from django.contrib.auth import get_user_model
from rest_framework import serializers

from apps.projects import counters
from apps.projects.models import Membership, Project, Role


class CountSerializer(serializers.Serializer):
    running = serializers.IntegerField()
    total = serializers.IntegerField()


class ModuleCountsSerializer(serializers.Serializer):
    notebooks = CountSerializer()
    jobs = CountSerializer()
    services = CountSerializer()


class ProjectSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True)
    role = serializers.SerializerMethodField()
    counts = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = ["id", "name", "owner", "is_default", "role", "counts", "created_at"]
        read_only_fields = ["id", "owner", "is_default", "role", "counts", "created_at"]

    def get_role(self, project) -> str:
        roles = self.context.get("roles") or {}
        if project.pk not in roles:  # a project made by this request: its owner's
            user = getattr(self.context.get("request"), "user", None)
            if user is None or not user.is_authenticated:
                return ""
            member = project.memberships.filter(user=user).first()
            return member.role if member else ""
        return roles[project.pk]

    def get_counts(self, project) -> ModuleCountsSerializer:
        counts = self.context.get("counts") or {}
        if project.pk not in counts:  # a project made by this request: zeros
            counts = counters.counts_for([project.pk])
        return counts[project.pk]


class ProjectDeleteSerializer(serializers.Serializer):
    confirm_name = serializers.CharField(help_text="The project's name, typed to confirm.")


class MembershipSerializer(serializers.ModelSerializer):
    username = serializers.SlugRelatedField(
        source="user", slug_field="username", queryset=get_user_model().objects.all()
    )
    role = serializers.ChoiceField(choices=Role.choices)

    class Meta:
        model = Membership
        fields = ["id", "username", "role", "created_at"]
        read_only_fields = ["id", "created_at"]


class RoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)
