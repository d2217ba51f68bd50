// A real OpenID provider (panva's oidc-provider) for podgate's integration tests.
// Test-only: in-memory storage, plain HTTP on loopback, fixed client secrets and passwords.
//
//   node provider.mjs --port PORT --keys KEYS.json [--redirect URL]... [--id-token-ttl SECONDS]
//
// KEYS.json is a JSON array of signing keys the test generated, so the test can sign its own
// crafted tokens with the very keys the provider publishes:
//   [{ "kid": "k1", "alg": "RS256", "pkcs8": "<base64 of a PKCS#8 DER private key>" }, ...]
// The first key of each algorithm signs (oidc-provider's rule): rotate by restarting with the
// new key first.
//
// Two clients:
// - `podgate-test` (client_credentials, client_secret_post): access tokens are RS256 JWTs whose
//   `aud` is the resource indicator, for the bearer-token tests.
// - `podgate-login` (authorization_code + refresh_token, client_secret_basic), redirecting to
//   each --redirect URL: the gateway's browser login. ID tokens carry email
//   (`<username>@example.test`) and groups (no need for userinfo) and last --id-token-ttl
//   seconds (default 3600), so a test can let one expire and watch the gateway refresh it.
//   Every code exchange also yields a refresh token.
//
// The login and consent pages are minimal HTML forms a test submits over HTTP (oidc-provider's
// devInteractions stay off; these are the interactions a real deployment writes itself):
//   GET  /interaction/:uid          the login form (prompt login) or the consent form
//   POST /interaction/:uid/login    username, password
//   POST /interaction/:uid/confirm  grants what was asked
//   POST /interaction/:uid/abort    ends the login with error=access_denied
// Users (username / password: the claims of their ID tokens):
// - alice / alice-password: sub `alice`, groups [dev]
// - bob / bob-password: sub `bob`, groups [contractors]
// People whose claims cannot travel in HTTP headers byte for byte, for the gateway's identity
// checks. They log in with the same form; their accountId (which oidc-provider makes the `sub`,
// lib/helpers/account_claims.js) is not their username:
// - mallory / mallory-password: sub `mallory\u0007` (a control character), groups [dev]
// - padded / padded-password: sub `admin ` (trailing space: HTTP would deliver `admin`),
//   groups [dev]
// - eve / eve-password: sub `eve`, groups [` system:masters`] (leading space)
// - trudy / trudy-password: sub `trudy`, groups [system:masters] (reserved by Kubernetes)
// And one whose claims are fine, if not ASCII:
// - zoe / zoe-password: sub `zoë`, groups [dev]
//
// Prints `READY <issuer>` on stdout once listening; exits when stdin closes, so an aborted
// test never leaves a provider behind.

import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import Provider, { errors } from 'oidc-provider';

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    keys: { type: 'string' },
    redirect: { type: 'string', multiple: true, default: [] },
    'id-token-ttl': { type: 'string', default: '3600' },
  },
});
const idTokenTtl = Number(values['id-token-ttl']);
if (!values.port || !values.keys || !(idTokenTtl > 0)) {
  console.error(
    'usage: node provider.mjs --port PORT --keys KEYS.json [--redirect URL]... [--id-token-ttl SECONDS]',
  );
  process.exit(2);
}

const issuer = `http://127.0.0.1:${values.port}`;

/** The resource server podgate plays: client_credentials tokens carry `aud: RESOURCE`. */
const RESOURCE = 'https://podgate.test';
const CREDENTIALS_CLIENT = 'podgate-test';

/**
 * The people who can log in, by username, with the claims their ID tokens carry. `sub` (the
 * accountId) is the username unless given.
 */
const USERS = {
  alice: { password: 'alice-password', name: 'Alice', groups: ['dev'] },
  bob: { password: 'bob-password', name: 'Bob', groups: ['contractors'] },
  mallory: { password: 'mallory-password', name: 'Mallory', sub: 'mallory\u0007', groups: ['dev'] },
  padded: { password: 'padded-password', name: 'Padded', sub: 'admin ', groups: ['dev'] },
  eve: { password: 'eve-password', name: 'Eve', groups: [' system:masters'] },
  trudy: { password: 'trudy-password', name: 'Trudy', groups: ['system:masters'] },
  zoe: { password: 'zoe-password', name: 'Zoë', sub: 'zoë', groups: ['dev'] },
};

/** The accountId (and so the `sub`) of the person who logs in as `username`. */
const accountIdOf = (username) => USERS[username].sub ?? username;

/** The username of the person whose accountId is `id`. */
const USERNAMES = new Map(Object.keys(USERS).map((username) => [accountIdOf(username), username]));

const keys = JSON.parse(readFileSync(values.keys, 'utf8')).map(({ kid, alg, pkcs8 }) => ({
  ...createPrivateKey({ key: Buffer.from(pkcs8, 'base64'), format: 'der', type: 'pkcs8' })
    .export({ format: 'jwk' }),
  kid,
  alg,
  use: 'sig',
}));

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: CREDENTIALS_CLIENT,
      client_secret: 'podgate-test-secret',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_post',
    },
    {
      client_id: 'podgate-login',
      client_secret: 'podgate-login-secret',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: values.redirect,
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  jwks: { keys },
  cookies: { keys: ['podgate-test-cookie-key'] },
  scopes: ['openid', 'offline_access'],
  claims: {
    openid: ['sub'],
    profile: ['name'],
    email: ['email', 'email_verified'],
    groups: ['groups'],
  },
  // Scope-requested claims go into the ID token itself (not only userinfo), as with most
  // enterprise providers' groups claims.
  conformIdTokenClaims: false,
  findAccount: (_ctx, id) => {
    const username = USERNAMES.get(id);
    if (username === undefined) return undefined;
    const user = USERS[username];
    return {
      accountId: id,
      claims: () => ({
        sub: id,
        name: user.name,
        email: `${username}@example.test`,
        email_verified: true,
        groups: user.groups,
      }),
    };
  },
  ttl: { IdToken: idTokenTtl },
  // Refresh tokens for the login client whether or not offline_access survived (this
  // provider drops it unless prompt=consent is sent), as Keycloak and others do.
  issueRefreshToken: (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // Only the client_credentials client gets resource-server (JWT) access tokens; the
      // login client's access token stays opaque, for userinfo.
      defaultResource: (ctx, client) =>
        client?.clientId === CREDENTIALS_CLIENT ? RESOURCE : undefined,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, resourceIndicator) => {
        if (resourceIndicator !== RESOURCE) {
          throw new errors.InvalidTarget();
        }
        return {
          scope: 'shell',
          audience: RESOURCE,
          accessTokenTTL: 600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  // Claims the identity mapping reads in access tokens: groups, and one the tests require.
  extraTokenClaims: () => ({
    groups: ['podgate-devs', 'podgate-ops'],
    podgate_env: 'test',
  }),
});

const escape = (s) =>
  String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const page = (title, body) => `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>${escape(title)}</title></head>
<body><h1>${escape(title)}</h1>${body}</body></html>`;

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 16384) throw new Error('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

/** Finishes the interaction and sends the browser back to the provider (303). */
async function finish(ctx, result) {
  const returnTo = await provider.interactionResult(ctx.req, ctx.res, result, {
    mergeWithLastSubmission: false,
  });
  ctx.status = 303;
  ctx.redirect(returnTo);
}

async function interactions(ctx, next) {
  const match = /^\/interaction\/([\w-]+)(?:\/(login|confirm|abort))?$/.exec(ctx.path);
  if (!match) return next();
  ctx.set('cache-control', 'no-store');
  const [, uid, action] = match;
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  if (details.uid !== uid) throw new errors.InvalidRequest('interaction mismatch');
  const { prompt, params } = details;

  if (ctx.method === 'GET' && !action) {
    ctx.type = 'html';
    if (prompt.name === 'login') {
      ctx.body = page(
        'Sign in',
        `<form method="post" action="/interaction/${uid}/login">
  <input name="username" autocomplete="username">
  <input name="password" type="password" autocomplete="current-password">
  <button type="submit">Sign in</button>
</form>
<form method="post" action="/interaction/${uid}/abort"><button>Cancel</button></form>`,
      );
    } else {
      ctx.body = page(
        'Allow access',
        `<p>${escape(params.client_id)} asks for: ${escape(params.scope)}</p>
<form method="post" action="/interaction/${uid}/confirm"><button>Allow</button></form>
<form method="post" action="/interaction/${uid}/abort"><button>Deny</button></form>`,
      );
    }
    return;
  }
  if (ctx.method !== 'POST' || !action) {
    ctx.status = 405;
    return;
  }
  const form = await readForm(ctx.req);

  if (action === 'abort') {
    return finish(ctx, {
      error: 'access_denied',
      error_description: 'End-User aborted interaction',
    });
  }
  if (action === 'login') {
    if (prompt.name !== 'login') throw new errors.InvalidRequest('not a login prompt');
    const username = form.get('username') ?? '';
    const user = Object.hasOwn(USERS, username) ? USERS[username] : undefined;
    if (!user || user.password !== form.get('password')) {
      ctx.status = 401;
      ctx.type = 'html';
      ctx.body = page('Wrong username or password', `<a href="/interaction/${uid}">Try again</a>`);
      return;
    }
    return finish(ctx, { login: { accountId: accountIdOf(username) } });
  }
  // confirm
  if (prompt.name !== 'consent') throw new errors.InvalidRequest('not a consent prompt');
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
  const missing = prompt.details;
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  const grantId = await grant.save();
  return finish(ctx, { consent: { grantId } });
}

provider.use(interactions);

const server = provider.listen(Number(values.port), '127.0.0.1', () => {
  console.log(`READY ${issuer}`);
});

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.resume();
