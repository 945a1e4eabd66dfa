"""Celery tasks. A task takes ids, fetches rows and calls a service."""

import os
import socket

from celery import shared_task


@shared_task(name="arena.ping")
def ping(token: str) -> dict:
    """Answer with who ran the task: proves the broker/worker wiring end to end."""
    return {"token": token, "pid": os.getpid(), "host": socket.gethostname()}
