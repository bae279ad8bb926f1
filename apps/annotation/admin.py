from django.contrib import admin

from apps.annotation.models import Document, Export, Sentence, Span, Tag, Task, Triple, Upload


class TagInline(admin.TabularInline):
    model = Tag
    extra = 0


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "scenario", "review_required", "created_at"]
    list_filter = ["scenario", "review_required"]
    search_fields = ["name"]
    inlines = [TagInline]


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "task", "shortcut"]
    list_filter = ["kind"]


@admin.register(Upload)
class UploadAdmin(admin.ModelAdmin):
    list_display = ["task", "source", "status", "documents", "sentences", "created_at"]
    list_filter = ["status"]


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = ["name", "task", "position", "status", "sentence_count", "updated_at"]
    list_filter = ["status"]
    exclude = ["text"]  # up to megabytes: not an admin form field


@admin.register(Sentence)
class SentenceAdmin(admin.ModelAdmin):
    list_display = ["document", "index", "start", "end", "done"]


@admin.register(Span)
class SpanAdmin(admin.ModelAdmin):
    list_display = ["document", "start", "end", "tag", "created_by"]


@admin.register(Triple)
class TripleAdmin(admin.ModelAdmin):
    list_display = ["document", "subject", "predicate", "object", "created_by"]


@admin.register(Export)
class ExportAdmin(admin.ModelAdmin):
    list_display = ["task", "status", "triples", "seconds", "created_at"]
