//! Runs panva's `oidc-provider` (installed by `scripts/setup.sh` from the lockfile in
//! `auth/tests/oidc-provider/`) as a child process on 127.0.0.1, signing with keys the test
//! made.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use crate::gateway::{Builder, Cluster, Env};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use podgate_auth::login::LoginConfig;
use podgate_auth::oidc::{HttpClient, IssuerConfig, OidcConfig};
use podgate_config::AccessPolicy;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

use super::keys::TestKey;

/// The client the provider script registers (client_credentials, client_secret_post).
pub const CLIENT_ID: &str = "podgate-test";
const CLIENT_SECRET: &str = "podgate-test-secret";
/// The browser-login client (authorization code + refresh token, client_secret_basic).
pub const LOGIN_CLIENT_ID: &str = "podgate-login";
pub const LOGIN_CLIENT_SECRET: &str = "podgate-login-secret";
/// The provider's people: (username, password, groups).
pub const ALICE: (&str, &str, &[&str]) = ("alice", "alice-password", &["dev"]);
pub const BOB: (&str, &str, &[&str]) = ("bob", "bob-password", &["contractors"]);

/// One of the provider's people whose `sub` is not their username: what they log in with and
/// the claims their ID tokens carry.
#[derive(Debug, Clone, Copy)]
pub struct Person {
    pub username: &'static str,
    pub password: &'static str,
    pub sub: &'static str,
    pub groups: &'static [&'static str],
}

impl Person {
    /// (username, password, groups), as [`ALICE`] and [`BOB`] are given.
    pub const fn login(&self) -> (&'static str, &'static str, &'static [&'static str]) {
        (self.username, self.password, self.groups)
    }
}

/// A control character in the user name.
pub const MALLORY: Person = Person {
    username: "mallory",
    password: "mallory-password",
    sub: "mallory\u{7}",
    groups: &["dev"],
};
/// A user name with trailing whitespace: HTTP would deliver `admin`.
pub const PADDED: Person = Person {
    username: "padded",
    password: "padded-password",
    sub: "admin ",
    groups: &["dev"],
};
/// A group with leading whitespace: HTTP would deliver `system:masters`.
pub const EVE: Person = Person {
    username: "eve",
    password: "eve-password",
    sub: "eve",
    groups: &[" system:masters"],
};
/// A group Kubernetes reserves.
pub const TRUDY: Person = Person {
    username: "trudy",
    password: "trudy-password",
    sub: "trudy",
    groups: &["system:masters"],
};
/// Legitimate UTF-8.
pub const ZOE: Person = Person {
    username: "zoe",
    password: "zoe-password",
    sub: "zoë",
    groups: &["dev"],
};

/// The resource indicator: provider-issued access tokens carry it as `aud`.
pub const RESOURCE: &str = "https://podgate.test";

const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Where the provider script lives.
pub fn provider_dir() -> PathBuf {
    crate::repo().join("auth/tests/oidc-provider")
}

/// What the provider is started with besides its keys.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Redirect URIs of the login client (`https://127.0.0.1:PORT/auth/callback`).
    pub redirects: Vec<String>,
    /// ID token lifetime in seconds (default 3600).
    pub id_token_ttl: Option<u64>,
}

/// Whether node and the installed provider are here; prints a note (or panics under CI) if not.
pub fn prerequisites() -> bool {
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !crate::available(node, "node (for the oidc-provider tests)") {
        return false;
    }
    let installed = provider_dir()
        .join("node_modules/oidc-provider/package.json")
        .exists();
    crate::available(
        installed,
        "oidc-provider under auth/tests/oidc-provider/node_modules (run scripts/setup.sh)",
    )
}

/// How a gateway under test trusts this provider: ID tokens for the login client and access
/// tokens for the resource, groups from `groups`, user names as they are (prefix `-`).
pub fn issuer_config(issuer: &str) -> IssuerConfig {
    let mut config = IssuerConfig::new(
        issuer.to_owned(),
        vec![LOGIN_CLIENT_ID.to_owned(), RESOURCE.to_owned()],
    );
    config.insecure_http_for_loopback = true;
    config.groups_claim = Some("groups".to_owned());
    config.username_prefix = Some("-".to_owned());
    config
}

/// The gateway's `auth.oidc` for the provider at `issuer`: [`issuer_config`], changed by
/// `tune`, and the browser login as the login client (its secret given inline).
pub fn oidc_config(issuer: &str, tune: impl FnOnce(&mut IssuerConfig)) -> OidcConfig {
    let mut config = issuer_config(issuer);
    tune(&mut config);
    let mut oidc = OidcConfig::new(vec![config]);
    let mut login = LoginConfig::new(issuer.to_owned(), LOGIN_CLIENT_ID);
    login.client_secret = Some(LOGIN_CLIENT_SECRET.to_owned());
    oidc.login = Some(login);
    oidc
}

/// A gateway that trusts only `oidc` (bearer tokens and the browser login), in front of
/// cluster `old` whose edge policy admits group `dev` only; and the provider's options with
/// the gateway's callback registered (so the gateway listens first) and `id_token_ttl`.
pub async fn gateway(oidc: &OidcConfig, id_token_ttl: Option<u64>) -> (Env, Options) {
    gateway_from(dev_only(), oidc, id_token_ttl).await
}

/// The gateway [`gateway`] starts, before its OIDC: cluster `old`, whose edge policy admits
/// group `dev` only.
pub fn dev_only() -> Builder {
    let policy = AccessPolicy {
        groups: vec!["dev".into()],
        ..Default::default()
    };
    Builder::new().cluster(Cluster::new("old").access(policy))
}

/// [`gateway`] from `builder` (its clusters, sessions, audit, ...) instead of [`dev_only`]:
/// it trusts only `oidc`.
pub async fn gateway_from(
    builder: Builder,
    oidc: &OidcConfig,
    id_token_ttl: Option<u64>,
) -> (Env, Options) {
    let env = builder.oidc(oidc).start().await;
    let options = Options {
        redirects: vec![format!("{}/auth/callback", env.url())],
        id_token_ttl,
    };
    (env, options)
}

pub struct Provider {
    pub issuer: String,
    child: Child,
    keys_file: PathBuf,
}

impl Provider {
    /// Starts the provider on `port` (from [`crate::free_port`]; it rebinds it on a restart,
    /// so the issuer URL stays the same), publishing `keys` (the first RS256 one signs).
    pub async fn start(port: u16, keys: &[&TestKey]) -> Provider {
        Self::start_with(port, keys, &Options::default()).await
    }

    /// [`start`](Self::start) with a login client redirecting to `options.redirects`.
    pub async fn start_with(port: u16, keys: &[&TestKey], options: &Options) -> Provider {
        let keys_file = std::env::temp_dir().join(format!(
            "podgate-oidc-keys-{}-{port}-{}.json",
            std::process::id(),
            keys.iter()
                .map(|k| k.kid.as_str())
                .collect::<Vec<_>>()
                .join("-")
        ));
        let document: Vec<Value> = keys
            .iter()
            .map(|k| json!({"kid": k.kid, "alg": k.alg, "pkcs8": STANDARD.encode(k.pkcs8())}))
            .collect();
        std::fs::write(&keys_file, Value::Array(document).to_string()).expect("writes keys");

        let mut command = Command::new("node");
        command
            .arg("provider.mjs")
            .arg("--port")
            .arg(port.to_string())
            .arg("--keys")
            .arg(&keys_file);
        for redirect in &options.redirects {
            command.arg("--redirect").arg(redirect);
        }
        if let Some(ttl) = options.id_token_ttl {
            command.arg("--id-token-ttl").arg(ttl.to_string());
        }
        let mut child = command
            .current_dir(provider_dir())
            // The script exits when stdin closes, so it cannot outlive the test.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("starts node");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(START_TIMEOUT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(issuer) = line.strip_prefix("READY ") {
                    return Some(issuer.to_owned());
                }
            }
            None
        })
        .await;
        let issuer = match ready {
            Ok(Some(issuer)) => issuer,
            _ => {
                let _ = child.start_kill();
                let mut stderr = String::new();
                if let Some(mut err) = child.stderr.take() {
                    let _ = tokio::time::timeout(
                        Duration::from_secs(2),
                        err.read_to_string(&mut stderr),
                    )
                    .await;
                }
                panic!("oidc-provider did not start on port {port}:\n{stderr}");
            }
        };
        assert_eq!(issuer, format!("http://127.0.0.1:{port}"));
        // Keep draining its output so a chatty provider never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(_)) = lines.next_line().await {}
            });
        }
        Provider {
            issuer,
            child,
            keys_file,
        }
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
        let _ = std::fs::remove_file(&self.keys_file);
    }

    /// The provider's token endpoint answer (`id_token`, `refresh_token`, ...) for an
    /// authorization code issued to the login client, exchanged as the gateway would
    /// (client_secret_basic, the PKCE verifier): the provider's tokens as they are, whatever
    /// the gateway would make of them.
    pub async fn exchange_code(&self, code: &str, redirect_uri: &str, verifier: &str) -> Value {
        let http = HttpClient::new(Arc::new(rustls::RootCertStore::empty()), true).expect("client");
        http.post_form_json(
            &format!("{}/token", self.issuer),
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", redirect_uri),
                ("code_verifier", verifier),
            ],
            Some((LOGIN_CLIENT_ID, LOGIN_CLIENT_SECRET)),
        )
        .await
        .expect("the provider exchanges the code")
    }

    /// An access token from the provider's token endpoint (client_credentials, resource
    /// indicator), fetched with podgate's own HTTP client.
    pub async fn access_token(&self) -> String {
        let http = HttpClient::new(Arc::new(rustls::RootCertStore::empty()), true).expect("client");
        let answer: Value = http
            .post_form_json(
                &format!("{}/token", self.issuer),
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", CLIENT_ID),
                    ("client_secret", CLIENT_SECRET),
                    ("resource", RESOURCE),
                    ("scope", "shell"),
                ],
                None,
            )
            .await
            .expect("the provider issues a token");
        answer["access_token"]
            .as_str()
            .expect("an access_token")
            .to_owned()
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_file(&self.keys_file);
    }
}
