"""The wait for a record's lock counts: a token a peer saved and that expired while this process waited for the
lock (a peer that died holding the lock right after saving blocks the others for its lease) is refreshed, not
adopted and sent expired."""

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
    # A peer refreshed; its token is good until 2 000, to be refreshed from 1 940 (the default 60 s skew).
    peer = stored("at-peer", refresh_token="rt-peer", expires_at=2_000.0)
    harness.records[peer.key] = peer
    execute = harness.execute

    def slow_lock(effect: object) -> object:
        if isinstance(effect, LockRecord):
            clock[0] += wait
        return execute(effect)

    harness.execute = slow_lock  # type: ignore[method-assign]
    harness.run(engine.ensure_fresh(now=990.0))
    return engine


def test_a_peer_token_is_adopted_after_a_short_wait() -> None:
    assert run_with_a_lock_wait(0.5).access_token == "at-peer"


def test_a_peer_token_that_went_stale_during_the_wait_is_refreshed() -> None:
    assert run_with_a_lock_wait(1_000.0).access_token == "at-2"
