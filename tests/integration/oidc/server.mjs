// The authorization server of the integration tests: oidc-provider (a certified OpenID Connect / OAuth 2.0
// implementation), configured the way an MCP deployment would configure it, on 127.0.0.1.
//
// Usage: node server.mjs CONFIG.json
//
// CONFIG.json (written by tests/integration/oidc_provider.py):
//   {
//     "resources": ["http://127.0.0.1:<port>/mcp"],     // RFC 8707 resource indicators of the MCP server(s)
//     "resourceScopes": "mcp:read mcp:write mcp:admin",  // scopes those resources accept
//     "extraScopes": ["mcp:read", ...],                  // optional: scopes also listed as the provider's own
//     "accessTokenTTL": 300,                             // seconds
//     "accounts": {"alice": "password"},                 // who may sign in on the login page
//     "clients": [{...}],                                // pre-registered clients (oidc-provider client metadata)
//     "introspectionClients": ["mcp-server"],            // confidential clients allowed to introspect any token
//     "dpopNonce": false                                 // optional: DPoP proofs must carry a server nonce
//   }
//
// DPoP (RFC 9449) is on (oidc-provider's default): a token request with a valid proof gets DPoP-bound tokens.
//
// The server listens on a free port that the system picks, then prints one JSON line
// {"event": "ready", "issuer": ..., "port": ...}. Every request and every step of the person's interaction is
// logged as one JSON line on stdout (never a token or a secret), for the tests to assert on.

import { randomBytes, generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

import Provider, { errors } from 'oidc-provider';

const settings = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const resources = new Set(settings.resources ?? []);
const resourceScopes = settings.resourceScopes ?? 'mcp:read mcp:write mcp:admin';
const accessTokenTTL = settings.accessTokenTTL ?? 300;
const accounts = new Map(Object.entries(settings.accounts ?? {}));
const introspectionClients = new Set(settings.introspectionClients ?? []);

function log(event) {
  process.stdout.write(`${JSON.stringify({ time: Date.now() / 1000, ...event })}\n`);
}

function escapeHtml(value) {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title, body, status = 200) {
  return {
    status,
    html: `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>
<body>
<h1>${escapeHtml(title)}</h1>
${body}
</body>
</html>
`,
  };
}

// -- the person's pages: sign-in and consent (plain HTML forms served by this process) -------------------------

function loginPage(uid, client, message) {
  return page('Sign in', `
<p>Sign in to continue to <strong>${escapeHtml(client?.clientName ?? client?.clientId ?? 'the application')}</strong>.</p>
${message ? `<p class="error">${escapeHtml(message)}</p>` : ''}
<form method="post" action="/interaction/${escapeHtml(uid)}/login" autocomplete="off">
  <label>Username <input type="text" name="username" required></label>
  <label>Password <input type="password" name="password" required></label>
  <button type="submit" name="action" value="login">Sign in</button>
</form>`, message ? 401 : 200);
}

function consentPage(uid, client, details, params) {
  const items = [];
  for (const [indicator, scopes] of Object.entries(details.missingResourceScopes ?? {})) {
    items.push(`<li>${escapeHtml(indicator)}: ${scopes.map((s) => `<code>${escapeHtml(s)}</code>`).join(' ')}</li>`);
  }
  for (const scope of details.missingOIDCScope ?? []) {
    items.push(`<li><code>${escapeHtml(scope)}</code></li>`);
  }
  if (items.length === 0) {
    items.push('<li>confirm the access you granted before</li>');
  }
  return page('Authorize access', `
<p><strong>${escapeHtml(client?.clientName ?? params.client_id)}</strong> asks for:</p>
<ul>${items.join('')}</ul>
<form method="post" action="/interaction/${escapeHtml(uid)}/consent">
  <button type="submit" name="decision" value="approve">Allow</button>
  <button type="submit" name="decision" value="deny">Deny</button>
</form>`);
}

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) {
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function send(res, { status, html }) {
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.end(html);
}

async function interaction(provider, req, res, uid, step) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) {
    send(res, page('Unknown sign-in request', '<p>This sign-in request is not the one in progress.</p>', 400));
    return;
  }
  const { prompt, params, session } = details;
  const client = await provider.Client.find(params.client_id);
  if (req.method === 'GET' && step === undefined) {
    log({ event: 'page', page: prompt.name, client_id: params.client_id });
    if (prompt.name === 'login') {
      send(res, loginPage(uid, client));
    } else if (prompt.name === 'consent') {
      send(res, consentPage(uid, client, prompt.details, params));
    } else {
      send(res, page('Not supported', `<p>prompt ${escapeHtml(prompt.name)}</p>`, 501));
    }
    return;
  }
  if (req.method !== 'POST') {
    send(res, page('Method not allowed', '', 405));
    return;
  }
  const form = await readForm(req);
  if (step === 'login' && prompt.name === 'login') {
    const username = form.get('username') ?? '';
    const expected = accounts.get(username);
    if (expected === undefined || form.get('password') !== expected) {
      log({ event: 'login', ok: false, username, client_id: params.client_id });
      send(res, loginPage(uid, client, 'Wrong username or password.'));
      return;
    }
    log({ event: 'login', ok: true, username, client_id: params.client_id });
    await provider.interactionFinished(req, res, { login: { accountId: username } }, {
      mergeWithLastSubmission: false,
    });
    return;
  }
  if (step === 'consent' && prompt.name === 'consent') {
    const { details: missing } = prompt;
    if (form.get('decision') !== 'approve') {
      log({ event: 'consent', decision: 'deny', client_id: params.client_id });
      await provider.interactionFinished(req, res, {
        error: 'access_denied',
        error_description: 'the person denied the request',
      }, { mergeWithLastSubmission: false });
      return;
    }
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    if (missing.missingOIDCScope) {
      grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    }
    if (missing.missingOIDCClaims) {
      grant.addOIDCClaims(missing.missingOIDCClaims);
    }
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    const grantId = await grant.save();
    log({
      event: 'consent',
      decision: 'approve',
      client_id: params.client_id,
      account: session.accountId,
      scope: params.scope ?? null,
      resource: params.resource ?? null,
      granted_resource_scopes: missing.missingResourceScopes ?? {},
      granted_oidc_scopes: missing.missingOIDCScope ?? [],
    });
    await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    return;
  }
  send(res, page('Unexpected step', `<p>the sign-in request expects ${escapeHtml(prompt.name)}</p>`, 400));
}

// -- the provider ------------------------------------------------------------------------------------------------

function configuration() {
  // A fresh signing key per run; P-256 because generating an RSA key costs a second of start-up.
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
  return {
    jwks: { keys: [{ ...key, kid: 'test-signing-key', use: 'sig', alg: 'ES256' }] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    clients: settings.clients ?? [],
    clientDefaults: {
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'ES256',
    },
    // 'openid' and 'offline_access' are the provider's own scopes; the MCP scopes belong to the resource server
    // (getResourceServerInfo below). extraScopes lists some of them as the provider's own as well (see README).
    scopes: ['openid', 'offline_access', ...(settings.extraScopes ?? [])],
    claims: { openid: ['sub'] },
    findAccount(ctx, sub) {
      if (!accounts.has(sub)) {
        return undefined;
      }
      return { accountId: sub, claims: async () => ({ sub }) };
    },
    interactions: {
      url(ctx, current) {
        return `/interaction/${current.uid}`;
      },
    },
    features: {
      devInteractions: { enabled: false },
      dPoP: {
        enabled: true,
        nonceSecret: randomBytes(32),
        // With dpopNonce, every proof must carry the server's nonce (400 use_dpop_nonce with a DPoP-Nonce first).
        requireNonce: () => settings.dpopNonce === true,
      },
      registration: { enabled: true }, // open dynamic client registration (RFC 7591), no initial access token
      revocation: { enabled: true },
      introspection: {
        enabled: true,
        allowedPolicy(ctx, caller, token) {
          return introspectionClients.has(caller.clientId) || caller.clientId === token.clientId;
        },
      },
      deviceFlow: { enabled: true },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // A client that names no resource gets tokens for the (single) MCP server, like a dedicated AS would do.
        defaultResource(ctx, client, oneOf) {
          if (oneOf) {
            return oneOf;
          }
          return resources.size === 1 ? [...resources][0] : undefined;
        },
        // Token requests may omit `resource`: the granted one applies (our client sends it anyway).
        useGrantedResource() {
          return true;
        },
        getResourceServerInfo(ctx, indicator) {
          if (!resources.has(indicator)) {
            throw new errors.InvalidTarget(`unknown resource ${indicator}`);
          }
          return {
            audience: indicator,
            scope: resourceScopes,
            accessTokenTTL,
            // Opaque: the MCP server validates tokens by introspection (RFC 7662), which also sees revocations.
            accessTokenFormat: 'opaque',
          };
        },
      },
    },
    pkce: {
      // PKCE for every authorization request, confidential clients included; S256 is the only method offered.
      required: () => true,
    },
    // Refresh tokens for any client allowed the refresh_token grant that was granted offline_access (public native
    // clients included), rotated on every use; reusing a rotated one is refused (and revokes the grant).
    issueRefreshToken(ctx, client, code) {
      return client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access');
    },
    rotateRefreshToken: true,
    ttl: {
      AccessToken: (ctx, token) => token.resourceServer?.accessTokenTTL ?? accessTokenTTL,
      ClientCredentials: (ctx, token) => token.resourceServer?.accessTokenTTL ?? accessTokenTTL,
      AuthorizationCode: 60,
      DeviceCode: 600,
      Grant: 3600,
      IdToken: 3600,
      Interaction: 600,
      RefreshToken: 3600,
      Session: 3600,
    },
    renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = page('Error', Object.entries(out)
        .map(([name, value]) => `<p><strong>${escapeHtml(name)}</strong>: ${escapeHtml(value)}</p>`).join('')).html;
    },
  };
}

function logged(provider) {
  provider.use(async (ctx, next) => {
    await next();
    const { oidc } = ctx;
    const params = oidc?.params ?? {};
    const body = ctx.body && typeof ctx.body === 'object' && !Buffer.isBuffer(ctx.body) ? ctx.body : {};
    log({
      event: 'request',
      method: ctx.method,
      path: ctx.path,
      route: oidc?.route ?? null,
      status: ctx.status,
      client_id: oidc?.client?.clientId ?? null,
      client_auth: ['token', 'introspection', 'revocation', 'device_authorization'].includes(oidc?.route)
        ? (oidc?.client?.clientAuthMethod ?? null)
        : null,
      grant_type: params.grant_type ?? null,
      dpop: Boolean(ctx.get('DPoP')),
      scope: params.scope ?? null,
      resource: params.resource ?? null,
      prompt: params.prompt ?? null,
      token_type_hint: params.token_type_hint ?? null,
      error: typeof body.error === 'string' ? body.error : null,
      error_description: typeof body.error_description === 'string' ? body.error_description : null,
      // What a dynamic registration registered (RFC 7591 §3.2.1 response).
      registered: oidc?.route === 'registration' && typeof body.client_id === 'string'
        ? { scope: body.scope ?? null, grant_types: body.grant_types ?? null,
          token_endpoint_auth_method: body.token_endpoint_auth_method ?? null,
          application_type: body.application_type ?? null }
        : null,
    });
  });
  for (const name of ['server_error', 'grant.error', 'introspection.error', 'revocation.error',
    'registration_create.error', 'authorization.error']) {
    provider.on(name, (ctx, error) => {
      log({
        event: name,
        error: error?.error ?? error?.name ?? null,
        description: error?.error_description ?? error?.message ?? null,
        detail: error?.error_detail ?? null,
      });
    });
  }
  provider.on('refresh_token.consumed', () => log({ event: 'refresh_token.consumed' }));
  provider.on('grant.revoked', () => log({ event: 'grant.revoked' }));
}

const server = createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, configuration());
  logged(provider);
  const handle = provider.callback();
  server.on('request', (req, res) => {
    const match = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|consent))?\/?(?:\?.*)?$/.exec(req.url);
    if (!match) {
      handle(req, res);
      return;
    }
    interaction(provider, req, res, match[1], match[2]).catch((error) => {
      log({ event: 'interaction.error', error: error?.name ?? null, description: error?.message ?? null });
      if (!res.headersSent) {
        send(res, page('Sign-in failed', `<p>${escapeHtml(error?.message ?? error)}</p>`, 400));
      }
    });
  });
  log({ event: 'ready', issuer, port });
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  });
}
