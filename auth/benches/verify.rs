//! What an OIDC bearer token costs per request: a full verification (cache miss: parse, alg
//! and key checks, signature, claims, mapping) against a cache hit (SHA-256 and a lookup), for
//! RS256 (the usual provider default) and ES256. Keys are fetched once from a local fake
//! provider before measuring, so no network time is included.
//!
//! `cargo bench -p podgate-auth --bench verify`

use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::{Criterion, criterion_group, criterion_main};
use podgate_auth::oidc::{Algorithm, IssuerConfig, OidcAuthenticator, OidcConfig};
use podgate_testkit::oidc::fake_idp::FakeIdp;
use podgate_testkit::oidc::keys::TestKey;
use serde_json::json;

fn verification(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut keys = vec![("es256", TestKey::es256("e1"))];
    match TestKey::rs256("r1") {
        Some(rsa) => keys.insert(0, ("rs256", rsa)),
        None => eprintln!("SKIPPED rs256: neither openssl nor node can generate an RSA key"),
    }
    let jwks = json!({"keys": keys.iter().map(|(_, k)| k.public_jwk()).collect::<Vec<_>>()});
    let idp = runtime.block_on(FakeIdp::start(jwks));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();

    let authenticator = |cache_entries| {
        let mut issuer = IssuerConfig::new(&idp.issuer, vec!["podgate".to_owned()]);
        issuer.insecure_http_for_loopback = true;
        issuer.algorithms = vec![Algorithm::RS256, Algorithm::ES256];
        issuer.groups_claim = Some("groups".to_owned());
        let mut config = OidcConfig::new(vec![issuer]);
        config.token_cache_entries = cache_entries;
        let auth = OidcAuthenticator::new(&config).expect("valid config");
        runtime.block_on(auth.warm_up()).expect("keys fetched");
        auth
    };
    let uncached = authenticator(0);
    let cached = authenticator(10_000);

    let mut group = c.benchmark_group("oidc_verify");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (name, key) in &keys {
        let claims = json!({
            "iss": idp.issuer, "aud": "podgate", "sub": "ann", "iat": now, "exp": now + 3600,
            "groups": ["dev", "ops"], "email": "ann@example.com",
        });
        let token = key.token(&claims);
        runtime
            .block_on(cached.verify(&token))
            .expect("the token verifies");
        group.bench_function(format!("{name}/miss"), |b| {
            b.iter(|| runtime.block_on(uncached.verify(black_box(&token))))
        });
        group.bench_function(format!("{name}/hit"), |b| {
            b.iter(|| runtime.block_on(cached.verify(black_box(&token))))
        });
    }
    group.finish();
    assert_eq!(
        uncached.issuers()[0].key_stats().fetches,
        1,
        "no refetch while measuring"
    );
}

criterion_group!(benches, verification);
criterion_main!(benches);
