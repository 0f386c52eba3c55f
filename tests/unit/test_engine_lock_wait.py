"""Renewing a shared credential: a token a peer already saved is adopted after one read, without the lock; and the
wait for the lock counts: a token a peer saved and that expired while this process waited for the lock (a peer that
died holding the lock right after saving blocks the others for its lease) is refreshed, not adopted and sent
expired."""

from __future__ import annotations

from mcp_oauth_auth.flow.config import FlowConfig
from mcp_oauth_auth.flow.effects import LockRecord
from mcp_oauth_auth.flow.engine import FlowEngine
from mcp_oauth_auth.flow.fetch import RetryPolicy
from tests.unit.test_engine import SERVER, refreshing_harness, stored


def run_with_a_lock_wait(wait: float) -> FlowEngine:
    clock = [990.0]
    harness = refreshing_harness(stored("at-1"))
    engine = FlowEngine(FlowConfig(server_url=SERVER, retry=RetryPolicy(attempts=1)), clock=lambda: clock[0])
    harness.run(engine.load())
    # While this engine waits for the lock, the holder saves its token, good until 2 000 (to be refreshed from 1 940
    # with the default 60 s skew).
    peer = stored("at-peer", refresh_token="rt-peer", expires_at=2_000.0)
    execute = harness.execute

    def slow_lock(effect: object) -> object:
        if isinstance(effect, LockRecord):
            harness.records[peer.key] = peer
            clock[0] += wait
        return execute(effect)

    harness.execute = slow_lock  # type: ignore[method-assign]
    harness.run(engine.ensure_fresh(now=990.0))
    return engine


def test_a_peer_token_is_adopted_after_a_short_wait() -> None:
    assert run_with_a_lock_wait(0.5).access_token == "at-peer"


def test_a_peer_token_that_went_stale_during_the_wait_is_refreshed() -> None:
    assert run_with_a_lock_wait(1_000.0).access_token == "at-2"


def test_a_token_a_peer_already_saved_is_adopted_without_the_lock() -> None:
    harness = refreshing_harness(stored("at-1"))
    engine = FlowEngine(FlowConfig(server_url=SERVER, retry=RetryPolicy(attempts=1)), clock=lambda: 990.0)
    harness.run(engine.load())
    peer = stored("at-peer", refresh_token="rt-peer", expires_at=2_000.0)
    harness.records[peer.key] = peer
    locks: list[object] = []
    execute = harness.execute

    def watched(effect: object) -> object:
        if isinstance(effect, LockRecord):
            locks.append(effect)
        return execute(effect)

    harness.execute = watched  # type: ignore[method-assign]
    harness.run(engine.ensure_fresh(now=990.0))
    assert engine.access_token == "at-peer"
    assert locks == []  # one read, no queueing for the lock
    assert harness.sent == []


def test_a_peer_token_already_due_is_not_adopted_without_the_lock() -> None:
    harness = refreshing_harness(stored("at-1"))
    engine = FlowEngine(FlowConfig(server_url=SERVER, retry=RetryPolicy(attempts=1)), clock=lambda: 990.0)
    harness.run(engine.load())
    harness.records[stored("at-1").key] = stored("at-peer", refresh_token="rt-peer", expires_at=995.0)
    harness.run(engine.ensure_fresh(now=990.0))
    assert engine.access_token == "at-2"  # refreshed under the lock, with the peer's refresh token
