"""`manage.py tokens create|list|revoke`: personal API tokens from the command line."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from arena.api.tokens import SCOPES, token_create
from arena.core.errors import ArenaError
from arena.models import ApiToken


class Command(BaseCommand):
    help = "Create, list or revoke API tokens (the secret is printed once, at creation)."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["create", "list", "revoke"])
        parser.add_argument("token_id", nargs="?", type=int, help="revoke: the token's id")
        parser.add_argument("--user", help="create/list: the account's username")
        parser.add_argument("--name", help="create: a name to tell the token by")
        parser.add_argument(
            "--scopes", default="read", help=f"create: comma-separated, of {', '.join(SCOPES)}"
        )

    def _user(self, username):
        if not username:
            raise CommandError("--user is required")
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"--user: no account named {username!r}")
        return user

    def handle(self, *args, action, token_id, user, name, scopes, **options):
        if action == "create":
            try:
                created = token_create(
                    user=self._user(user), name=name or "", scopes=scopes.split(",")
                )
            except ArenaError as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(
                f"Token {created.token.pk} ({', '.join(created.token.scopes)}); "
                f"shown once: {created.secret}"
            )
        elif action == "list":
            for token in ApiToken.objects.filter(user=self._user(user)):
                state = "revoked" if token.revoked_at else "active"
                used = token.last_used_at.isoformat() if token.last_used_at else "never"
                self.stdout.write(
                    f"{token.pk}\t{token.prefix}...\t{token.name}\t{','.join(token.scopes)}"
                    f"\t{state}\tlast used {used}"
                )
        else:
            token = ApiToken.objects.filter(pk=token_id).first() if token_id else None
            if token is None:
                raise CommandError("revoke: give the id of an existing token")
            from django.utils import timezone

            if token.revoked_at is None:
                ApiToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())
            self.stdout.write(f"Token {token.pk} revoked.")
