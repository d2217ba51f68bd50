//! The `oidc` settings: which issuers podgate trusts and how their claims become Kubernetes
//! identities. Plain serde types with defaults and a [`validate`](OidcConfig::validate) that
//! reports every problem with its field, for embedding into the gateway's config file.
//!
//! Each issuer corresponds to one kube-apiserver OIDC configuration:
//!
//! | podgate (`issuers[]`)  | kube-apiserver flag                  | notes |
//! |------------------------|--------------------------------------|-------|
//! | `issuer`               | `--oidc-issuer-url`                  | exact, compared byte for byte with the token's `iss` and the discovery document's `issuer` |
//! | `audiences`            | `--oidc-client-id`                   | a list (as in kube's structured `AuthenticationConfiguration`); one entry must be in `aud` |
//! | `algorithms`           | `--oidc-signing-algs`                | default `[RS256, ES256]` (kube: `RS256`); `none` and `HS*` are refused |
//! | `username_claim`       | `--oidc-username-claim`              | default `sub` |
//! | `username_prefix`      | `--oidc-username-prefix`             | unset: `{issuer}#` unless the claim is `email`; `-`: no prefix |
//! | `groups_claim`         | `--oidc-groups-claim`                | string or array of strings; absent means no groups |
//! | `groups_prefix`        | `--oidc-groups-prefix`               | default none |
//! | `required_claims`      | `--oidc-required-claim` (repeated)   | each claim must be a string equal to the value |
//! | `ca_file`              | `--oidc-ca-file`                     | default: the system's trust roots |
//! | `leeway`, `jwks_refresh_interval`, `min_refetch_interval`, `insecure_http_for_loopback` | none | podgate only |
//!
//! ```yaml
//! oidc:
//!   issuers:
//!     - issuer: https://login.example.com/realms/eng
//!       audiences: [podgate]
//!       username_claim: email          # users are "ann@example.com", as with kubectl + OIDC
//!       groups_claim: groups
//!       groups_prefix: "oidc:"         # RBAC binds group "oidc:sre"
//!       required_claims: {hd: example.com}
//! ```

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use podgate_config::Duration;

use super::alg::Algorithm;

/// Default bound of the verified-token cache.
pub const DEFAULT_TOKEN_CACHE_ENTRIES: usize = 10_000;
/// Largest `token_cache_entries` accepted: about 200 bytes an entry, so at most ~200 MB.
pub const MAX_TOKEN_CACHE_ENTRIES: usize = 1_000_000;
/// Largest `leeway` accepted: more would make `exp` meaningless.
pub const MAX_LEEWAY: Duration = Duration::from_secs(300);

/// OIDC bearer-token authentication (`auth.oidc` in the gateway config).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The trusted issuers. A token is checked against the one its `iss` names; a token naming
    /// none of them is not an OIDC token of ours, and the next authenticator is asked.
    pub issuers: Vec<IssuerConfig>,
    /// How many verified tokens to remember (by SHA-256 of the token, until their `exp`) so a
    /// repeat costs no signature check. `0` turns the cache off. Default 10000.
    #[serde(default = "default_cache_entries")]
    pub token_cache_entries: usize,
    /// The browser login (authorization code flow) at one of the issuers. Unset: no
    /// `/auth/login`; bearer tokens only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<crate::login::LoginConfig>,
}

impl OidcConfig {
    pub fn new(issuers: Vec<IssuerConfig>) -> Self {
        OidcConfig {
            issuers,
            token_cache_entries: DEFAULT_TOKEN_CACHE_ENTRIES,
            login: None,
        }
    }
}

/// One trusted OpenID provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// The issuer URL, exactly as the provider writes it in `iss` (a trailing slash counts).
    /// Discovery is fetched from `{issuer}/.well-known/openid-configuration`, and its `issuer`
    /// must be this same string. `https://` is required (see `insecure_http_for_loopback`).
    pub issuer: String,
    /// Accepted `aud` values; a token must name at least one. Usually the client id podgate's
    /// tokens are issued to, or the API identifier (resource indicator) of the gateway.
    pub audiences: Vec<String>,
    /// Signature algorithms accepted from this issuer. Default `[RS256, ES256]`. Also supported:
    /// RS384, RS512, PS256, PS384, PS512, ES384, EdDSA. `none` and `HS256/384/512` are refused
    /// at load time: they would let anyone forge tokens.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<Algorithm>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`. Default `60s`, at most `5m`.
    #[serde(default = "default_leeway")]
    pub leeway: Duration,
    /// Claims that must be present with exactly these string values, e.g. `{hd: example.com}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub required_claims: BTreeMap<String, String>,
    /// The claim holding the username. Default `sub`.
    #[serde(default = "default_username_claim")]
    pub username_claim: String,
    /// Prepended to the username. Unset: `{issuer}#` (e.g. `https://idp.example#1234`), except
    /// for the `email` claim, which is used as is. `-` disables the prefix. With the `email`
    /// claim, a token whose `email_verified` is present but not `true` is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_prefix: Option<String>,
    /// The claim holding the groups: a string or an array of strings. Unset: no groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups_claim: Option<String>,
    /// Prepended to every group. Unset: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups_prefix: Option<String>,
    /// How often the discovery document and JWKS are fetched again, so withdrawn keys stop
    /// working. Traffic drives it: a request finding the keys older than this is served from
    /// them while they are refetched in the background; one finding them older than twice this
    /// waits for the refetch. So a withdrawn key is refused at most two intervals later.
    /// Default `1h`.
    #[serde(default = "default_refresh")]
    pub jwks_refresh_interval: Duration,
    /// A token with an unknown `kid` triggers a refetch (a rotated key), at most once per this
    /// interval, so a flood of made-up `kid`s cannot hammer the provider. Default `10s`.
    #[serde(default = "default_min_refetch")]
    pub min_refetch_interval: Duration,
    /// PEM CA certificates trusted for the issuer's TLS, instead of the system's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Allows a plain `http://` issuer (and JWKS) on a loopback IP address (127.0.0.0/8, ::1)
    /// only. For tests and local development; never in production. Default `false`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure_http_for_loopback: bool,
}

impl IssuerConfig {
    /// An issuer with every optional setting at its default.
    pub fn new(issuer: impl Into<String>, audiences: Vec<String>) -> Self {
        IssuerConfig {
            issuer: issuer.into(),
            audiences,
            algorithms: default_algorithms(),
            leeway: default_leeway(),
            required_claims: BTreeMap::new(),
            username_claim: default_username_claim(),
            username_prefix: None,
            groups_claim: None,
            groups_prefix: None,
            jwks_refresh_interval: default_refresh(),
            min_refetch_interval: default_min_refetch(),
            ca_file: None,
            insecure_http_for_loopback: false,
        }
    }
}

fn default_cache_entries() -> usize {
    DEFAULT_TOKEN_CACHE_ENTRIES
}

fn default_algorithms() -> Vec<Algorithm> {
    Algorithm::DEFAULT.to_vec()
}

fn default_leeway() -> Duration {
    Duration::from_secs(60)
}

fn default_username_claim() -> String {
    "sub".to_owned()
}

fn default_refresh() -> Duration {
    Duration::from_secs(3600)
}

fn default_min_refetch() -> Duration {
    Duration::from_secs(10)
}

/// One thing wrong with an [`OidcConfig`]: `field` is relative to it (`issuers[0].audiences`),
/// so the gateway prefixes its own path (`auth.oidc.`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl OidcConfig {
    /// Every problem found; empty when the config is usable. Does no IO (`ca_file` is read when
    /// the authenticator is built).
    pub fn validate(&self) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        let mut push = |field: String, message: String| {
            problems.push(ConfigProblem { field, message });
        };
        if self.issuers.is_empty() {
            push(
                "issuers".to_owned(),
                "list at least one issuer, or remove the oidc section".to_owned(),
            );
        }
        if self.token_cache_entries > MAX_TOKEN_CACHE_ENTRIES {
            push(
                "token_cache_entries".to_owned(),
                format!(
                    "{} is more than {MAX_TOKEN_CACHE_ENTRIES}",
                    self.token_cache_entries
                ),
            );
        }
        let mut seen = HashSet::new();
        for (index, issuer) in self.issuers.iter().enumerate() {
            let field = |name: &str| format!("issuers[{index}].{name}");
            if !seen.insert(issuer.issuer.as_str()) {
                push(
                    field("issuer"),
                    format!("{:?} is listed twice", issuer.issuer),
                );
            }
            for problem in issuer.validate() {
                push(field(&problem.field), problem.message);
            }
        }
        if let Some(login) = &self.login {
            for problem in login.validate(&self.issuers) {
                push(format!("login.{}", problem.field), problem.message);
            }
        }
        problems
    }
}

/// A config that cannot be used: every problem found, one per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct InvalidConfig(pub Vec<ConfigProblem>);

impl IssuerConfig {
    /// Every problem of this issuer's settings, `field` relative to it (`audiences`).
    pub fn validate(&self) -> Vec<ConfigProblem> {
        self.problems()
            .into_iter()
            .map(|(field, message)| ConfigProblem {
                field: field.to_owned(),
                message,
            })
            .collect()
    }

    fn problems(&self) -> Vec<(&'static str, String)> {
        let mut found = Vec::new();
        if let Err(why) = check_url(&self.issuer, self.insecure_http_for_loopback) {
            found.push(("issuer", why));
        } else if self.issuer.contains(['?', '#']) {
            found.push((
                "issuer",
                "an issuer URL has no query or fragment (OpenID Connect Discovery §3)".to_owned(),
            ));
        }
        if self.audiences.is_empty() {
            found.push((
                "audiences",
                "list at least one audience: accepting tokens meant for any client would let \
                 every application of the provider into the clusters"
                    .to_owned(),
            ));
        }
        if self.audiences.iter().any(String::is_empty) {
            found.push(("audiences", "an audience is empty".to_owned()));
        }
        if self.algorithms.is_empty() {
            found.push((
                "algorithms",
                "list at least one algorithm, or omit it for [RS256, ES256]".to_owned(),
            ));
        }
        if self.leeway > MAX_LEEWAY {
            found.push((
                "leeway",
                format!("{} is more than {MAX_LEEWAY}", self.leeway),
            ));
        }
        if self.required_claims.keys().any(String::is_empty) {
            found.push(("required_claims", "a claim name is empty".to_owned()));
        }
        if self.username_claim.is_empty() {
            found.push((
                "username_claim",
                "must not be empty (default sub)".to_owned(),
            ));
        }
        if self.username_prefix.as_deref() == Some("") {
            found.push((
                "username_prefix",
                "is empty: write \"-\" for no prefix, or omit it for the default".to_owned(),
            ));
        }
        if self.groups_claim.as_deref() == Some("") {
            found.push(("groups_claim", "is empty: omit it for no groups".to_owned()));
        }
        if self.groups_prefix.as_deref() == Some("") {
            found.push((
                "groups_prefix",
                "is empty: omit it for no prefix".to_owned(),
            ));
        }
        for (name, prefix) in [
            ("username_prefix", &self.username_prefix),
            ("groups_prefix", &self.groups_prefix),
        ] {
            if prefix.as_deref().is_some_and(|p| p.starts_with("system:")) {
                found.push((
                    name,
                    "must not start with \"system:\", which Kubernetes reserves".to_owned(),
                ));
            }
        }
        if self.jwks_refresh_interval.is_zero() {
            found.push(("jwks_refresh_interval", "must be more than 0s".to_owned()));
        } else if self.jwks_refresh_interval < self.min_refetch_interval {
            found.push((
                "jwks_refresh_interval",
                format!(
                    "{} is shorter than min_refetch_interval ({})",
                    self.jwks_refresh_interval, self.min_refetch_interval
                ),
            ));
        }
        if self
            .ca_file
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            found.push((
                "ca_file",
                "is empty: omit it for the system roots".to_owned(),
            ));
        }
        found
    }
}

/// Checks that `url` may be fetched: `https://`, or `http://` on a loopback IP address when
/// `insecure_http_for_loopback` allows it. Used for the issuer and for the `jwks_uri` and
/// endpoints its discovery document names.
pub fn check_url(url: &str, insecure_http_for_loopback: bool) -> Result<http::Uri, String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    let host = match (uri.scheme_str(), uri.host()) {
        (Some(_), Some(host)) if !host.is_empty() => host,
        _ => return Err(format!("{url:?} is not an absolute URL")),
    };
    match uri.scheme_str() {
        Some("https") => Ok(uri),
        Some("http") if insecure_http_for_loopback => {
            let ip = host.trim_start_matches('[').trim_end_matches(']');
            if ip.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()) {
                Ok(uri)
            } else {
                Err(format!(
                    "{url:?}: insecure_http_for_loopback allows plain http only on a loopback \
                     IP address (127.0.0.1, ::1)"
                ))
            }
        }
        Some("http") => Err(format!(
            "{url:?} is plain http: tokens and keys need https (insecure_http_for_loopback \
             allows http on 127.0.0.1 for tests)"
        )),
        _ => Err(format!("{url:?}: only https URLs are supported")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<OidcConfig, String> {
        serde_norway::from_str(yaml).map_err(|e| e.to_string())
    }

    fn problems(yaml: &str) -> Vec<String> {
        parse(yaml)
            .expect("parses")
            .validate()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn minimal_config_gets_the_defaults() {
        let config =
            parse("issuers:\n- issuer: https://idp.example\n  audiences: [podgate]\n").expect("ok");
        assert_eq!(
            config,
            OidcConfig::new(vec![IssuerConfig::new(
                "https://idp.example",
                vec!["podgate".to_owned()]
            )])
        );
        let issuer = &config.issuers[0];
        assert_eq!(issuer.algorithms, [Algorithm::RS256, Algorithm::ES256]);
        assert_eq!(issuer.leeway, Duration::from_secs(60));
        assert_eq!(issuer.username_claim, "sub");
        assert_eq!(issuer.jwks_refresh_interval, Duration::from_secs(3600));
        assert_eq!(issuer.min_refetch_interval, Duration::from_secs(10));
        assert_eq!(config.token_cache_entries, 10_000);
        assert!(!issuer.insecure_http_for_loopback);
        assert!(config.validate().is_empty());
    }

    #[test]
    fn full_config_round_trips() {
        let yaml = "\
issuers:
- issuer: https://login.example.com/realms/eng
  audiences:
  - podgate
  - kubernetes
  algorithms:
  - ES384
  - EdDSA
  leeway: 30s
  required_claims:
    hd: example.com
  username_claim: email
  username_prefix: '-'
  groups_claim: groups
  groups_prefix: 'oidc:'
  jwks_refresh_interval: 30m
  min_refetch_interval: 5s
  ca_file: /etc/podgate/idp-ca.pem
token_cache_entries: 500
";
        let config = parse(yaml).expect("parses");
        assert!(config.validate().is_empty(), "{:?}", config.validate());
        assert_eq!(serde_norway::to_string(&config).ok().as_deref(), Some(yaml));
    }

    #[test]
    fn unknown_fields_and_unsafe_algorithms_are_refused() {
        let base = "issuers:\n- issuer: https://idp.example\n  audiences: [podgate]\n";
        let typo = parse(&format!("{base}  username_claims: email\n")).unwrap_err();
        assert!(typo.contains("unknown field `username_claims`"), "{typo}");
        let none = parse(&format!("{base}  algorithms: [RS256, none]\n")).unwrap_err();
        assert!(none.contains("never accepted"), "{none}");
        let hs = parse(&format!("{base}  algorithms: [HS256]\n")).unwrap_err();
        assert!(hs.contains("never accepted"), "{hs}");
        let top = parse(&format!("{base}cache: 1\n")).unwrap_err();
        assert!(top.contains("unknown field `cache`"), "{top}");
    }

    #[test]
    fn validation_names_every_problem() {
        let found = problems(
            "\
issuers:
- issuer: http://idp.example
  audiences: []
  algorithms: []
  leeway: 10m
  username_claim: ''
  username_prefix: ''
  groups_claim: ''
  groups_prefix: 'system:'
  jwks_refresh_interval: 1s
  ca_file: ''
- issuer: https://idp.example?x=1
  audiences: ['']
  required_claims: {'': x}
  groups_prefix: ''
  jwks_refresh_interval: 0s
- issuer: https://a.example
  audiences: [a]
- issuer: https://a.example
  audiences: [a]
token_cache_entries: 2000000
",
        );
        let expected = [
            "token_cache_entries: 2000000 is more than 1000000",
            "issuers[0].issuer: \"http://idp.example\" is plain http",
            "issuers[0].audiences: list at least one audience",
            "issuers[0].algorithms: list at least one algorithm",
            "issuers[0].leeway: 10m is more than 5m",
            "issuers[0].username_claim: must not be empty",
            "issuers[0].username_prefix: is empty: write \"-\"",
            "issuers[0].groups_claim: is empty",
            "issuers[0].groups_prefix: must not start with \"system:\"",
            "issuers[0].jwks_refresh_interval: 1s is shorter than min_refetch_interval (10s)",
            "issuers[0].ca_file: is empty",
            "issuers[1].issuer: an issuer URL has no query or fragment",
            "issuers[1].audiences: an audience is empty",
            "issuers[1].required_claims: a claim name is empty",
            "issuers[1].groups_prefix: is empty",
            "issuers[1].jwks_refresh_interval: must be more than 0s",
            "issuers[3].issuer: \"https://a.example\" is listed twice",
        ];
        for want in expected {
            assert!(
                found.iter().any(|p| p.starts_with(want)),
                "missing {want:?} in {found:#?}"
            );
        }
        assert_eq!(found.len(), expected.len(), "{found:#?}");
        assert!(problems("issuers: []\n")[0].starts_with("issuers: list at least one issuer"));
    }

    #[test]
    fn urls_need_https_or_explicit_loopback_http() {
        assert!(check_url("https://idp.example/realms/x", false).is_ok());
        assert!(check_url("http://127.0.0.1:5556", true).is_ok());
        assert!(check_url("http://127.9.9.9/x", true).is_ok());
        assert!(check_url("http://[::1]:8080", true).is_ok());
        assert!(check_url("http://127.0.0.1:5556", false).is_err());
        for (url, flag) in [
            ("http://localhost:5556", true),
            ("http://10.0.0.1", true),
            ("http://idp.example", true),
            ("ftp://idp.example", true),
            ("/relative", true),
            ("idp.example", false),
            ("", false),
            ("https://", false),
        ] {
            assert!(check_url(url, flag).is_err(), "{url}");
        }
    }
}
