//! The IO side of OIDC verification against a scriptable provider (discovery + JWKS on
//! 127.0.0.1): discovery checks, refetch on unknown `kid` (single-flight, rate-limited),
//! periodic refresh, withdrawn keys, an unreachable provider, TLS with `ca_file`, and the place
//! of OIDC in a `Chain`. Needs nothing but this crate; `tests/oidc.rs` uses the real provider.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use podgate_auth::oidc::{IssuerConfig, OidcAuthenticator, OidcConfig};
use podgate_auth::{AuthError, Authenticator, Chain, Identity, StaticTokens};
use podgate_testkit::oidc::fake_idp::FakeIdp;
use podgate_testkit::oidc::keys::TestKey;
use serde_json::{Value, json};

const AUDIENCE: &str = "podgate";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

fn jwks(keys: &[&TestKey]) -> Value {
    json!({"keys": keys.iter().map(|k| k.public_jwk()).collect::<Vec<_>>()})
}

fn claims(issuer: &str, sub: &str) -> Value {
    json!({"iss": issuer, "aud": AUDIENCE, "sub": sub, "exp": now() + 300, "iat": now()})
}

fn issuer_config(issuer: &str) -> IssuerConfig {
    let mut config = IssuerConfig::new(issuer, vec![AUDIENCE.to_owned()]);
    config.insecure_http_for_loopback = true;
    config.username_prefix = Some("-".to_owned());
    config.min_refetch_interval = podgate_config::Duration::from_millis(300);
    config
}

fn authenticator(config: IssuerConfig, cache: usize) -> OidcAuthenticator {
    let mut oidc = OidcConfig::new(vec![config]);
    oidc.token_cache_entries = cache;
    OidcAuthenticator::new(&oidc).expect("valid config")
}

fn user(name: &str) -> Identity {
    Identity::new(name, Vec::<String>::new()).expect("valid identity")
}

fn reason<T: std::fmt::Debug>(result: Result<T, AuthError>) -> &'static str {
    match result {
        Ok(identity) => panic!("accepted as {identity:?}"),
        Err(error) => error.reason(),
    }
}

fn fetches(auth: &OidcAuthenticator) -> u64 {
    auth.issuers()[0].key_stats().fetches
}

#[tokio::test]
async fn discovery_must_name_the_configured_issuer() {
    let key = TestKey::es256("k1");
    let idp = FakeIdp::start(jwks(&[&key])).await;
    idp.set_discovery_issuer(&format!("{}/", idp.issuer));
    let auth = authenticator(issuer_config(&idp.issuer), 100);

    let token = key.token(&claims(&idp.issuer, "ann"));
    let Err(AuthError::Unavailable(message)) = auth.authenticate(&token).await else {
        panic!("a mismatching discovery document makes verification unavailable");
    };
    assert!(
        message.contains(&format!("names issuer \"{}/\"", idp.issuer))
            && message.contains("trailing slash"),
        "{message}"
    );
    assert!(!message.contains(&token), "{message}");
    let warm = auth.warm_up().await.expect_err("reported at warm-up too");
    assert!(warm.contains("names issuer"), "{warm}");
    assert_eq!(
        idp.jwks_hits(),
        0,
        "keys are not fetched from a wrong issuer"
    );
}

#[tokio::test]
async fn unknown_kid_refetches_once_for_many_callers() {
    let k1 = TestKey::es256("k1");
    let k2 = TestKey::es256("k2");
    let idp = FakeIdp::start(jwks(&[&k1])).await;
    let auth = Arc::new(authenticator(issuer_config(&idp.issuer), 0));
    auth.warm_up().await.expect("discovers");
    assert_eq!(idp.jwks_hits(), 1);

    // The provider rotates; 20 requests with the new kid arrive together while it is slow.
    tokio::time::sleep(Duration::from_millis(350)).await;
    idp.set_jwks(jwks(&[&k2, &k1]));
    idp.set_delay(Duration::from_millis(200));
    let mut tasks = Vec::new();
    for i in 0..20 {
        let auth = Arc::clone(&auth);
        let token = k2.token(&claims(&idp.issuer, &format!("user{i}")));
        tasks.push(tokio::spawn(async move { auth.verify(&token).await }));
    }
    for (i, task) in tasks.into_iter().enumerate() {
        assert_eq!(
            task.await.expect("joins").map(|a| a.identity),
            Ok(user(&format!("user{i}")))
        );
    }
    assert_eq!(idp.jwks_hits(), 2, "one refetch served all 20");
    idp.set_delay(Duration::ZERO);

    // Once the interval has passed, an unknown kid refetches again.
    tokio::time::sleep(Duration::from_millis(350)).await;
    let stranger = TestKey::es256("x");
    let token = stranger.token(&claims(&idp.issuer, "mallory"));
    assert_eq!(reason(auth.verify(&token).await), "unknown_kid");
    assert_eq!(idp.jwks_hits(), 3);
    assert_eq!(fetches(&auth), 3);
}

#[tokio::test]
async fn made_up_kids_cannot_hammer_the_provider() {
    let k1 = TestKey::es256("k1");
    let idp = FakeIdp::start(jwks(&[&k1])).await;
    let mut config = issuer_config(&idp.issuer);
    config.min_refetch_interval = podgate_config::Duration::from_secs(5);
    let auth = authenticator(config, 0);
    auth.warm_up().await.expect("discovers");
    let stranger = TestKey::es256("x");
    for i in 0..30 {
        let token = stranger
            .renamed(&format!("bogus{i}"))
            .token(&claims(&idp.issuer, "mallory"));
        assert_eq!(reason(auth.verify(&token).await), "unknown_kid");
    }
    assert_eq!(
        (idp.discovery_hits(), idp.jwks_hits()),
        (1, 1),
        "rate-limited by min_refetch_interval"
    );
    let good = k1.token(&claims(&idp.issuer, "ann"));
    assert_eq!(
        auth.verify(&good).await.map(|a| a.identity),
        Ok(user("ann"))
    );
}

#[tokio::test]
async fn periodic_refresh_drops_withdrawn_keys_without_blocking() {
    let k1 = TestKey::es256("k1");
    let k2 = TestKey::es256("k2");
    let idp = FakeIdp::start(jwks(&[&k1])).await;
    let mut config = issuer_config(&idp.issuer);
    config.jwks_refresh_interval = podgate_config::Duration::from_millis(600);
    let auth = authenticator(config, 0);
    let old = k1.token(&claims(&idp.issuer, "ann"));
    assert_eq!(auth.verify(&old).await.map(|a| a.identity), Ok(user("ann")));

    idp.set_jwks(jwks(&[&k2]));
    tokio::time::sleep(Duration::from_millis(700)).await;
    // Stale keys still answer at once; a background refresh starts.
    assert_eq!(auth.verify(&old).await.map(|a| a.identity), Ok(user("ann")));
    // Once it lands, k1 is gone. (Nothing else can have fetched: k1 kept verifying.)
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match auth.verify(&old).await {
            Ok(_) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "no background refresh"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(error) => {
                assert_eq!(error.reason(), "unknown_kid");
                break;
            }
        }
    }
    assert!(idp.jwks_hits() >= 2);
    let new = k2.token(&claims(&idp.issuer, "bob"));
    assert_eq!(auth.verify(&new).await.map(|a| a.identity), Ok(user("bob")));

    // After a quiet period of more than two intervals, the refetch comes first: a key
    // withdrawn meanwhile is refused on its very first use.
    idp.set_jwks(jwks(&[&k1]));
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(reason(auth.verify(&new).await), "unknown_kid");
    assert_eq!(auth.verify(&old).await.map(|a| a.identity), Ok(user("ann")));
}

#[tokio::test]
async fn critical_header_extensions_are_refused() {
    let key = TestKey::es256("k1");
    let idp = FakeIdp::start(jwks(&[&key])).await;
    let auth = authenticator(issuer_config(&idp.issuer), 0);
    let header = json!({"alg": "ES256", "kid": "k1", "crit": ["b64"], "b64": false});
    let token = key.sign(&header, &claims(&idp.issuer, "ann"));
    assert_eq!(reason(auth.verify(&token).await), "malformed");
}

#[tokio::test]
async fn cache_hits_skip_verification_until_a_key_is_withdrawn() {
    let k1 = TestKey::es256("k1");
    let k2 = TestKey::es256("k2");
    let idp = FakeIdp::start(jwks(&[&k1])).await;
    let auth = authenticator(issuer_config(&idp.issuer), 100);
    let token = k1.token(&claims(&idp.issuer, "ann"));

    assert_eq!(
        auth.verify(&token).await.map(|a| a.identity),
        Ok(user("ann"))
    );
    let after_first = auth.cache_stats();
    assert_eq!((after_first.hits, after_first.misses), (0, 1));
    for _ in 0..5 {
        assert_eq!(
            auth.verify(&token).await.map(|a| a.identity),
            Ok(user("ann"))
        );
    }
    let stats = auth.cache_stats();
    assert_eq!((stats.hits, stats.misses, stats.entries), (5, 1, 1));

    // k1 is withdrawn; the next refetch (here prompted by a k2 token) notices, and the cached
    // k1 token is verified again, and refused.
    idp.set_jwks(jwks(&[&k2]));
    tokio::time::sleep(Duration::from_millis(350)).await;
    let other = k2.token(&claims(&idp.issuer, "bob"));
    assert_eq!(
        auth.verify(&other).await.map(|a| a.identity),
        Ok(user("bob"))
    );
    assert_eq!(reason(auth.verify(&token).await), "unknown_kid");
}

#[tokio::test]
async fn tokens_without_kid_try_every_fitting_key() {
    let k1 = TestKey::es256("k1");
    let k2 = TestKey::es256("k2");
    let idp = FakeIdp::start(jwks(&[&k1, &k2])).await;
    let auth = authenticator(issuer_config(&idp.issuer), 0);
    let header = json!({"alg": "ES256"});
    let token = k2.sign(&header, &claims(&idp.issuer, "ann"));
    assert_eq!(
        auth.verify(&token).await.map(|a| a.identity),
        Ok(user("ann"))
    );
    let stranger = TestKey::es256("k3");
    let forged = stranger.sign(&header, &claims(&idp.issuer, "ann"));
    assert_eq!(reason(auth.verify(&forged).await), "bad_signature");
}

#[tokio::test]
async fn an_unreachable_provider_is_unavailable_and_not_hammered() {
    let key = TestKey::es256("k1");
    let idp = FakeIdp::start(jwks(&[&key])).await;
    idp.set_failing(true);
    let mut config = issuer_config(&idp.issuer);
    config.min_refetch_interval = podgate_config::Duration::from_secs(1);
    let auth = authenticator(config, 100);
    let token = key.token(&claims(&idp.issuer, "ann"));
    for _ in 0..5 {
        match auth.verify(&token).await {
            Err(AuthError::Unavailable(message)) => {
                assert!(message.contains("HTTP 500"), "{message}");
                assert!(!message.contains(&token));
            }
            other => panic!("expected unavailable, got {other:?}"),
        }
    }
    assert_eq!(
        idp.discovery_hits(),
        1,
        "one attempt per min_refetch_interval"
    );
    assert_eq!(auth.issuers()[0].key_stats().failures, 1);

    idp.set_failing(false);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        auth.verify(&token).await.map(|a| a.identity),
        Ok(user("ann"))
    );

    // Nobody listening at all: also unavailable, with the cause.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let gone = format!("http://127.0.0.1:{port}");
    let auth = authenticator(issuer_config(&gone), 100);
    let Err(AuthError::Unavailable(message)) = auth.verify(&key.token(&claims(&gone, "ann"))).await
    else {
        panic!("expected unavailable");
    };
    assert!(message.contains("onnect"), "{message}");
}

#[tokio::test]
async fn https_issuer_trusted_through_ca_file() {
    let key = TestKey::es256("k1");
    let idp = FakeIdp::start_tls(jwks(&[&key])).await;
    let dir = std::env::temp_dir().join(format!("podgate-oidc-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, idp.ca_pem.as_deref().expect("a CA")).expect("writes");

    let mut config = IssuerConfig::new(&idp.issuer, vec![AUDIENCE.to_owned()]);
    config.ca_file = Some(ca_file.clone());
    let auth = authenticator(config.clone(), 100);
    let token = key.token(&claims(&idp.issuer, "ann"));
    assert_eq!(
        auth.verify(&token)
            .await
            .map(|a| a.identity.user().to_string()),
        Ok(format!("{}#ann", idp.issuer))
    );

    // Without the CA (system roots, or an empty store where there are none), TLS fails.
    config.ca_file = None;
    match OidcAuthenticator::new(&OidcConfig::new(vec![config])) {
        Ok(auth) => match auth.verify(&token).await {
            Err(AuthError::Unavailable(message)) => {
                assert!(message.contains("certificate"), "{message}")
            }
            other => panic!("expected a TLS failure, got {other:?}"),
        },
        Err(error) => assert!(error.to_string().contains("set ca_file"), "{error}"),
    }

    let missing = IssuerConfig {
        ca_file: Some(dir.join("missing.pem")),
        ..IssuerConfig::new(&idp.issuer, vec![AUDIENCE.to_owned()])
    };
    let error = OidcAuthenticator::new(&OidcConfig::new(vec![missing])).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("issuers[0].ca_file: cannot read"),
        "{error}"
    );
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[tokio::test]
async fn in_a_chain_foreign_tokens_fall_through() {
    let key = TestKey::es256("k1");
    let idp = FakeIdp::start(jwks(&[&key])).await;
    let tokens = podgate_auth::parse_tokens(
        std::path::Path::new("tokens.yaml"),
        "- token: zq9-static-token-for-carol-7xv\n  user: carol\n",
    )
    .expect("tokens parse");
    let chain = Chain::new(vec![
        Arc::new(StaticTokens::new(tokens)),
        Arc::new(authenticator(issuer_config(&idp.issuer), 100)),
    ]);
    assert_eq!(
        chain
            .authenticate("zq9-static-token-for-carol-7xv")
            .await
            .map(|a| a.identity),
        Ok(user("carol"))
    );
    let ours = key.token(&claims(&idp.issuer, "ann"));
    assert_eq!(
        chain.authenticate(&ours).await.map(|a| a.identity),
        Ok(user("ann"))
    );
    // A JWT from an issuer we do not trust, and a random string: nobody's.
    let foreign = key.token(&claims("https://elsewhere.example", "ann"));
    assert_eq!(chain.authenticate(&foreign).await, Err(AuthError::Unknown));
    assert_eq!(
        chain.authenticate("not-a-jwt").await,
        Err(AuthError::Unknown)
    );
    // But a near miss of ours is named.
    let near = key.token(&claims(&format!("{}/", idp.issuer), "ann"));
    assert_eq!(reason(chain.authenticate(&near).await), "wrong_issuer");
}
