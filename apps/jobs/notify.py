"""The spec's "notify at end" (it sent an SMS): e-mail through Django's mail settings and/or
a webhook, sent from the Q cluster so a slow mail server never holds up the scheduler."""

import logging

import httpx
from django.core.mail import send_mail

from apps.jobs.models import Job

log = logging.getLogger(__name__)
WEBHOOK_TIMEOUT_S = 5


def payload(job: Job) -> dict:
    return {
        "job_id": job.job_id,
        "name": job.name,
        "project": job.project.name,
        "status": job.status,
        "reason": job.reason,
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "ended_at": job.ended_at.isoformat() if job.ended_at else None,
        "output": f"{job.output_path.rstrip('/')}/{job.job_id}/",
    }


def notify_job_end(job_pk: int) -> dict:
    job = Job.objects.select_related("project").filter(pk=job_pk).first()
    if job is None:
        return {}
    data = payload(job)
    sent = {}
    if job.notify_email:
        lines = [f"{k}: {v}" for k, v in data.items() if v]
        send_mail(
            f"[BML] job {job.name} {job.status}",
            "\n".join(lines),
            None,
            [job.notify_email],
            fail_silently=False,
        )
        sent["email"] = job.notify_email
    if job.notify_webhook:
        try:
            response = httpx.post(job.notify_webhook, json=data, timeout=WEBHOOK_TIMEOUT_S)
            sent["webhook"] = response.status_code
        except httpx.HTTPError as exc:  # the job's outcome stands; the failure is logged
            log.warning("webhook for %s failed: %s", job.job_id, exc)
            sent["webhook"] = str(exc)
    return sent
