//! Against a real OpenID provider: panva's `oidc-provider` (pinned in `tests/oidc-provider/`),
//! issuing RS256 JWT access tokens through client_credentials with a resource indicator. The
//! provider signs with RSA keys this test generated, so the test can also sign its own variants
//! of a token, one per rejection reason, and rotate keys by restarting the provider.
//!
//! Skipped with a note when node or the installed provider is missing; under `CI=true` that is
//! a failure instead.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use podgate_auth::oidc::{IssuerConfig, OidcAuthenticator, OidcConfig};
use podgate_auth::{AuthError, Authenticator, Identity};
use podgate_testkit::free_port;
use podgate_testkit::oidc::keys::{self, TestKey, available};
use podgate_testkit::oidc::kid;
use podgate_testkit::oidc::provider::{self, CLIENT_ID, Provider, RESOURCE};
use serde_json::{Value, json};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// RSA keys for the provider, or `None` (skip) when they cannot be made here.
fn rsa_keys(kids: &[&str]) -> Option<Vec<TestKey>> {
    let keys: Option<Vec<TestKey>> = kids.iter().map(|kid| TestKey::rs256(kid)).collect();
    if available(keys.is_some(), "openssl or node, to generate RSA keys") {
        keys
    } else {
        None
    }
}

fn config(issuer: &str) -> OidcConfig {
    let mut config = IssuerConfig::new(issuer, vec![RESOURCE.to_owned()]);
    config.insecure_http_for_loopback = true;
    config.algorithms = vec![podgate_auth::oidc::Algorithm::RS256];
    config.groups_claim = Some("groups".to_owned());
    config.groups_prefix = Some("oidc:".to_owned());
    config
        .required_claims
        .insert("podgate_env".to_owned(), "test".to_owned());
    config.min_refetch_interval = podgate_config::Duration::from_millis(200);
    OidcConfig::new(vec![config])
}

/// The claims the provider puts in its access tokens, for the test's own variants.
fn claims(issuer: &str) -> Value {
    json!({
        "iss": issuer, "aud": RESOURCE, "sub": "crafted", "client_id": CLIENT_ID,
        "iat": now(), "exp": now() + 300, "scope": "shell",
        "groups": ["podgate-devs"], "podgate_env": "test",
    })
}

fn with(issuer: &str, changes: Value) -> Value {
    let mut claims = claims(issuer);
    for (name, value) in changes.as_object().expect("an object") {
        if value.is_null() {
            claims.as_object_mut().expect("an object").remove(name);
        } else {
            claims[name] = value.clone();
        }
    }
    claims
}

/// Authenticates `token`, which must be refused with `reason`; the error must not show it.
async fn refused(auth: &OidcAuthenticator, token: &str, reason: &str) -> AuthError {
    let error = match auth.authenticate(token).await {
        Ok(identity) => panic!("{reason}: accepted as {identity:?}"),
        Err(error) => error,
    };
    assert_eq!(error.reason(), reason, "{error}");
    assert!(
        matches!(error, AuthError::Rejected { .. }),
        "{reason}: {error:?}"
    );
    let signature = token.rsplit('.').next().unwrap_or(token);
    for shown in [error.to_string(), format!("{error:?}")] {
        assert!(!shown.contains(token), "{reason}: shows the token: {shown}");
        assert!(
            signature.len() < 8 || !shown.contains(signature),
            "{reason}: shows the signature: {shown}"
        );
    }
    error
}

fn identity(user: &str, groups: &[&str]) -> Identity {
    Identity::new(user, groups.iter().copied()).expect("valid identity")
}

#[tokio::test]
async fn provider_tokens_are_accepted_and_each_flaw_is_named() {
    if !provider::prerequisites() {
        return;
    }
    let Some(keys) = rsa_keys(&["k1"]) else {
        return;
    };
    let k1 = &keys[0];
    let provider = Provider::start(free_port(), &[k1]).await;
    let issuer = provider.issuer.clone();
    let auth = OidcAuthenticator::new(&config(&issuer)).expect("valid config");

    // A real token, issued by the provider: accepted and mapped like kube-apiserver would.
    let token = provider.access_token().await;
    let expected = identity(
        &format!("{issuer}#{CLIENT_ID}"),
        &["oidc:podgate-devs", "oidc:podgate-ops"],
    );
    assert_eq!(
        auth.authenticate(&token).await.map(|a| a.identity),
        Ok(expected.clone())
    );
    let fetches = auth.issuers()[0].key_stats().fetches;
    assert_eq!(fetches, 1);

    // A repeat is a cache hit: no signature check, no fetch.
    let before = auth.cache_stats();
    assert_eq!(
        auth.authenticate(&token).await.map(|a| a.identity),
        Ok(expected)
    );
    let after = auth.cache_stats();
    assert_eq!(
        (after.hits - before.hits, after.misses - before.misses),
        (1, 0)
    );

    // Our own token signed with the provider's key is as good as its own.
    let crafted = k1.token(&claims(&issuer));
    assert_eq!(
        auth.authenticate(&crafted)
            .await
            .map(|a| a.identity.user().to_string()),
        Ok(format!("{issuer}#crafted"))
    );

    // One flaw at a time.
    let expired = k1.token(&with(
        &issuer,
        json!({"exp": now() - 3600, "iat": now() - 7200}),
    ));
    refused(&auth, &expired, "expired").await;

    let early = k1.token(&with(&issuer, json!({"nbf": now() + 3600})));
    refused(&auth, &early, "not_yet_valid").await;
    let future = k1.token(&with(&issuer, json!({"iat": now() + 3600})));
    refused(&auth, &future, "not_yet_valid").await;

    let elsewhere = k1.token(&with(&issuer, json!({"aud": "https://elsewhere.test"})));
    refused(&auth, &elsewhere, "wrong_audience").await;

    let slash = k1.token(&with(&issuer, json!({"iss": format!("{issuer}/")})));
    refused(&auth, &slash, "wrong_issuer").await;
    let stranger = k1.token(&with(&issuer, json!({"iss": "https://stranger.example"})));
    assert_eq!(
        auth.authenticate(&stranger).await,
        Err(AuthError::Unknown),
        "an untrusted issuer's token is not ours: a chain moves on"
    );

    // The provider's real token with its claims swapped for better ones.
    let mut parts: Vec<&str> = token.split('.').collect();
    let promoted = keys::b64(
        with(&issuer, json!({"sub": "admin"}))
            .to_string()
            .as_bytes(),
    );
    parts[1] = &promoted;
    refused(&auth, &parts.join("."), "bad_signature").await;
    // Signed by another key under the provider's kid.
    let Some(impostor) = rsa_keys(&["k1"]) else {
        return;
    };
    refused(&auth, &impostor[0].token(&claims(&issuer)), "bad_signature").await;
    // Bringing its own key in the header does not help.
    let header = json!({"alg": "RS256", "kid": "k1", "jwk": impostor[0].public_jwk()});
    refused(
        &auth,
        &impostor[0].sign(&header, &claims(&issuer)),
        "bad_signature",
    )
    .await;

    // An unknown kid makes podgate refetch the JWKS once, then give up.
    tokio::time::sleep(Duration::from_millis(250)).await;
    let unknown = impostor[0].renamed("k9").token(&claims(&issuer));
    refused(&auth, &unknown, "unknown_kid").await;
    assert_eq!(auth.issuers()[0].key_stats().fetches, fetches + 1);

    refused(&auth, &keys::unsigned(&claims(&issuer)), "alg_none").await;

    // The classic confusion: HS256 keyed with the issuer's public key, as DER and as the JWK.
    let public = k1.public_key_bytes();
    refused(
        &auth,
        &keys::hs256("k1", &claims(&issuer), &public),
        "alg_hs",
    )
    .await;
    let jwk = k1.public_jwk().to_string();
    refused(
        &auth,
        &keys::hs256("k1", &claims(&issuer), jwk.as_bytes()),
        "alg_hs",
    )
    .await;

    let header = keys::b64(br#"{"alg":"RS256","kid":"k1"}"#);
    refused(&auth, &format!("{header}.%%%.sig"), "malformed").await;
    refused(&auth, &format!("{header}.e30"), "malformed").await;
    let body = keys::b64(claims(&issuer).to_string().as_bytes());
    refused(&auth, &format!("{header}.{body}.!!"), "malformed").await;

    let missing = k1.token(&with(&issuer, json!({"podgate_env": null})));
    let error = refused(&auth, &missing, "missing_claim").await;
    assert!(error.to_string().contains("podgate_env"), "{error}");
    let other_value = k1.token(&with(&issuer, json!({"podgate_env": "prod"})));
    refused(&auth, &other_value, "missing_claim").await;

    // None of those was cached.
    assert_eq!(auth.cache_stats().entries, 2);
    provider.stop().await;
}

#[tokio::test]
async fn rotated_keys_are_picked_up_without_a_restart() {
    if !provider::prerequisites() {
        return;
    }
    let Some(keys) = rsa_keys(&["k1", "k2"]) else {
        return;
    };
    let (k1, k2) = (&keys[0], &keys[1]);
    let port = free_port();
    let provider = Provider::start(port, &[k1]).await;
    let issuer = provider.issuer.clone();
    let auth = OidcAuthenticator::new(&config(&issuer)).expect("valid config");
    let old = provider.access_token().await;
    assert!(auth.authenticate(&old).await.is_ok());

    // The provider now signs with k2 and still publishes k1 (a normal rotation).
    provider.stop().await;
    let provider = Provider::start(port, &[k2, k1]).await;
    let new = provider.access_token().await;
    assert_ne!(kid(&new), kid(&old));
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(
        auth.authenticate(&new).await.is_ok(),
        "the new kid triggered a JWKS refetch"
    );
    assert!(auth.authenticate(&old).await.is_ok());
    assert_eq!(auth.issuers()[0].key_stats().keys, 2);

    // Then k1 is withdrawn. The next refetch notices, and even the cached k1 token goes.
    provider.stop().await;
    let provider = Provider::start(port, &[k2]).await;
    tokio::time::sleep(Duration::from_millis(250)).await;
    let probe = k1.renamed("k-probe").token(&claims(&issuer));
    refused(&auth, &probe, "unknown_kid").await;
    assert_eq!(auth.issuers()[0].key_stats().keys, 1);
    refused(&auth, &old, "unknown_kid").await;
    let newest = provider.access_token().await;
    assert!(auth.authenticate(&newest).await.is_ok());
    provider.stop().await;
}
