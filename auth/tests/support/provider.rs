//! Runs panva's `oidc-provider` (installed by `scripts/setup.sh` from the lockfile in
//! `tests/oidc-provider/`) as a child process on 127.0.0.1, signing with keys the test made.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use podgate_auth::oidc::HttpClient;
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
/// The resource indicator: provider-issued access tokens carry it as `aud`.
pub const RESOURCE: &str = "https://podgate.test";

const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Where the provider script lives (this file is shared by the auth and gateway crates).
pub fn provider_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../auth/tests/oidc-provider")
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
    if !super::keys::available(node, "node (for the oidc-provider tests)") {
        return false;
    }
    let installed = provider_dir()
        .join("node_modules/oidc-provider/package.json")
        .exists();
    super::keys::available(
        installed,
        "oidc-provider under auth/tests/oidc-provider/node_modules (run scripts/setup.sh)",
    )
}

/// How a gateway under test trusts this provider: ID tokens for the login client and access
/// tokens for the resource, groups from `groups`, user names as they are (prefix `-`).
#[allow(dead_code)]
pub fn issuer_config(issuer: &str) -> podgate_auth::oidc::IssuerConfig {
    let mut config = podgate_auth::oidc::IssuerConfig::new(
        issuer.to_owned(),
        vec![LOGIN_CLIENT_ID.to_owned(), RESOURCE.to_owned()],
    );
    config.insecure_http_for_loopback = true;
    config.groups_claim = Some("groups".to_owned());
    config.username_prefix = Some("-".to_owned());
    config
}

/// A port that was free a moment ago; the provider binds it (and rebinds it on restart, so
/// the issuer URL stays the same).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

pub struct Provider {
    pub issuer: String,
    child: Child,
    keys_file: PathBuf,
}

impl Provider {
    /// Starts the provider on `port`, publishing `keys` (the first RS256 one signs).
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
