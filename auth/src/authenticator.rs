//! Turning a bearer token into an [`Identity`]: the [`Authenticator`] trait, the static tokens
//! authenticator, and a [`Chain`] that tries several in order (static tokens, then OIDC, ...).

use std::fmt;
use std::future::{self, Future};
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};

use podgate_config::ConfigError;

use crate::identity::Identity;
use crate::tokens::{TokenDigest, TokenTable, load_tokens};

/// A token that authenticated: who it is, and what can end that.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    pub identity: Identity,
    /// Unix seconds from which the token is no longer valid (an OIDC token's `exp`); `None` for
    /// credentials that do not expire by themselves (static tokens). A session opened with the
    /// token must not outlive it.
    pub expires_at: Option<u64>,
    /// For a static token: its digest, which a reload of the tokens file looks up to tell a
    /// live session whether its token was revoked.
    pub static_token: Option<TokenDigest>,
}

impl Authenticated {
    /// An identity that holds until its authenticator says otherwise.
    pub fn lasting(identity: Identity) -> Authenticated {
        Authenticated {
            identity,
            expires_at: None,
            static_token: None,
        }
    }
}

/// The future an [`Authenticator`] returns. Boxed so the trait stays object safe: the gateway
/// holds its authenticators as `Arc<dyn Authenticator>`, chosen at runtime from the config.
pub type AuthFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Authenticated, AuthError>> + Send + 'a>>;

/// Something that can tell who a bearer token belongs to.
pub trait Authenticator: Send + Sync + 'static {
    /// Verifies a bearer token. Returns Err(AuthError::Unknown) when this authenticator does not
    /// recognise it, so a chain can try the next.
    fn authenticate<'a>(&'a self, token: &'a str) -> AuthFuture<'a>;

    /// A short, fixed name for logs and metric labels (`"static_tokens"`, `"oidc"`).
    fn name(&self) -> &'static str;

    /// The static token whose digest is `digest`, if this authenticator holds it now: how a
    /// browser session from the token login (whose cookie carries the digest, never the
    /// token) is authenticated on each request, so it ends when the token is removed. Only
    /// [`StaticTokens`] (and a [`Chain`] holding one) answers anything but `Unknown`.
    fn authenticate_digest<'a>(&'a self, digest: &'a TokenDigest) -> AuthFuture<'a> {
        let _ = digest;
        Box::pin(future::ready(Err(AuthError::Unknown)))
    }
}

/// Why a token did not authenticate.
///
/// Authenticators must never put the token, or any part of it, in `detail` or `Unavailable`'s
/// message: these end up in logs and responses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Not a token this authenticator (or any in a chain) knows. Answer 401.
    #[error(
        "token not recognised: check that it is current and was issued for this gateway, and \
         sign in again if it was"
    )]
    Unknown,
    /// Recognised but not valid: expired, revoked, wrong audience, bad signature. Answer 401;
    /// `reason` is a bounded label (`"expired"`), `detail` a message for the user.
    #[error("token rejected: {detail}")]
    Rejected {
        reason: &'static str,
        detail: String,
    },
    /// The authenticator could not decide because something it depends on is down (identity
    /// provider, JWKS endpoint). Answer 503: the token may well be fine.
    #[error("authentication is unavailable, try again shortly: {0}")]
    Unavailable(String),
}

impl AuthError {
    /// A bounded label for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::Unknown => "unknown_token",
            AuthError::Rejected { reason, .. } => reason,
            AuthError::Unavailable(_) => "unavailable",
        }
    }
}

/// Static bearer tokens from a tokens file (see [`crate::parse_tokens`]), for demos,
/// CI and break-glass access.
///
/// The table sits behind a lock so a SIGHUP or file watch can [`reload`](Self::reload) it while
/// requests are being served: revoking a token should not need a restart, which would cut every
/// open shell.
pub struct StaticTokens {
    /// `Arc` so a lookup holds the read lock only long enough to clone a pointer, never while
    /// comparing tokens, and a reload never waits on lookups.
    table: RwLock<Arc<TokenTable>>,
}

impl StaticTokens {
    pub fn new(table: TokenTable) -> Self {
        StaticTokens {
            table: RwLock::new(Arc::new(table)),
        }
    }

    /// Reads the tokens file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        load_tokens(path).map(Self::new)
    }

    /// Replaces the whole table. Requests already authenticated keep their identity; new ones
    /// see only the new table.
    pub fn reload(&self, table: TokenTable) {
        tracing::info!(tokens = table.len(), "static tokens reloaded");
        *self.table.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(table);
    }

    /// Re-reads the tokens file at `path` and swaps it in. On error the current table stays, so a
    /// typo in the file does not lock everyone out.
    pub fn reload_file(&self, path: &Path) -> Result<(), ConfigError> {
        self.reload(load_tokens(path)?);
        Ok(())
    }

    /// How many tokens the current table holds.
    pub fn len(&self) -> usize {
        self.current().len()
    }

    pub fn is_empty(&self) -> bool {
        self.current().is_empty()
    }

    /// The table in force now. A poisoned lock still holds a whole table (writers only swap an
    /// `Arc`), so poisoning is ignored rather than turned into an outage.
    fn current(&self) -> Arc<TokenTable> {
        Arc::clone(&self.table.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn lookup(&self, token: &str) -> Result<Authenticated, AuthError> {
        // TokenTable::lookup compares in constant time; clone out so no borrow outlives the Arc.
        let identity = self
            .current()
            .lookup(token)
            .cloned()
            .ok_or(AuthError::Unknown)?;
        Ok(Authenticated {
            identity,
            expires_at: None,
            static_token: Some(TokenDigest::of(token)),
        })
    }

    fn lookup_digest(&self, digest: &TokenDigest) -> Result<Authenticated, AuthError> {
        let identity = self
            .current()
            .lookup_digest(digest)
            .cloned()
            .ok_or(AuthError::Unknown)?;
        Ok(Authenticated {
            identity,
            expires_at: None,
            static_token: Some(*digest),
        })
    }

    /// Whether the token with `digest` is still in the table and still grants `identity`:
    /// asked for each live session after the tokens file is reloaded.
    pub fn still_grants(&self, digest: &TokenDigest, identity: &Identity) -> bool {
        self.current().lookup_digest(digest) == Some(identity)
    }
}

impl From<TokenTable> for StaticTokens {
    fn from(table: TokenTable) -> Self {
        StaticTokens::new(table)
    }
}

impl fmt::Debug for StaticTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // TokenTable's Debug is redacted already; the count is all a log needs.
        f.debug_struct("StaticTokens")
            .field("tokens", &self.len())
            .finish()
    }
}

impl Authenticator for StaticTokens {
    fn authenticate<'a>(&'a self, token: &'a str) -> AuthFuture<'a> {
        Box::pin(future::ready(self.lookup(token)))
    }

    fn name(&self) -> &'static str {
        "static_tokens"
    }

    fn authenticate_digest<'a>(&'a self, digest: &'a TokenDigest) -> AuthFuture<'a> {
        Box::pin(future::ready(self.lookup_digest(digest)))
    }
}

/// Several authenticators tried in order.
///
/// The first `Ok` wins and `Unknown` moves on to the next. `Rejected` and `Unavailable` stop the
/// chain: a token that one authenticator recognised as its own but found invalid must not be
/// given a second chance elsewhere, and when a backend is down we cannot know whether it would
/// have claimed the token, so the client gets a truthful "unavailable" rather than a guess.
/// An empty chain, or one where everyone says `Unknown`, answers `Unknown`.
#[derive(Clone, Default)]
pub struct Chain(pub Vec<Arc<dyn Authenticator>>);

impl Chain {
    pub fn new(authenticators: Vec<Arc<dyn Authenticator>>) -> Self {
        Chain(authenticators)
    }
}

impl fmt::Debug for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|a| a.name()))
            .finish()
    }
}

impl Authenticator for Chain {
    fn authenticate<'a>(&'a self, token: &'a str) -> AuthFuture<'a> {
        Box::pin(async move {
            for authenticator in &self.0 {
                match authenticator.authenticate(token).await {
                    Ok(authenticated) => {
                        tracing::debug!(
                            authenticator = authenticator.name(),
                            user = %authenticated.identity.user(),
                            "token authenticated"
                        );
                        return Ok(authenticated);
                    }
                    Err(AuthError::Unknown) => continue,
                    Err(error) => {
                        tracing::debug!(
                            authenticator = authenticator.name(),
                            reason = error.reason(),
                            "token refused"
                        );
                        return Err(error);
                    }
                }
            }
            Err(AuthError::Unknown)
        })
    }

    fn name(&self) -> &'static str {
        "chain"
    }

    fn authenticate_digest<'a>(&'a self, digest: &'a TokenDigest) -> AuthFuture<'a> {
        Box::pin(async move {
            for authenticator in &self.0 {
                match authenticator.authenticate_digest(digest).await {
                    Err(AuthError::Unknown) => continue,
                    answer => return answer,
                }
            }
            Err(AuthError::Unknown)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use crate::tokens::parse_tokens;

    use super::*;

    const ALICE_TOKEN: &str = "zq9-alice-SECRET-7xv";
    const BOB_TOKEN: &str = "zq9-bob-SECRET-8yw";

    fn table(yaml: &str) -> TokenTable {
        parse_tokens(Path::new("tokens.yaml"), yaml).expect("test tokens parse")
    }

    fn alice_table() -> TokenTable {
        table(&format!(
            "- token: {ALICE_TOKEN}\n  user: alice\n  groups: [dev]\n"
        ))
    }

    fn bob_table() -> TokenTable {
        table(&format!("- token: {BOB_TOKEN}\n  user: bob\n"))
    }

    fn identity(user: &str, groups: &[&str]) -> Identity {
        Identity::new(user, groups.iter().copied()).expect("valid identity")
    }

    /// What an authenticator answered, as the identity alone.
    async fn who(auth: &dyn Authenticator, token: &str) -> Result<Identity, AuthError> {
        auth.authenticate(token).await.map(|a| a.identity)
    }

    #[tokio::test]
    async fn static_tokens_known_and_unknown() {
        let auth = StaticTokens::new(alice_table());
        assert_eq!(auth.name(), "static_tokens");
        assert_eq!(
            who(&auth, ALICE_TOKEN).await,
            Ok(identity("alice", &["dev"]))
        );
        assert_eq!(who(&auth, BOB_TOKEN).await, Err(AuthError::Unknown));
        assert_eq!(who(&auth, "").await, Err(AuthError::Unknown));
        let debug = format!("{auth:?}");
        assert_eq!(debug, "StaticTokens { tokens: 1 }");
    }

    #[tokio::test]
    async fn reload_swaps_the_table() {
        let auth = StaticTokens::from(alice_table());
        auth.reload(bob_table());
        assert_eq!(who(&auth, ALICE_TOKEN).await, Err(AuthError::Unknown));
        assert_eq!(who(&auth, BOB_TOKEN).await, Ok(identity("bob", &[])));
        auth.reload(TokenTable::default());
        assert!(auth.is_empty());
        assert_eq!(who(&auth, BOB_TOKEN).await, Err(AuthError::Unknown));
    }

    #[tokio::test]
    async fn load_and_reload_file() {
        let dir = std::env::temp_dir().join(format!("podgate-auth-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("tokens.yaml");
        std::fs::write(&path, format!("- token: {ALICE_TOKEN}\n  user: alice\n"))
            .expect("write tokens");
        let auth = StaticTokens::load(&path).expect("loads");
        assert_eq!(auth.len(), 1);
        assert_eq!(
            auth.authenticate(ALICE_TOKEN)
                .await
                .map(|a| a.identity.user().to_string()),
            Ok("alice".to_owned())
        );

        // A broken file keeps the current table, and the error does not show tokens.
        std::fs::write(&path, format!("- token: {BOB_TOKEN}\n")).expect("write tokens");
        let error = auth
            .reload_file(&path)
            .expect_err("missing user is refused");
        assert!(!error.to_string().contains(BOB_TOKEN), "{error}");
        assert_eq!(
            auth.authenticate(ALICE_TOKEN)
                .await
                .map(|a| a.identity.user().to_string()),
            Ok("alice".to_owned())
        );

        std::fs::write(&path, format!("- token: {BOB_TOKEN}\n  user: bob\n"))
            .expect("write tokens");
        auth.reload_file(&path).expect("reloads");
        assert_eq!(who(&auth, ALICE_TOKEN).await, Err(AuthError::Unknown));
        assert_eq!(
            auth.authenticate(BOB_TOKEN)
                .await
                .map(|a| a.identity.user().to_string()),
            Ok("bob".to_owned())
        );

        assert!(StaticTokens::load(&dir.join("missing.yaml")).is_err());
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    /// Answers a fixed result and records that it was asked.
    struct Fixed {
        name: &'static str,
        result: Result<Authenticated, AuthError>,
        calls: Arc<Mutex<Vec<&'static str>>>,
    }

    impl Authenticator for Fixed {
        fn authenticate<'a>(&'a self, _token: &'a str) -> AuthFuture<'a> {
            self.calls
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(self.name);
            Box::pin(future::ready(self.result.clone()))
        }

        fn name(&self) -> &'static str {
            self.name
        }
    }

    fn chain(
        members: Vec<(&'static str, Result<Identity, AuthError>)>,
    ) -> (Chain, Arc<Mutex<Vec<&'static str>>>) {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let members = members
            .into_iter()
            .map(|(name, result)| {
                Arc::new(Fixed {
                    name,
                    result: result.map(Authenticated::lasting),
                    calls: Arc::clone(&calls),
                }) as Arc<dyn Authenticator>
            })
            .collect();
        (Chain::new(members), calls)
    }

    fn called(calls: &Mutex<Vec<&'static str>>) -> Vec<&'static str> {
        calls.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn rejected() -> AuthError {
        AuthError::Rejected {
            reason: "expired",
            detail: "the token expired at 12:00 UTC; sign in again".to_owned(),
        }
    }

    #[tokio::test]
    async fn chain_first_ok_wins() {
        let (chain, calls) = chain(vec![
            ("a", Err(AuthError::Unknown)),
            ("b", Ok(identity("bob", &[]))),
            ("c", Ok(identity("carol", &[]))),
        ]);
        assert_eq!(who(&chain, "t").await, Ok(identity("bob", &[])));
        assert_eq!(called(&calls), ["a", "b"]);
        assert_eq!(chain.name(), "chain");
        assert_eq!(format!("{chain:?}"), r#"["a", "b", "c"]"#);
    }

    #[tokio::test]
    async fn chain_stops_at_rejected() {
        let (chain, calls) = chain(vec![
            ("a", Err(AuthError::Unknown)),
            ("b", Err(rejected())),
            ("c", Ok(identity("carol", &[]))),
        ]);
        assert_eq!(who(&chain, "t").await, Err(rejected()));
        assert_eq!(called(&calls), ["a", "b"]);
    }

    #[tokio::test]
    async fn chain_stops_at_unavailable() {
        let down = AuthError::Unavailable("the identity provider did not answer".to_owned());
        let (chain, calls) = chain(vec![
            ("a", Err(down.clone())),
            ("b", Ok(identity("bob", &[]))),
        ]);
        assert_eq!(who(&chain, "t").await, Err(down));
        assert_eq!(called(&calls), ["a"]);
    }

    #[tokio::test]
    async fn chain_all_unknown_is_unknown() {
        let (chain, calls) = chain(vec![
            ("a", Err(AuthError::Unknown)),
            ("b", Err(AuthError::Unknown)),
        ]);
        assert_eq!(who(&chain, "t").await, Err(AuthError::Unknown));
        assert_eq!(called(&calls), ["a", "b"]);
        assert_eq!(who(&Chain::default(), "t").await, Err(AuthError::Unknown));
    }

    #[tokio::test]
    async fn digests_authenticate_while_the_token_is_in_the_table() {
        let chain = Chain::new(vec![
            Arc::new(StaticTokens::new(bob_table())),
            Arc::new(StaticTokens::new(alice_table())),
        ]);
        let digest = TokenDigest::of(ALICE_TOKEN);
        let found = chain.authenticate_digest(&digest).await;
        assert_eq!(
            found.as_ref().map(|a| a.identity.clone()),
            Ok(identity("alice", &["dev"]))
        );
        assert_eq!(found.map(|a| a.static_token), Ok(Some(digest)));
        let unknown = TokenDigest::of("not-a-token-here");
        assert_eq!(
            chain.authenticate_digest(&unknown).await,
            Err(AuthError::Unknown)
        );
        let tokens = StaticTokens::new(alice_table());
        tokens.reload(bob_table());
        assert_eq!(
            tokens.authenticate_digest(&digest).await,
            Err(AuthError::Unknown)
        );
    }

    #[tokio::test]
    async fn chain_of_static_tokens() {
        let chain = Chain::new(vec![
            Arc::new(StaticTokens::new(alice_table())),
            Arc::new(StaticTokens::new(bob_table())),
        ]);
        assert_eq!(
            chain
                .authenticate(BOB_TOKEN)
                .await
                .map(|a| a.identity.user().to_string()),
            Ok("bob".to_owned())
        );
        assert_eq!(
            chain
                .authenticate(ALICE_TOKEN)
                .await
                .map(|a| a.identity.user().to_string()),
            Ok("alice".to_owned())
        );
        assert_eq!(who(&chain, "nobody-at-all").await, Err(AuthError::Unknown));
    }

    #[test]
    fn error_reasons_and_messages_hide_the_token() {
        let errors = [
            AuthError::Unknown,
            rejected(),
            AuthError::Unavailable("jwks fetch failed: connection refused".to_owned()),
        ];
        let reasons: Vec<_> = errors.iter().map(AuthError::reason).collect();
        assert_eq!(reasons, ["unknown_token", "expired", "unavailable"]);
        for error in &errors {
            for shown in [error.to_string(), format!("{error:?}")] {
                assert!(!shown.contains(ALICE_TOKEN), "{shown}");
                assert!(!shown.contains("SECRET"), "{shown}");
            }
        }
        assert_eq!(
            rejected().to_string(),
            "token rejected: the token expired at 12:00 UTC; sign in again"
        );
    }
}
