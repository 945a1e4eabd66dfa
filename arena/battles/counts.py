"""Incremental vote counts (PairCount, DayCount): what a leaderboard refresh reads.

A vote counts when it is not void and its battle is neither errored nor void. Every change of
that state is applied in the change's own transaction by one aggregate upsert (``INSERT ...
SELECT ... GROUP BY ... ON CONFLICT DO UPDATE SET n = n + excluded.n``): no read-modify-write,
so two votes at once on PostgreSQL cannot lose an increment. Row changes through the ORM
(the vote service, eval-set votes, admin edits, deletes) reach here through the model signals
connected in ``ArenaConfig.ready()``; bulk writers that bypass them (the importers, the demo
loader) call :func:`counts_add` once per batch. ``manage.py leaderboard rebuild-counts``
recomputes everything from the votes.
"""

from django.db import connection, transaction
from django.db.models import Count, F, Lookup, Q, QuerySet
from django.db.models.functions import TruncDate
from django.db.models.signals import post_delete, post_save, pre_delete, pre_save

from arena.models import (
    Battle,
    BattleCategory,
    Category,
    DayCount,
    PairCount,
    Vote,
    VoteReview,
)

OVERALL = 0  # category_key of the overall board
ALL_LINKS = Q()  # every category link of the battles


class _AnyOf(Lookup):
    """``column = ANY(%s)``: a list of ids as one array parameter (PostgreSQL)."""

    lookup_name = "any_of"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(%s::bigint[])", [*params, list(self.rhs)]


def of_ids(rows: QuerySet, field: str, ids) -> QuerySet:
    """``rows`` whose ``field`` (an id column) is one of ``ids``. On PostgreSQL
    one array parameter: for a batch of 5,000 ids, building and parsing ``IN (%s, ...)`` costs
    Django and psycopg far more than the query costs the server."""
    if connection.vendor == "postgresql":
        return rows.filter(_AnyOf(F(field), list(ids)))
    return rows.filter(**{f"{field}__in": ids})


def counted_votes() -> QuerySet:
    """The human votes the boards count: rated (not void, not excluded by the vote-quality
    checks), on battles that did not fail."""
    return Vote.objects.rated().exclude(
        battle__status__in=[Battle.Status.ERRORED, Battle.Status.VOID]
    )


_PAIR = ["category_key", "contestant_a_id", "contestant_b_id", "outcome"]
_DAY = ["category_key", "day"]


def _upsert(table, keys: list[str], select: QuerySet, sign: int, category_key=None) -> None:
    """Add ``sign`` times the rows of ``select`` (its columns: ``k0, k1, ..., n``; ``k0`` left
    out when ``category_key`` is given) to ``table``'s counts at ``keys``."""
    sql, params = select.query.sql_with_params()
    qn = connection.ops.quote_name
    name = qn(table._meta.db_table)
    columns = ", ".join(qn(k) for k in keys)
    picked = [f"s.k{i}" for i in range(len(keys))]
    head = []
    if category_key is not None:
        picked[0], head = "%s", [category_key]
    # "WHERE true": SQLite reads "ON CONFLICT" after a bare SELECT ... FROM as a join clause.
    statement = (
        f"INSERT INTO {name} ({columns}, n) SELECT {', '.join(picked)}, %s * s.n "
        f"FROM ({sql}) s WHERE true "
        f"ON CONFLICT ({columns}) DO UPDATE SET n = {name}.n + excluded.n"
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, [*head, sign, *params])


def _grouped(rows: QuerySet, **keys) -> QuerySet:
    order = sorted(keys)  # k0, k1, ...: a fixed key order, so concurrent upserts lock alike
    return rows.values(**keys).annotate(n=Count("pk")).order_by(*order)


def counts_add(
    *, battle_ids=None, sign: int = 1, overall: bool = True, links: Q | None = ALL_LINKS
) -> None:
    """Add (``sign=-1``: take away) the counted votes of ``battle_ids`` (None: all) as they
    stand now: to the overall counts when ``overall``, and to the counts of the battles'
    category links that match ``links`` (None: no category)."""
    if battle_ids is not None and not battle_ids:
        return
    if overall:
        votes = counted_votes()
        if battle_ids is not None:
            votes = of_ids(votes, "battle_id", battle_ids)
        pair = _grouped(
            votes, k1=F("battle__contestant_a_id"), k2=F("battle__contestant_b_id"), k3=F("outcome")
        )
        _upsert(PairCount, _PAIR, pair, sign, category_key=OVERALL)
        _upsert(DayCount, _DAY, _grouped(votes, k1=TruncDate("created_at")), sign, OVERALL)
    if links is not None:
        rows = BattleCategory.objects.filter(
            links, battle__vote__isnull=False, battle__vote__void_reason=""
        ).exclude(battle__status__in=[Battle.Status.ERRORED, Battle.Status.VOID])
        rows = rows.exclude(battle__vote__review__status=VoteReview.Status.EXCLUDED)
        if battle_ids is not None:
            rows = of_ids(rows, "battle_id", battle_ids)
        pair = _grouped(
            rows,
            k0=F("category_id"),
            k1=F("battle__contestant_a_id"),
            k2=F("battle__contestant_b_id"),
            k3=F("battle__vote__outcome"),
        )
        _upsert(PairCount, _PAIR, pair, sign)
        days = _grouped(rows, k0=F("category_id"), k1=TruncDate("battle__vote__created_at"))
        _upsert(DayCount, _DAY, days, sign)


def counts_rebuild() -> None:
    """Recompute every count from the votes (one transaction)."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # Votes being counted finish first; new ones wait, then add to the rebuilt rows.
            tables = ", ".join(
                connection.ops.quote_name(m._meta.db_table) for m in (PairCount, DayCount)
            )
            with connection.cursor() as cursor:
                cursor.execute(f"LOCK TABLE {tables} IN EXCLUSIVE MODE")
        PairCount.objects.all().delete()
        DayCount.objects.all().delete()
        counts_add()


# Signals: every ORM change of a vote, a battle's status or sides, or a category link. The
# state before a change is taken away (pre_save reads the stored row), the state after it added.


def _vote_before(sender, instance, raw=False, **kwargs):
    if not raw and instance.pk is not None:
        counts_add(
            battle_ids=list(
                Vote.objects.filter(pk=instance.pk).values_list("battle_id", flat=True)
            ),
            sign=-1,
        )


def _vote_after(sender, instance, raw=False, **kwargs):
    if not raw:
        counts_add(battle_ids=[instance.battle_id])


def _battle_fields(instance, update_fields) -> bool:
    """Whether a battle's save can change its counts: a counted field, and a vote to count."""
    watched = {"status", "contestant_a", "contestant_b", "contestant_a_id", "contestant_b_id"}
    if update_fields is not None and not watched & set(update_fields):
        return False
    return Vote.objects.filter(battle_id=instance.pk).exists()  # streaming ones have none


def _battle_before(sender, instance, raw=False, update_fields=None, **kwargs):
    if not raw and instance.pk is not None and _battle_fields(instance, update_fields):
        counts_add(battle_ids=[instance.pk], sign=-1)


def _battle_after(sender, instance, raw=False, created=False, update_fields=None, **kwargs):
    if not raw and not created and _battle_fields(instance, update_fields):
        counts_add(battle_ids=[instance.pk])


def _link_before(sender, instance, raw=False, **kwargs):
    if not raw and instance.pk is not None:
        counts_add(battle_ids=[instance.battle_id], sign=-1, overall=False, links=Q(pk=instance.pk))


def _link_after(sender, instance, raw=False, **kwargs):
    if not raw:
        counts_add(battle_ids=[instance.battle_id], overall=False, links=Q(pk=instance.pk))


def _from(origin, model) -> bool:
    return isinstance(origin, model) or (
        isinstance(origin, QuerySet) and issubclass(origin.model, model)
    )


def _vote_deleted(sender, instance, origin=None, **kwargs):
    # A deleted battle takes its vote and links with it: the vote takes away every count.
    counts_add(battle_ids=[instance.battle_id], sign=-1)


def _link_deleted(sender, instance, origin=None, **kwargs):
    if _from(origin, Battle) or _from(origin, Category):
        return  # the battle's vote takes its counts away; a category's counts go with it
    counts_add(battle_ids=[instance.battle_id], sign=-1, overall=False, links=Q(pk=instance.pk))


def _excluded(status) -> bool:
    return status == VoteReview.Status.EXCLUDED


def _review_before(sender, instance, raw=False, **kwargs):
    """A vote-quality review that excludes or reinstates its vote moves the vote's counts."""
    if raw:
        return
    stored = VoteReview.objects.filter(pk=instance.pk).values_list("status", flat=True).first()
    instance._counts_moved = _excluded(stored) != _excluded(instance.status)
    if instance._counts_moved:
        counts_add(battle_ids=[_battle_of(instance)], sign=-1)


def _review_after(sender, instance, raw=False, **kwargs):
    if not raw and getattr(instance, "_counts_moved", False):
        counts_add(battle_ids=[_battle_of(instance)])


def _review_deleted(sender, instance, origin=None, **kwargs):
    # Deleting an exclusion counts the vote again; a deleted vote took its counts already.
    if _from(origin, VoteReview) and _excluded(instance.status):
        counts_add(battle_ids=[_battle_of(instance)])


def _battle_of(review) -> int:
    return Vote.objects.filter(pk=review.vote_id).values_list("battle_id", flat=True).get()


def reviews_updated(battle_ids: list[int], change) -> None:
    """Run ``change()`` (a bulk ``update()`` of reviews, which sends no signals) with the
    counts of ``battle_ids`` taken away before and added back after it."""
    counts_add(battle_ids=battle_ids, sign=-1)
    change()
    counts_add(battle_ids=battle_ids)


def _category_deleted(sender, instance, **kwargs):
    PairCount.objects.filter(category_key=instance.pk).delete()
    DayCount.objects.filter(category_key=instance.pk).delete()


def connect() -> None:
    """Keep the counts in step with ORM changes (called once from ``ArenaConfig.ready()``)."""
    for signal, receiver, model in [
        (pre_save, _vote_before, Vote),
        (post_save, _vote_after, Vote),
        (pre_save, _battle_before, Battle),
        (post_save, _battle_after, Battle),
        (pre_save, _link_before, BattleCategory),
        (post_save, _link_after, BattleCategory),
        (pre_delete, _vote_deleted, Vote),
        (pre_delete, _link_deleted, BattleCategory),
        (pre_delete, _category_deleted, Category),
        (pre_save, _review_before, VoteReview),
        (post_save, _review_after, VoteReview),
        (post_delete, _review_deleted, VoteReview),
    ]:
        signal.connect(receiver, sender=model, dispatch_uid=f"counts{receiver.__name__}")
