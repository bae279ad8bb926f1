from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from apps.projects.models import Membership
from apps.projects.selectors import current_project, may_write
from apps.projects.web import report_errors
from apps.storage import selectors, services, streaming
from apps.storage.client import ObjectNotFound
from apps.storage.paths import validate_prefix


@login_required
@require_safe
def bucket_list(request):
    project = current_project(request)
    buckets = selectors.buckets_for(request.user, project)
    return render(
        request,
        "storage/buckets.html",
        {
            "project": project,
            "buckets": buckets,
            "may_write": may_write(request.user, project),
        },
    )


@login_required
@require_POST
def bucket_create(request):
    project = current_project(request)
    with report_errors(request):
        bucket = services.create_bucket(request.user, project, request.POST.get("name", ""))
        messages.success(request, f"Bucket bos://{bucket.name}/ created.")
    return redirect("storage:buckets")


@login_required
@require_POST
def bucket_delete(request, name):
    bucket = selectors.get_bucket(request.user, name)
    with report_errors(request):
        services.delete_bucket(request.user, bucket)
        messages.success(request, f"Bucket {bucket.name} deleted.")
    return redirect("storage:buckets")


def _breadcrumbs(bucket, prefix):
    crumbs = [{"label": bucket.name, "prefix": ""}]
    walked = ""
    for part in filter(None, prefix.split("/")):
        walked += part + "/"
        crumbs.append({"label": part, "prefix": walked})
    return crumbs


@login_required
@require_safe
def browse(request, name):
    bucket = selectors.get_bucket(request.user, name)
    try:
        prefix = validate_prefix(request.GET.get("prefix", ""))
    except ValidationError:
        raise Http404("No such folder.") from None
    entries = services.list_folder(bucket, prefix)
    role = Membership.objects.get(project=bucket.project, user=request.user)
    return render(
        request,
        "storage/browse.html",
        {
            "bucket": bucket,
            "prefix": prefix,
            "entries": entries,
            "crumbs": _breadcrumbs(bucket, prefix),
            "can_write": role.allows("developer"),
            "objects_url": reverse("bucket-objects", kwargs={"name": bucket.name}),
        },
    )


@login_required
@require_safe
def download(request, name, key):
    bucket = selectors.get_bucket(request.user, name)
    return streaming.object_response(bucket, key)


@login_required
@require_POST
def folder_create(request, name):
    bucket = selectors.get_bucket(request.user, name)
    prefix = request.POST.get("prefix", "")
    with report_errors(request):
        key = services.create_folder(request.user, bucket, prefix + request.POST.get("folder", ""))
        messages.success(request, f"Folder {key} created.")
    return redirect(f"{reverse('storage:browse', args=[bucket.name])}?prefix={prefix}")


@login_required
@require_POST
def object_delete(request, name):
    bucket = selectors.get_bucket(request.user, name)
    key = request.POST.get("key", "")
    prefix = request.POST.get("prefix", "")
    with report_errors(request):
        try:
            services.delete_path(request.user, bucket, key)
        except ObjectNotFound:  # deleted meanwhile (another tab, a double click)
            messages.warning(request, f"{key} was not there any more.")
        else:
            messages.success(request, f"Deleted {key}.")
    return redirect(f"{reverse('storage:browse', args=[bucket.name])}?prefix={prefix}")
