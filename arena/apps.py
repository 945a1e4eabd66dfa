from django.apps import AppConfig


class ArenaConfig(AppConfig):
    name = "arena"
    verbose_name = "Arena"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The reactions to a counted vote; the vote service only announces it (core.hooks).
        from arena.battles import counts
        from arena.core import hooks
        from arena.judging.tasks import judge_after_vote, judge_after_votes
        from arena.leaderboards.tasks import leaderboard_after_vote
        from arena.quality import admin as quality_admin  # noqa: F401 (registers its models)
        from arena.quality.tasks import review_after_vote, review_after_votes

        # First: a refresh it starts already sees the reviews.
        hooks.on_counted_vote(review_after_vote, many=review_after_votes)
        hooks.on_counted_vote(leaderboard_after_vote, many=lambda ids: leaderboard_after_vote())
        hooks.on_counted_vote(judge_after_vote, many=judge_after_votes)
        counts.connect()  # vote counts kept in each vote change's transaction
