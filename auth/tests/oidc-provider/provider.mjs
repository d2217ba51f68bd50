// A real OpenID provider (panva's oidc-provider) for podgate-auth's integration tests.
// Test-only: in-memory storage, plain HTTP on loopback, a fixed client secret.
//
//   node provider.mjs --port PORT --keys KEYS.json
//
// KEYS.json is a JSON array of signing keys the test generated, so the test can sign its own
// crafted tokens with the very keys the provider publishes:
//   [{ "kid": "k1", "alg": "RS256", "pkcs8": "<base64 of a PKCS#8 DER private key>" }, ...]
// The first key of each algorithm signs (oidc-provider's rule): rotate by restarting with the
// new key first. Access tokens are RS256 JWTs whose `aud` is the resource indicator.
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
  },
});
if (!values.port || !values.keys) {
  console.error('usage: node provider.mjs --port PORT --keys KEYS.json');
  process.exit(2);
}

const issuer = `http://127.0.0.1:${values.port}`;

/** The resource server podgate plays: tokens for it carry `aud: RESOURCE`. */
const RESOURCE = 'https://podgate.test';

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
      client_id: 'podgate-test',
      client_secret: 'podgate-test-secret',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_post',
    },
  ],
  jwks: { keys },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => RESOURCE,
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
  // Claims the identity mapping reads: groups, and one the tests require.
  extraTokenClaims: () => ({
    groups: ['podgate-devs', 'podgate-ops'],
    podgate_env: 'test',
  }),
});

const server = provider.listen(Number(values.port), '127.0.0.1', () => {
  console.log(`READY ${issuer}`);
});

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.resume();
