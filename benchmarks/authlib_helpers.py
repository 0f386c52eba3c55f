"""joserfc and Authlib beside the hand-written code they replaced: one ``private_key_jwt`` assertion signed (ES256,
RS256), one PKCE S256 challenge computed; warm in this process, and the first call in fresh interpreters (where
the library's import is paid).

    python benchmarks/authlib_helpers.py [--rounds N] [--repetitions N] [--cold-runs N]

Neither is on the per-request path: an assertion is signed per request of a ``private_key_jwt`` client to the
token, device authorization or revocation endpoint, a challenge per authorization request. The hand-written
baselines are the code as it stood before (a JWS with ``cryptography``, hashlib + base64). Ratios are library /
hand-written, computed per repetition with the variants interleaved, as in the other scenarios; medians with
min-max over repetitions.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import importlib.util
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if importlib.util.find_spec("mcp_oauth_auth") is None:  # a clone without `pip install -e .`
    sys.path.insert(1, str(Path(__file__).resolve().parent.parent))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(Path(__file__).resolve().parent.parent), os.environ.get("PYTHONPATH")])
    )

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from harness import Series, Table, format_duration_series, format_ratio, ratios, rotated

from mcp_oauth_auth.flow.authorization import code_challenge_s256
from mcp_oauth_auth.flow.private_key_jwt import PrivateKeyJWT

AUDIENCE = "https://as.example"
CLIENT_ID = "svc"


# -- the hand-written code as it was (the baselines) ------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _json_segment(document: dict[str, Any]) -> str:
    return _b64url(json.dumps(document, separators=(",", ":"), sort_keys=True).encode("utf-8"))


def hand_assertion(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    issued_at = int(time.time())
    header = {"alg": "ES256" if isinstance(key, ec.EllipticCurvePrivateKey) else "RS256", "typ": "JWT", "kid": "k"}
    claims = {
        "iss": CLIENT_ID,
        "sub": CLIENT_ID,
        "aud": AUDIENCE,
        "iat": issued_at,
        "exp": issued_at + 60,
        "jti": secrets.token_urlsafe(32),
    }
    signing_input = f"{_json_segment(header)}.{_json_segment(claims)}".encode("ascii")
    if isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    else:
        signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input.decode('ascii')}.{_b64url(signature)}"


def hand_challenge(code_verifier: str) -> str:
    return _b64url(hashlib.sha256(code_verifier.encode("ascii")).digest())


# -- warm: per call, in this process ----------------------------------------------------------------------------


def _keys() -> dict[str, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey]:
    return {"ES256": ec.generate_private_key(ec.SECP256R1()), "RS256": rsa.generate_private_key(65537, 2048)}


def _operations() -> dict[str, tuple[Callable[[], object], Callable[[], object]]]:
    """Per operation: (hand-written, library)."""
    operations: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {}
    for alg, key in _keys().items():
        signer = PrivateKeyJWT(key, key_id="k")
        operations[f"{alg} assertion"] = (
            lambda key=key: hand_assertion(key),
            lambda signer=signer: signer.assertion(CLIENT_ID, AUDIENCE),
        )
    verifier = secrets.token_urlsafe(64)
    operations["PKCE S256 challenge"] = (lambda: hand_challenge(verifier), lambda: code_challenge_s256(verifier))
    return operations


def _per_call(function: Callable[[], object], rounds: int) -> float:
    start = time.perf_counter()
    for _ in range(rounds):
        function()
    return (time.perf_counter() - start) / rounds


def warm(rounds: dict[str, int], repetitions: int) -> Table:
    operations = _operations()
    for hand, library in operations.values():  # imports and first-use caches
        hand()
        library()
    times: dict[tuple[str, int], list[float]] = {(name, side): [] for name in operations for side in (0, 1)}
    for repetition in range(repetitions):
        for name in rotated(list(operations), repetition):
            for side in rotated([0, 1], repetition):
                times[name, side].append(_per_call(operations[name][side], rounds[name]))
    table = Table(["operation", "hand-written", "library", "library / hand-written"])
    for name in operations:
        hand_times, library_times = Series.of(times[name, 0]), Series.of(times[name, 1])
        table.add(
            name,
            "{} ({})".format(*format_duration_series(hand_times, "µs")),
            "{} ({})".format(*format_duration_series(library_times, "µs")),
            format_ratio(ratios(times[name, 1], times[name, 0])),
        )
    return table


# -- cold: the first call in a fresh interpreter, imports included ----------------------------------------------

_CHILD_CASES = ("assertion hand", "assertion joserfc", "challenge hand", "challenge authlib")


def _child(case: str) -> None:
    """Load an EC key as a program would, then time the first call of ``case``; print seconds and new modules."""
    key = ec.generate_private_key(ec.SECP256R1())
    signer = PrivateKeyJWT(key, key_id="k")
    before = set(sys.modules)
    start = time.perf_counter()
    if case == "assertion hand":
        hand_assertion(key)
    elif case == "assertion joserfc":
        signer.assertion(CLIENT_ID, AUDIENCE)
    elif case == "challenge hand":
        hand_challenge(secrets.token_urlsafe(64))
    else:
        code_challenge_s256(secrets.token_urlsafe(64))
    elapsed = time.perf_counter() - start
    print(json.dumps({"seconds": elapsed, "modules": len(set(sys.modules) - before)}))


def cold(runs: int) -> Table:
    results: dict[str, list[dict[str, float]]] = {case: [] for case in _CHILD_CASES}
    env = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    for run in range(runs + 1):  # the first round, untimed, writes the .pyc files
        for case in rotated(list(_CHILD_CASES), run):
            completed = subprocess.run(
                [sys.executable, __file__, "--child", case], env=env, capture_output=True, text=True, check=True
            )
            if run:
                results[case].append(json.loads(completed.stdout.strip().splitlines()[-1]))
    table = Table(["first call", "time", "modules imported", "library / hand-written"])
    for case in _CHILD_CASES:
        seconds = [result["seconds"] for result in results[case]]
        modules = sorted({int(result["modules"]) for result in results[case]})
        baseline = [result["seconds"] for result in results[case.split()[0] + " hand"]]
        table.add(
            case,
            "{} ({})".format(*format_duration_series(Series.of(seconds), "ms")),
            "\u2013".join(map(str, modules)),
            "" if case.endswith("hand") else format_ratio(ratios(seconds, baseline)),
        )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2_000, help="calls per repetition (assertions: a tenth)")
    parser.add_argument("--repetitions", type=int, default=7)
    parser.add_argument("--cold-runs", type=int, default=7)
    parser.add_argument("--child", choices=_CHILD_CASES, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        _child(options.child)
        return
    rounds = {"ES256 assertion": options.rounds // 10, "RS256 assertion": options.rounds // 10}
    rounds["PKCE S256 challenge"] = options.rounds * 10
    print("# joserfc / Authlib against the hand-written code\n")
    print(f"Python {sys.version.split()[0]}; {options.repetitions} repetitions, interleaved.\n")
    print("## Per call, warm\n")
    print(warm(rounds, options.repetitions).render())
    print(f"\n## First call in a fresh interpreter (imports included), {options.cold_runs} runs\n")
    print(cold(options.cold_runs).render())


if __name__ == "__main__":
    main()
