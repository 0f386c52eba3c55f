"""The fake protected MCP resource and its protected resource metadata (RFC 9728).

The resource accepts only ``Authorization: Bearer`` tokens issued by the fake authorization server for this
resource, unexpired and unrevoked, and answers 401/403 with RFC 6750 / RFC 9728 challenges otherwise. With
``dpop``, it also accepts ``Authorization: DPoP`` tokens with a valid proof (``ath``, the token's key, its nonce
when ``dpop_nonce``) and refuses a DPoP-bound token sent as a bearer token (RFC 9449 §7).
"""

from __future__ import annotations

import secrets
from typing import Any

from mcp_oauth_auth.testing.dpop_proofs import DPoPProofChecker, DPoPProofError
from mcp_oauth_auth.testing.fake_as import AccessTokenRecord, FakeAuthorizationServer
from mcp_oauth_auth.testing.fake_context import StackContext
from mcp_oauth_auth.testing.fake_http import FakeRequest, FakeResponse, bearer_challenge, json_response

__all__ = ["PRM_WELL_KNOWN", "FakeResource"]

PRM_WELL_KNOWN = "/.well-known/oauth-protected-resource"


class FakeResource:
    """The MCP endpoint (``mcp_path`` and everything below it) and its metadata document."""

    def __init__(self, context: StackContext, authorization_server: FakeAuthorizationServer) -> None:
        self._context = context
        self._as = authorization_server
        self._dpop_checker = DPoPProofChecker()
        #: The nonce the resource demands in proofs when ``dpop_nonce`` (:meth:`rotate_dpop_nonce`).
        self.dpop_nonce = secrets.token_urlsafe(16)

    def rotate_dpop_nonce(self) -> str:
        """Demand a new nonce from now on."""
        self.dpop_nonce = secrets.token_urlsafe(16)
        return self.dpop_nonce

    def __repr__(self) -> str:
        return f"FakeResource(server_url={self._context.server_url!r})"

    # ------------------------------------------------------------------ metadata

    def prm_path(self) -> str | None:
        """The path the metadata is served at, per ``prm_mode`` (None: not served)."""
        mode = self._context.config.prm_mode
        if mode in ("header", "path"):
            return f"{PRM_WELL_KNOWN}{self._context.config.mcp_path}"
        if mode == "root":
            return PRM_WELL_KNOWN
        return None

    def prm_document(self) -> dict[str, Any]:
        config = self._context.config
        servers = config.prm_authorization_servers
        document: dict[str, Any] = {
            "resource": config.prm_resource if config.prm_resource is not None else self._context.server_url,
            "authorization_servers": list(servers) if servers is not None else [self._context.issuer],
            "scopes_supported": list(config.prm_scopes_supported),
            "bearer_methods_supported": ["header"],
            "resource_name": "Fake MCP server",
        }
        if config.dpop:
            document["dpop_signing_alg_values_supported"] = list(config.dpop_signing_alg_values_supported)
        if config.dpop_required:
            document["dpop_bound_access_tokens_required"] = True
        return document

    def handle_prm(self, request: FakeRequest, injected: FakeResponse | None) -> FakeResponse:
        if injected is not None:
            return injected
        if request.path != self.prm_path():
            return json_response(404, {"error": "not_found", "error_description": f"nothing at {request.path}"})
        if request.method != "GET":
            return json_response(405, {"error": "method_not_allowed"}, [("Allow", "GET")])
        return json_response(200, self.prm_document())

    # ------------------------------------------------------------------ the protected resource

    def is_resource_path(self, path: str) -> bool:
        mcp_path = self._context.config.mcp_path
        return mcp_path in ("", path) or path.startswith(f"{mcp_path}/")

    def handle_resource(self, request: FakeRequest, injected: FakeResponse | None) -> FakeResponse:
        record: dict[str, Any] = {
            "method": request.method,
            "url": request.url,
            "path": request.path,
            "authorization": request.header("authorization"),
            "dpop": request.header("dpop"),
            "body_length": len(request.body),
            "client_id": None,
            "status": None,
        }
        self._context.log.resource_requests.append(record)
        response = injected if injected is not None else self._serve(request, record)
        if self._context.config.dpop_nonce and response.header("dpop-nonce") is None:
            response.headers.append(("DPoP-Nonce", self.dpop_nonce))
        record["status"] = response.status
        return response

    def _serve(self, request: FakeRequest, record: dict[str, Any]) -> FakeResponse:
        if any(name == "access_token" for name, _ in request.query):
            self._context.log.violations.append(
                f"access token sent in the query string of {request.method} {request.path} (RFC 9700 §2.4)"
            )
            return json_response(
                400,
                {
                    "error": "invalid_request",
                    "error_description": "access tokens are not accepted in the URL",
                },
            )
        authorizations = request.header_values("authorization")
        if not authorizations:
            return self._unauthorized(None, None)
        if len(authorizations) > 1:
            return self._bad_request("more than one Authorization header")
        scheme, _, token = authorizations[0].strip().partition(" ")
        scheme = scheme.lower()
        config = self._context.config
        if scheme != "bearer" and not (scheme == "dpop" and config.dpop):
            return self._unauthorized(None, None)
        if scheme == "bearer" and config.dpop_required:
            return self._unauthorized(None, None)
        token = token.strip()
        if not token or " " in token:
            return self._bad_request("malformed Bearer credentials")
        access = self._as.find_access_token(token)
        if access is None:
            return self._unauthorized("invalid_token", "The access token is not known")
        problem = access.problem_at(self._context.now())
        if problem is not None:
            return self._unauthorized("invalid_token", problem)
        refusal = self._dpop_refusal(request, scheme, token, access)
        if refusal is not None:
            return refusal
        if access.resource is None:
            if self._context.config.require_resource_indicator:
                return self._unauthorized("invalid_token", "The access token has no audience (resource)")
        elif access.resource not in self._context.accepted_resources():
            return self._unauthorized("invalid_token", "The access token is for another resource")
        record["client_id"] = access.client_id
        required = self._required_scopes(request.path)
        missing = [scope for scope in required if scope not in access.scopes]
        if missing:
            return self._insufficient_scope(access.scopes, missing)
        return json_response(
            200,
            {
                "ok": True,
                "method": request.method,
                "path": request.path,
                "scopes": list(access.scopes),
                "client_id": access.client_id,
                "body_length": len(request.body),
            },
        )

    def _dpop_refusal(
        self, request: FakeRequest, scheme: str, token: str, access: AccessTokenRecord
    ) -> FakeResponse | None:
        """Why a token is refused for its DPoP binding (a 401), or None: a bound token needs the DPoP scheme and a
        proof by its key with its ``ath`` (and the resource's nonce when ``dpop_nonce``); an unbound one, Bearer."""
        if scheme == "bearer":
            if access.jkt is not None:
                return self._unauthorized("invalid_token", "The access token is DPoP-bound; send it with a proof")
            return None
        if access.jkt is None:
            return self._unauthorized("invalid_token", "The access token is not DPoP-bound")
        config = self._context.config
        self._dpop_checker.algorithms = tuple(config.dpop_signing_alg_values_supported)
        self._dpop_checker.iat_window = config.dpop_iat_window
        try:
            self._dpop_checker.check(
                request.header_values("dpop"),
                request.method,
                request.url,
                self._context.now(),
                nonce=self.dpop_nonce if config.dpop_nonce else None,
                access_token=token,
                bound_to=access.jkt,
            )
        except DPoPProofError as exc:
            return self._unauthorized(exc.error, exc.description)
        return None

    def _required_scopes(self, path: str) -> list[str]:
        """Scopes of the longest ``required_scopes_by_path`` entry covering ``path``."""
        best: str | None = None
        for prefix in self._context.config.required_scopes_by_path:
            covers = path == prefix or path.startswith(prefix.rstrip("/") + "/")
            if covers and (best is None or len(prefix) > len(best)):
                best = prefix
        return list(self._context.config.required_scopes_by_path[best]) if best is not None else []

    def _metadata_param(self) -> list[tuple[str, str]]:
        url = self._context.resource_metadata_url
        if self._context.config.prm_mode == "header" and url is not None:
            return [("resource_metadata", url)]
        return []

    def _unauthorized(self, error: str | None, description: str | None) -> FakeResponse:
        params: list[tuple[str, str]] = []
        if error is not None:
            params.append(("error", error))
        if description is not None:
            params.append(("error_description", description))
        params += self._metadata_param()
        challenge_scope = self._context.config.challenge_scope
        if challenge_scope is not None:
            params.append(("scope", challenge_scope))
        body = {
            "error": error or "unauthorized",
            "error_description": description or "authentication required",
        }
        return json_response(401, body, self._challenges(params))

    def _challenges(self, params: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """``WWW-Authenticate`` headers: Bearer (unless ``dpop_required``) and, with ``dpop``, DPoP (RFC 9449 §7.1)
        with its ``algs``; a DPoP error (``use_dpop_nonce``, ``invalid_dpop_proof``) only in the DPoP one."""
        config = self._context.config
        if not config.dpop:
            return [("WWW-Authenticate", bearer_challenge(params))]
        dpop_errors = ("use_dpop_nonce", "invalid_dpop_proof")
        dpop_error = any(name == "error" and value in dpop_errors for name, value in params)
        headers = []
        if not config.dpop_required:
            bearer_params = [
                (name, value) for name, value in params if not dpop_error or name not in ("error", "error_description")
            ]
            headers.append(("WWW-Authenticate", bearer_challenge(bearer_params)))
        algs = ("algs", " ".join(config.dpop_signing_alg_values_supported))
        headers.append(("WWW-Authenticate", "DPoP" + bearer_challenge([*params, algs])[len("Bearer") :]))
        return headers

    def _insufficient_scope(self, granted: tuple[str, ...], missing: list[str]) -> FakeResponse:
        needed = " ".join(dict.fromkeys([*granted, *missing]))
        params = [("error", "insufficient_scope"), ("scope", needed), *self._metadata_param()]
        params.append(("error_description", f"this request needs scope {' '.join(missing)}"))
        body = {"error": "insufficient_scope", "error_description": f"missing scope {' '.join(missing)}"}
        return json_response(403, body, self._challenges(params))

    @staticmethod
    def _bad_request(description: str) -> FakeResponse:
        challenge = bearer_challenge([("error", "invalid_request"), ("error_description", description)])
        return json_response(
            400,
            {"error": "invalid_request", "error_description": description},
            [("WWW-Authenticate", challenge)],
        )
