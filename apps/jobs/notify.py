"""The spec's "notify at end" (it sent an SMS): e-mail through Django's mail settings and/or
a webhook, sent from the Q cluster so a slow mail server never holds up the scheduler."""

import ipaddress
import logging
import socket
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.core.mail import send_mail

from apps.jobs.models import Job

log = logging.getLogger(__name__)
WEBHOOK_TIMEOUT_S = 5


def webhook_refusal(url: str) -> str | None:
    """Why the appliance will not call this webhook, or None. A job's owner chooses the URL,
    so it must not reach what listens only on this machine (the embedded store's admin ports
    take requests without credentials) or cloud metadata addresses; other hosts of the
    network are fine. Checked at submission and again before the call (names may move)."""
    if settings.NOTIFY_WEBHOOK_ALLOW_LOCAL:
        return None
    host = urlsplit(url).hostname or ""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except (socket.gaierror, UnicodeError):
        return None  # unknown today; the call fails (and is logged) if it still is
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        ip = getattr(ip, "ipv4_mapped", None) or ip
        if ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast:
            return (
                f"The webhook's host {host} is {ip}, an address of this machine or its link; "
                "webhooks go to other hosts (BML_WEBHOOK_ALLOW_LOCAL=1 allows them)."
            )
    return None


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
    refusal = webhook_refusal(job.notify_webhook) if job.notify_webhook else None
    if refusal:
        log.warning("webhook for %s not called: %s", job.job_id, refusal)
        sent["webhook"] = refusal
    elif job.notify_webhook:
        try:
            response = httpx.post(job.notify_webhook, json=data, timeout=WEBHOOK_TIMEOUT_S)
            sent["webhook"] = response.status_code
        except httpx.HTTPError as exc:  # the job's outcome stands; the failure is logged
            log.warning("webhook for %s failed: %s", job.job_id, exc)
            sent["webhook"] = str(exc)
    return sent
