"""DPoP (RFC 9449): what one proof costs against its floor, and what DPoP costs per protected request.

    python benchmarks/dpop.py [--rounds N] [--repetitions N] [--requests N]

1. One proof (``DPoPKey.proof``, with ``ath``, as on a protected request) against the floor: one bare signature,
   with ``cryptography``, of bytes as long as the proof's signing input, by the same key; per algorithm (ES256,
   EdDSA, RS256). Target (issue 13): at most 1.5x.
2. Per protected request, in one process, through ``httpx.Client`` with an in-process transport that answers 200:
   a static ``Authorization: Bearer`` header (the floor, a minimal ``Auth``), ``MCPOAuth`` with a bearer token,
   and ``MCPOAuth`` with a DPoP-bound token (a new ES256 proof per request). Reported, not a target: a proof is a
   signature per request by design.

The variants run interleaved (rotating order per repetition); ratios are per repetition, medians with min-max.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

if importlib.util.find_spec("mcp_oauth_auth") is None:  # a clone without `pip install -e .`
    sys.path.insert(1, str(Path(__file__).resolve().parent.parent))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(Path(__file__).resolve().parent.parent), os.environ.get("PYTHONPATH")])
    )

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from fixtures import BODY, REQUEST_HEADERS, SERVER_URL, TOKEN, make_record, minimal_auth
from harness import Series, Table, format_duration_series, format_ratio, ratios, rotated

from mcp_oauth_auth import DPoPKey, MCPOAuth, MemoryTokenStore
from mcp_oauth_auth.flow.dpop import DPoPState

TARGET = 1.5


def _bare_signer(key: DPoPKey) -> Callable[[bytes], bytes]:
    private = key._key  # the floor signs with the very same key object
    if isinstance(private, ec.EllipticCurvePrivateKey):
        ecdsa = ec.ECDSA(hashes.SHA256())
        return lambda data: private.sign(data, ecdsa)
    if isinstance(private, rsa.RSAPrivateKey):
        pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()
        return lambda data: private.sign(data, pkcs1, sha256)
    assert isinstance(private, ed25519.Ed25519PrivateKey)
    return private.sign


def _per_call(function: Callable[[], object], rounds: int) -> float:
    start = time.perf_counter()
    for _ in range(rounds):
        function()
    return (time.perf_counter() - start) / rounds


def proofs(rounds: int, repetitions: int) -> tuple[Table, bool]:
    table = Table(["algorithm", "bare signature", "proof", "proof / signature"])
    met = True
    for algorithm in ("ES256", "EdDSA", "RS256"):
        key = DPoPKey(algorithm=algorithm)
        proof = key.proof("POST", SERVER_URL, time.time(), nonce="n0nce-value", access_token=TOKEN)
        signing_input = proof.rsplit(".", 1)[0].encode("ascii")
        bare = _bare_signer(key)
        count = rounds // 10 if algorithm == "RS256" else rounds
        variants: dict[str, Callable[[], object]] = {
            "bare": lambda bare=bare, signing_input=signing_input: bare(signing_input),
            "proof": lambda key=key: key.proof(
                "POST", SERVER_URL, time.time(), nonce="n0nce-value", access_token=TOKEN
            ),
        }
        times: dict[str, list[float]] = {name: [] for name in variants}
        for repetition in range(repetitions):
            for name in rotated(list(variants), repetition):
                times[name].append(_per_call(variants[name], count))
        ratio = ratios(times["proof"], times["bare"])
        met = met and ratio.median <= TARGET
        table.add(
            algorithm,
            "{} ({})".format(*format_duration_series(Series.of(times["bare"]), "µs")),
            "{} ({})".format(*format_duration_series(Series.of(times["proof"]), "µs")),
            format_ratio(ratio),
        )
    return table, met


def _transport() -> httpx.MockTransport:
    ok = httpx.Response(200, content=b'{"jsonrpc":"2.0","id":1,"result":{}}')

    def handler(request: httpx.Request) -> httpx.Response:
        return ok

    return httpx.MockTransport(handler)


def _dpop_auth() -> MCPOAuth:
    key = DPoPKey()
    record = make_record()
    assert record.tokens is not None
    record = replace(record, tokens=replace(record.tokens, token_type="DPoP"), dpop_key=key.private_pem())
    store = MemoryTokenStore()
    store.save(record)
    return MCPOAuth(SERVER_URL, store=store, authorizer=lambda url: url, dpop=True)


def _bearer_auth() -> MCPOAuth:
    store = MemoryTokenStore()
    store.save(make_record())
    return MCPOAuth(SERVER_URL, store=store, authorizer=lambda url: url)


def per_request(requests: int, repetitions: int) -> Table:
    clients = {
        "static bearer header": httpx.Client(auth=minimal_auth(httpx), transport=_transport()),
        "MCPOAuth, bearer": httpx.Client(auth=_bearer_auth(), transport=_transport()),
        "MCPOAuth, DPoP (ES256)": httpx.Client(auth=_dpop_auth(), transport=_transport()),
    }
    for client in clients.values():  # load the stored credential, imports, first-use caches
        assert client.post(SERVER_URL, content=BODY, headers=REQUEST_HEADERS).status_code == 200
    dpop_client = clients["MCPOAuth, DPoP (ES256)"]
    assert dpop_client.post(SERVER_URL, content=BODY).request.headers["authorization"].startswith("DPoP ")
    assert isinstance(dpop_client.auth._engine.dpop_bound, DPoPState)  # type: ignore[attr-defined]

    def send(client: httpx.Client) -> None:
        for _ in range(requests):
            client.post(SERVER_URL, content=BODY, headers=REQUEST_HEADERS)

    times: dict[str, list[float]] = {name: [] for name in clients}
    for repetition in range(repetitions):
        for name in rotated(list(clients), repetition):
            start = time.perf_counter()
            send(clients[name])
            times[name].append((time.perf_counter() - start) / requests)
    floor = times["static bearer header"]
    table = Table(["variant", "per request", "/ static bearer header", "difference per request"])
    for name, values in times.items():
        differences = [mine - base for mine, base in zip(values, floor, strict=True)]
        table.add(
            name,
            "{} ({})".format(*format_duration_series(Series.of(values), "µs")),
            format_ratio(ratios(values, floor)),
            "{} ({})".format(*format_duration_series(Series.of(differences), "µs")),
        )
    for client in clients.values():
        client.close()
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2_000, help="proofs per repetition (RS256: a tenth)")
    parser.add_argument("--repetitions", type=int, default=7)
    parser.add_argument("--requests", type=int, default=1_000, help="requests per variant and repetition")
    options = parser.parse_args()
    print("# DPoP costs\n")
    print(f"Python {sys.version.split()[0]}; {options.repetitions} repetitions, interleaved.\n")
    print("## One proof against one bare signature of the same bytes (same key, `cryptography`)\n")
    table, met = proofs(options.rounds, options.repetitions)
    print(table.render())
    print(f"\nTarget: proof / signature <= {TARGET}x: {'met' if met else 'NOT met'}.\n")
    print("## Per protected request (httpx.Client, in-process transport)\n")
    print(per_request(options.requests, options.repetitions).render())


if __name__ == "__main__":
    main()
