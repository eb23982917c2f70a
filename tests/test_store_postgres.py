"""The store on PostgreSQL: the same migrations and the same guarantees as on SQLite."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from yuqing.alerts.outbox import enqueue
from yuqing.models import Mention, MentionURL, OutboxMessage, SourceState
from yuqing.store import NotMigrated, Store, make_engine, require_migrated

from .postgres_support import fresh_database, postgres_server, why_unavailable


@pytest.fixture(scope="module")
def pg_server():
    """One server for the module (a cluster takes seconds to start)."""
    reason = why_unavailable()
    if reason:
        pytest.skip(reason)
    with postgres_server() as url:
        yield url


@pytest.fixture
def pg_url(pg_server):
    """A database of the test's own: no test sees another's rows."""
    with fresh_database(pg_server) as url:
        yield url


def test_each_test_gets_its_own_database(pg_server):
    """Even against one external server (YUQING_TEST_POSTGRES_URL), two tests never share a database."""
    with fresh_database(pg_server) as first, fresh_database(pg_server) as second:
        assert first != second
        Store.migrated(first).dispose()
        engine = make_engine(second)
        with pytest.raises(NotMigrated):
            require_migrated(engine)  # the first test's schema is not in the second's database
        engine.dispose()


def test_unmigrated_postgres_is_refused_then_migrated(pg_url):
    engine = make_engine(pg_url)
    with pytest.raises(NotMigrated, match="Run: yuqing migrate"):
        require_migrated(engine)
    engine.dispose()
    store = Store.migrated(pg_url)
    require_migrated(store.engine)
    store.dispose()


def test_round_trip_times_json_and_unique_keys(pg_url):
    store = Store.migrated(pg_url)
    when = datetime(2026, 11, 23, 3, 4, 5, tzinfo=UTC)
    with store.session() as sess:
        sess.add(SourceState(id="pg-src", kind="rss", name="源", url="http://127.0.0.1/rss", tier=2))
        mention = Mention(url="http://127.0.0.1/a", source_id="pg-src", title="江城一院", text="正文",
                          fetched_at=when, content_hash="h1", matched_names=["江城一院"], risk_categories=["violence"])
        mention.urls.append(MentionURL(url="http://127.0.0.1/a", url_key="k1", source_id="pg-src", seen_at=when))
        sess.add(mention)
    with store.session() as sess:
        got = sess.scalars(select(Mention)).one()
        assert got.fetched_at == when and got.fetched_at.tzinfo is not None
        assert got.matched_names == ["江城一院"] and got.risk_categories == ["violence"]
    with pytest.raises(IntegrityError), store.session() as sess:
        sess.add(MentionURL(mention_id=got.id, url="http://127.0.0.1/a", url_key="k1", source_id="pg-src",
                            seen_at=when))
    for _ in range(2):
        with store.session() as sess:
            enqueue(sess, when, dedup_key="alert:1:open:duty", channel="email", recipient="duty",
                    address="duty@hospital.example", purpose="alert", subject="s", body="b")
    with store.session() as sess:
        assert len(sess.scalars(select(OutboxMessage)).all()) == 1
    store.dispose()
