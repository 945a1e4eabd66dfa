"""Stored snapshots: the latest complete one of a scope, and the code version it records."""

import subprocess
from functools import cache
from importlib.metadata import PackageNotFoundError, version

from django.conf import settings

from arena.models import (
    Category,
    Judge,
    LeaderboardSnapshot,
)


@cache
def code_version() -> str:
    try:
        pkg = version("arena")
    except PackageNotFoundError:  # running from a tree that was never installed
        pkg = "0"
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=settings.BASE_DIR,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{pkg}+{sha}" if sha else pkg


def latest_snapshot(
    *,
    judge: Judge | None = None,
    category: Category | None = None,
    style_control: bool = False,
    with_pictures: bool = False,
) -> LeaderboardSnapshot | None:
    """The newest complete snapshot of a scope; the large pictures only when asked for."""
    scope = LeaderboardSnapshot.Scope.HUMAN if judge is None else LeaderboardSnapshot.Scope.JUDGE
    found = LeaderboardSnapshot.objects.filter(
        scope=scope,
        judge=judge,
        category=category,
        style_control=style_control,
        status=LeaderboardSnapshot.Status.COMPLETE,
    ).select_related("judge", "category")
    if not with_pictures:
        found = found.defer("pictures")
    return found.order_by("-completed_at", "-id").first()
