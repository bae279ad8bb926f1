from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST, require_safe

from apps.datasets import charts, selectors, services
from apps.datasets.models import AbnormalRule, ColumnType, DatasetStatus, UploadMode
from apps.projects.models import Role
from apps.projects.selectors import current_project, may_write
from apps.projects.services import require_role
from apps.projects.web import report_errors
from bml_site.numbers import as_id

RAW_PAGE_ROWS = 50
SOURCE_FIELDS = ("source", "separator", "header", "encoding", "mode")


@login_required
@require_safe
def dataset_list(request):
    project = current_project(request)
    tab = "public" if request.GET.get("tab") == "public" else "user"
    datasets = (
        selectors.public_datasets()
        if tab == "public"
        else selectors.datasets_for(request.user, project)
    )
    return render(
        request,
        "datasets/list.html",
        {
            "project": project,
            "datasets": datasets,
            "tab": tab,
            "may_write": may_write(request.user, project),
        },
    )


@login_required
def dataset_create(request):
    project = current_project(request)
    if project is not None:  # a viewer is refused the form, not only its submission
        require_role(request.user, project, Role.DEVELOPER)
    form = {"name": "", "storage_path": "", "description": ""}
    if request.method == "POST":
        form = {k: request.POST.get(k, "").strip() for k in form}
        with report_errors(request):
            dataset = services.create_dataset(request.user, project, **form)
            messages.success(request, f"Data set {dataset.name} created; upload data into it.")
            return redirect("datasets:upload", dataset_id=dataset.pk)
    return render(request, "datasets/create.html", {"project": project, "form": form})


def _source_form(data) -> dict:
    return {
        "source": data.get("source", "").strip(),
        "separator": {"tab": "\t", "space": " "}.get(
            data.get("separator", ","), data.get("separator", ",")
        ),
        # Not said (the form's default): guessed from the file's first rows.
        "header": {"1": True, "on": True, "true": True, "0": False, "false": False}.get(
            data.get("header", "")
        ),
        "encoding": data.get("encoding", "utf-8"),
        "mode": data.get("mode", UploadMode.SUPPLEMENT),
    }


def _columns_from_post(data) -> list[dict]:
    # The form's own count of column rows; a number that is not one, or more rows than the
    # form could have sent, reads as no columns (the check then names the field).
    count = as_id(data.get("column_count") or "0")
    if count is None or count > len(data):
        count = 0
    return [
        {"name": data.get(f"col_name_{i}", ""), "type": data.get(f"col_type_{i}", "")}
        for i in range(count)
    ]


@login_required
def dataset_upload(request, dataset_id):
    """The spec's two steps: 1. where the data is and how to read it; 2. abnormal rows and
    the columns' names and types, with the first rows shown, then convert."""
    dataset = selectors.get_dataset(request.user, dataset_id)
    if not selectors.user_may_write(request.user, dataset):
        raise PermissionDenied("You can only read this data set.")
    form = _source_form(request.POST if request.method == "POST" else {})
    if not form["source"]:
        form["source"] = request.GET.get("source", "")
    context = {
        "dataset": dataset,
        "form": form,
        "step": 1,
        "modes": UploadMode.choices,
        "rules": AbnormalRule.choices,
        "types": ColumnType.values,
        "encodings": services.ENCODINGS,
        "separators": services.SEPARATORS,
        "upload_prefix": dataset.storage_path.split("/", 3)[3] + "uploads/",
        "upload_bucket": dataset.storage_path.split("/")[2],
    }
    step = request.POST.get("step")
    if request.method == "POST" and step in ("preview", "confirm"):
        settings = {k: form[k] for k in ("source", "separator", "header", "encoding")}
        with report_errors(request):
            preview = services.preview_source(request.user, dataset, **settings)
            form["header"] = settings["header"] = preview["header"]
            context.update(step=2, preview=preview, abnormal=AbnormalRule.SKIP)
            if step == "confirm":
                columns = _columns_from_post(request.POST)
                context["abnormal"] = request.POST.get("abnormal", AbnormalRule.SKIP)
                for guess, chosen in zip(preview["columns"], columns, strict=False):
                    guess.update(suggested_name=chosen["name"], type=chosen["type"])
                version = services.start_upload(
                    request.user,
                    dataset,
                    **settings,
                    mode=form["mode"],
                    abnormal=context["abnormal"],
                    columns=columns,
                )
                messages.success(
                    request, f"Upload {version.number} is converting; the page follows it."
                )
                return redirect("datasets:detail", dataset_id=dataset.pk)
            if dataset.current_version and form["mode"] == UploadMode.SUPPLEMENT:
                # Supplement keeps the current columns: offer them, not a fresh guess.
                for guess, kept in zip(
                    preview["columns"], dataset.current_version.columns, strict=False
                ):
                    guess.update(suggested_name=kept["name"], type=kept["type"])
    return render(request, "datasets/upload.html", context)


@login_required
@require_safe
def dataset_detail(request, dataset_id):
    dataset = selectors.get_dataset(request.user, dataset_id)
    tab = request.GET.get("tab", "info")
    versions = list(dataset.versions.select_related("job"))
    context = {
        "dataset": dataset,
        "tab": tab,
        "versions": versions,
        "may_write": selectors.user_may_write(request.user, dataset),
        "processing": any(v.status == DatasetStatus.PROCESSING for v in versions),
    }
    version = dataset.current_version
    if tab == "raw" and version:
        try:
            page = max(1, int(request.GET.get("page", 1)))
        except ValueError:
            page = 1
        data = selectors.read_rows(version, (page - 1) * RAW_PAGE_ROWS, RAW_PAGE_ROWS)
        pages = max(1, -(-version.rows // RAW_PAGE_ROWS))
        last_row = data["offset"] + len(data["rows"])
        context.update(data=data, page=min(page, pages), pages=pages, last_row=last_row)
    if tab == "stats" and version:
        context["columns"] = [charts.column_view(stat) for stat in version.stats]
    return render(request, "datasets/detail.html", context)


@login_required
@require_POST
def dataset_delete(request, dataset_id):
    dataset = selectors.get_dataset(request.user, dataset_id)
    with report_errors(request):
        services.delete_dataset(request.user, dataset)
        messages.success(request, f"Data set {dataset.name} deleted.")
        return redirect("datasets:list")
    return redirect("datasets:detail", dataset_id=dataset.pk)
