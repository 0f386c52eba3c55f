// An MCP server with the authorization server the official MCP TypeScript SDK ships with, on 127.0.0.1: the SDK's
// mcpAuthRouter (metadata, /authorize, /token, /register, /revoke, protected resource metadata) around a provider
// based on the SDK's DemoInMemoryAuthProvider, requireBearerAuth on /mcp, and an McpServer with one tool, `add`.
//
// Usage: node server.mjs CONFIG.json
//
// CONFIG.json (written by tests/integration/ts_sdk_server.py):
//   {
//     "accessTokenTTL": 300,       // seconds an access token lives
//     "port": 0,                   // optional: 0 (the default) lets the system pick a free port
//     "stockDemoErrors": false     // optional: true keeps the demo provider's plain Errors (see README.md)
//   }
//
// The server prints one JSON line {"event": "ready", "url": <MCP endpoint>, "issuer": <issuer>, ...} when it listens,
// then one JSON line per request (method, path, status; never a token or a secret) on stdout.
//
// Test-only routes (not OAuth, not MCP): GET /_test/state, POST /_test/revoke-grants.

import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

import { DemoInMemoryAuthProvider } from '@modelcontextprotocol/sdk/examples/server/demoInMemoryOAuthProvider.js';
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';
import {
  InvalidGrantError,
  InvalidScopeError,
  InvalidTargetError,
  InvalidTokenError,
} from '@modelcontextprotocol/sdk/server/auth/errors.js';
import {
  createOAuthMetadata,
  getOAuthProtectedResourceMetadataUrl,
  mcpAuthRouter,
} from '@modelcontextprotocol/sdk/server/auth/router.js';
import { createMcpExpressApp } from '@modelcontextprotocol/sdk/server/express.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import * as z from 'zod';

const settings = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const accessTokenTTL = Number(settings.accessTokenTTL ?? 300); // seconds
const stockDemoErrors = settings.stockDemoErrors === true;
const SCOPES = ['mcp:read'];

function log(event) {
  process.stdout.write(`${JSON.stringify({ time: Date.now() / 1000, ...event })}\n`);
}

// What the authorization server did, for GET /_test/state.
const state = { registrations: 0, authorizations: 0, token_grants: [], revoked: [] };

// -- the provider: the SDK's demo, extended where it lacks what an MCP deployment needs ----------------------------
//
// The demo (DemoInMemoryAuthProvider) auto-approves at /authorize (redirects straight back with a code), keeps
// clients, codes and access tokens in memory, and checks the RFC 8707 resource of the code at the exchange. It lacks
// refresh tokens (its exchangeRefreshToken throws), revocation (no revokeToken: mcpAuthRouter then serves no
// /revoke) and a configurable token lifetime (1 hour), and it reports a bad code or a dead token with a plain Error,
// which the SDK's handlers answer with 500 server_error. This subclass adds the first three, and reports those
// errors as the SDK's OAuth errors (invalid_grant, invalid_token, ...) unless `stockDemoErrors` is set.

class TestAuthProvider extends DemoInMemoryAuthProvider {
  constructor(resource) {
    // The demo's strict resource check (its `--oauth-strict`): a code must be for this MCP server.
    super((requested) => requested !== undefined && requested.href === resource.href);
    this.resource = resource;
    // refresh token -> { token, clientId, scopes, resource, accessToken }
    this.refreshTokens = new Map();
    const { clientsStore } = this;
    const register = clientsStore.registerClient.bind(clientsStore);
    clientsStore.registerClient = async (client) => {
      const registered = await register(client);
      state.registrations += 1;
      log({
        event: 'registered',
        client_id: registered.client_id,
        token_endpoint_auth_method: registered.token_endpoint_auth_method ?? null,
        grant_types: registered.grant_types ?? null,
        scope: registered.scope ?? null,
      });
      return registered;
    };
  }

  async authorize(client, params, res) {
    await super.authorize(client, params, res);
    state.authorizations += 1;
    log({
      event: 'authorized',
      client_id: client.client_id,
      scopes: params.scopes,
      resource: params.resource?.href ?? null,
    });
  }

  async challengeForAuthorizationCode(client, authorizationCode) {
    try {
      return await super.challengeForAuthorizationCode(client, authorizationCode);
    } catch (error) {
      throw this.oauthError(error, InvalidGrantError);
    }
  }

  async exchangeAuthorizationCode(client, authorizationCode, codeVerifier, redirectUri, resource) {
    const code = this.codes.get(authorizationCode);
    if (!stockDemoErrors) {
      if (!code || code.client.client_id !== client.client_id) {
        throw new InvalidGrantError('Invalid authorization code');
      }
      if (redirectUri !== undefined && redirectUri !== code.params.redirectUri) {
        throw new InvalidGrantError('redirect_uri does not match the authorization request');
      }
      if (resource !== undefined && resource.href !== code.params.resource?.href) {
        throw new InvalidTargetError(`the code was not issued for ${resource.href}`);
      }
      if (this.validateResource && !this.validateResource(code.params.resource)) {
        throw new InvalidTargetError(`Invalid resource: ${code.params.resource}`);
      }
    }
    const tokens = await super.exchangeAuthorizationCode(client, authorizationCode, codeVerifier);
    const refreshToken = this.issue(client.client_id, tokens.access_token);
    state.token_grants.push('authorization_code');
    return { ...tokens, expires_in: accessTokenTTL, refresh_token: refreshToken };
  }

  async exchangeRefreshToken(client, refreshToken, scopes, resource) {
    const grant = this.refreshTokens.get(refreshToken);
    if (!grant || grant.clientId !== client.client_id) {
      throw new InvalidGrantError('Invalid refresh token');
    }
    if (resource !== undefined && resource.href !== grant.resource?.href) {
      throw new InvalidTargetError(`the refresh token was not issued for ${resource.href}`);
    }
    const granted = scopes ?? grant.scopes;
    if (!granted.every((scope) => grant.scopes.includes(scope))) {
      throw new InvalidScopeError('the requested scope exceeds the granted scope');
    }
    // Rotation: the old refresh token is spent; its access token lives on until it expires.
    this.refreshTokens.delete(refreshToken);
    const accessToken = randomUUID();
    this.tokens.set(accessToken, {
      token: accessToken,
      clientId: client.client_id,
      scopes: granted,
      expiresAt: 0,
      resource: grant.resource,
      type: 'access',
    });
    const newRefreshToken = this.issue(client.client_id, accessToken, grant.scopes);
    state.token_grants.push('refresh_token');
    return {
      access_token: accessToken,
      token_type: 'bearer',
      expires_in: accessTokenTTL,
      scope: granted.join(' '),
      refresh_token: newRefreshToken,
    };
  }

  // Sets the lifetime of the access token the demo (or exchangeRefreshToken) stored, and issues its refresh token.
  issue(clientId, accessToken, scopes) {
    const data = this.tokens.get(accessToken);
    data.expiresAt = Date.now() + accessTokenTTL * 1000;
    const refreshToken = randomUUID();
    data.refreshToken = refreshToken;
    this.refreshTokens.set(refreshToken, {
      token: refreshToken,
      clientId,
      scopes: scopes ?? data.scopes,
      resource: data.resource,
      accessToken,
    });
    return refreshToken;
  }

  async verifyAccessToken(token) {
    try {
      return await super.verifyAccessToken(token);
    } catch (error) {
      throw this.oauthError(error, InvalidTokenError);
    }
  }

  // RFC 7009: revoke the token (and its pair: an access token's refresh token, a refresh token's access token) when
  // it was issued to this client; an unknown token is not an error. /_test/state lists every token revoked, the pair
  // included (the log tells them apart: "pair": true).
  async revokeToken(client, { token }) {
    const access = this.tokens.get(token);
    if (access && access.clientId === client.client_id) {
      this.tokens.delete(token);
      state.revoked.push('access_token');
      log({ event: 'revoked', token_type: 'access_token', client_id: client.client_id });
      if (access.refreshToken && this.refreshTokens.delete(access.refreshToken)) {
        state.revoked.push('refresh_token');
        log({ event: 'revoked', token_type: 'refresh_token', client_id: client.client_id, pair: true });
      }
      return;
    }
    const refresh = this.refreshTokens.get(token);
    if (refresh && refresh.clientId === client.client_id) {
      this.refreshTokens.delete(token);
      state.revoked.push('refresh_token');
      log({ event: 'revoked', token_type: 'refresh_token', client_id: client.client_id });
      if (this.tokens.delete(refresh.accessToken)) {
        state.revoked.push('access_token');
        log({ event: 'revoked', token_type: 'access_token', client_id: client.client_id, pair: true });
      }
      return;
    }
    log({ event: 'revoke_ignored', client_id: client.client_id });
  }

  // The administrator revokes everything: every access token and refresh token issued so far.
  revokeAll() {
    const counts = { access_tokens: this.tokens.size, refresh_tokens: this.refreshTokens.size };
    this.tokens.clear();
    this.refreshTokens.clear();
    log({ event: 'revoked_all', ...counts });
    return counts;
  }

  oauthError(error, OAuthErrorClass) {
    if (stockDemoErrors || error?.errorCode !== undefined) {
      return error;
    }
    return new OAuthErrorClass(error?.message ?? String(error));
  }
}

// -- the MCP server ------------------------------------------------------------------------------------------------

function mcpServer() {
  const server = new McpServer({ name: 'ts-sdk-test-server', version: '1.0.0' });
  server.registerTool(
    'add',
    {
      description: 'Add two integers',
      inputSchema: { a: z.number().int(), b: z.number().int() },
    },
    async ({ a, b }) => ({ content: [{ type: 'text', text: String(a + b) }] }),
  );
  return server;
}

// Stateful streamable HTTP sessions, as the SDK's examples (simpleStreamableHttp) do.
const transports = new Map();

async function handleMcp(req, res) {
  const sessionId = req.headers['mcp-session-id'];
  let transport = sessionId ? transports.get(sessionId) : undefined;
  if (!transport) {
    if (sessionId) {
      res.status(404).json({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null });
      return;
    }
    if (req.method !== 'POST' || !isInitializeRequest(req.body)) {
      res.status(400).json({
        jsonrpc: '2.0',
        error: { code: -32000, message: 'Bad Request: No valid session ID provided' },
        id: null,
      });
      return;
    }
    const created = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        transports.set(id, created);
      },
    });
    created.onclose = () => {
      if (created.sessionId) {
        transports.delete(created.sessionId);
      }
    };
    await mcpServer().connect(created);
    transport = created;
  }
  await transport.handleRequest(req, res, req.body);
}

// -- the app -------------------------------------------------------------------------------------------------------

function requestLog(req, res, next) {
  const { method, path } = req; // the routers below rewrite req.url (and so req.path) to their mount points
  const json = res.json.bind(res);
  res.json = (body) => {
    if (body && typeof body === 'object' && typeof body.error === 'string') {
      res.locals.error = body.error;
      res.locals.errorDescription = typeof body.error_description === 'string' ? body.error_description : null;
    }
    return json(body);
  };
  res.on('finish', () => {
    log({
      event: 'request',
      method,
      path,
      status: res.statusCode,
      grant_type: path === '/token' ? (req.body?.grant_type ?? null) : null,
      client_auth: ['/token', '/revoke'].includes(path)
        ? { basic: /^basic /i.test(req.headers.authorization ?? ''), form_secret: req.body?.client_secret !== undefined }
        : null,
      error: res.locals.error ?? null,
      error_description: res.locals.errorDescription ?? null,
      www_authenticate: res.getHeader('www-authenticate') ?? null,
    });
  });
  next();
}

function application(port) {
  const issuerUrl = new URL(`http://127.0.0.1:${port}`);
  const mcpUrl = new URL(`http://127.0.0.1:${port}/mcp`);
  const provider = new TestAuthProvider(mcpUrl);
  const routerOptions = {
    provider,
    issuerUrl,
    resourceServerUrl: mcpUrl,
    resourceName: 'MCP test server (TypeScript SDK)',
    scopesSupported: SCOPES,
  };
  // createMcpExpressApp: the SDK's Express app for MCP servers (JSON bodies, Host header checked on loopback).
  const app = createMcpExpressApp({ host: '127.0.0.1' });
  app.use(requestLog);

  app.get('/_test/state', (req, res) => {
    res.json(state);
  });
  app.post('/_test/revoke-grants', (req, res) => {
    res.json(provider.revokeAll());
  });

  app.use(mcpAuthRouter(routerOptions));
  const bearer = requireBearerAuth({
    verifier: provider,
    requiredScopes: SCOPES,
    resourceMetadataUrl: getOAuthProtectedResourceMetadataUrl(mcpUrl),
    expectedResource: mcpUrl,
  });
  const mcp = (req, res) => {
    handleMcp(req, res).catch((error) => {
      log({ event: 'mcp.error', error: error?.name ?? null, description: error?.message ?? null });
      if (!res.headersSent) {
        res.status(500).json({ jsonrpc: '2.0', error: { code: -32603, message: 'Internal server error' }, id: null });
      }
    });
  };
  app.post('/mcp', bearer, mcp);
  app.get('/mcp', bearer, mcp);
  app.delete('/mcp', bearer, mcp);
  return { app, metadata: createOAuthMetadata(routerOptions), mcpUrl };
}

const server = createServer();
server.listen(Number(settings.port ?? 0), '127.0.0.1', () => {
  const { port } = server.address();
  const { app, metadata, mcpUrl } = application(port);
  server.on('request', app);
  log({
    event: 'ready',
    url: mcpUrl.href,
    issuer: metadata.issuer,
    port,
    resource_metadata: getOAuthProtectedResourceMetadataUrl(mcpUrl),
  });
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  });
}
