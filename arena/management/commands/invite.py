"""``manage.py invite [--uses N] [--days D] [--note TEXT] [--base-url URL]``: print a new link."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from arena.accounts.services import invite_create


class Command(BaseCommand):
    help = "Create an invite link that lets people create an account."

    def add_arguments(self, parser):
        parser.add_argument("--uses", type=int, default=1, help="accounts it may create (1)")
        parser.add_argument("--days", type=int, default=None, help="lifetime (ARENA_INVITE_DAYS)")
        parser.add_argument("--note", default="", help="who it is for")
        parser.add_argument(
            "--base-url", default="http://127.0.0.1:8000", help="the arena's public address"
        )

    def handle(self, *args, uses, days, note, base_url, **options):
        try:
            invite = invite_create(created_by=None, note=note, max_uses=uses, days=days)
        except ValidationError as exc:
            raise CommandError(
                " ".join(
                    f"--{k.replace('max_', '')}: {' '.join(v)}" for k, v in exc.message_dict.items()
                )
            ) from None
        path = reverse("invite_accept", args=[invite.token])
        self.stdout.write(f"{base_url.rstrip('/')}{path}")
        self.stderr.write(
            f"{uses} use(s), expires {invite.expires_at:%Y-%m-%d %H:%M} UTC", ending="\n"
        )
