//! Access ends when the right to it ends, at a reload of `podgate serve`: a session opened with
//! a static token that is removed from the tokens file, or whose cluster's `access` no longer
//! admits its person (or its namespace), ends within seconds with the reason on kubectl's
//! stderr and an audit line; sessions the change leaves their right keep running.

use podgate_testkit::kubectl;
use podgate_testkit::serve::{
    self, ADMIN, ALICE, BOB, Config, Files, Held, OneCluster, Serve, json_line, json_lines,
};
use std::path::Path;
use std::time::Duration;

const PODGATE: &str = env!("CARGO_BIN_EXE_podgate");

/// How long a revoked session may outlive the change (podgate looks at its files every 2 s).
const ENDS: Duration = Duration::from_secs(10);

/// `podgate serve` in front of devcluster `east`, auditing to `audit.jsonl`; `None` (skip)
/// without kubectl.
async fn start() -> Option<OneCluster> {
    if !kubectl::available() {
        return None;
    }
    let audit = |c: Config| c.set("audit", "{output: audit.jsonl}");
    Some(serve::one_cluster(Path::new(PODGATE), audit).await)
}

/// Alice's session in `default` (quiet), and admin's, which echoes what it is sent.
async fn alice_and_admin(gw: &Serve) -> (Held, Held) {
    let alice = gw.kubectl("east", ALICE.token);
    let admin = gw.kubectl("east", ADMIN.token);
    (
        Held::open(&alice, "default", "shell-0", "sleep 600").await,
        Held::open(&admin, "default", "shell-0", "cat").await,
    )
}

/// Whether `l` is the audit line of the end of `user`'s session in `namespace`.
fn end_of(l: &serde_json::Value, user: &str, namespace: &str) -> bool {
    l["event"] == "session_end" && l["user"] == user && l["namespace"] == namespace
}

/// The `session_end` audit line of `user`'s session in `namespace`, once written.
async fn audited_end(files: &Files, user: &str, namespace: &str) -> serde_json::Value {
    let what = format!("the end of {user}'s session in {namespace}");
    json_line(&files.path("audit.jsonl"), ENDS, &what, |l| {
        end_of(l, user, namespace)
    })
    .await
}

/// Checks that `session`, `user`'s in `namespace`, ended because its access was revoked, and
/// that kubectl and the audit line both say `told`.
async fn assert_revoked(files: &Files, session: Held, user: &str, namespace: &str, told: &str) {
    let out = session.ended(ENDS).await;
    out.assert_fails_saying(&[told], &format!("{user}'s session in {namespace}"));
    let end = audited_end(files, user, namespace).await;
    assert_eq!(
        (end["close_reason"].as_str(), end["message"].as_str()),
        (Some("access_revoked"), Some(told)),
        "{end}"
    );
}

/// Whether any session of `user` in `namespace` has ended, by the audit file.
fn ended(files: &Files, user: &str, namespace: &str) -> bool {
    json_lines(&files.path("audit.jsonl"))
        .iter()
        .any(|l| end_of(l, user, namespace))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_token_ends_the_sessions_opened_with_it() {
    let Some(site) = start().await else { return };
    let (gw, files) = (&site.gw, &site.files);
    let (alice, mut admin) = alice_and_admin(gw).await;

    let reload = gw.reload(|| files.write_tokens(&[ADMIN, BOB])).await;
    assert!(
        reload.contains("static tokens: 2") && reload.contains("sessions_ended=1"),
        "{reload}"
    );
    let revoked = "podgate: session closed: the token it was opened with was revoked";
    assert_revoked(files, alice, "alice", "default", revoked).await;
    // The session of a token still in the file relays as before.
    admin.echoes("still relayed after the reload").await;
    assert!(
        !ended(files, "admin", "default"),
        "admin's session ended too"
    );
    // The removed token opens nothing any more.
    let out = gw
        .kubectl("east", ALICE.token)
        .run(&["get", "pods"], b"")
        .await;
    out.assert_fails_saying(&["Unauthorized", "must be logged in"], "alice's token");
    admin.echoes("and after that").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_access_policy_that_no_longer_admits_a_person_ends_their_sessions() {
    let Some(site) = start().await else { return };
    let (gw, files) = (&site.gw, &site.files);
    let (alice, mut admin) = alice_and_admin(gw).await;

    let admins_only = site.config.clone().access("east", "{users: [admin]}");
    let reload = gw.reload(|| files.write_config(&admins_only)).await;
    assert!(
        reload.contains("rebuilt east") && reload.contains("sessions_ended=1"),
        "{reload}"
    );
    let revoked = "podgate: session closed: access was revoked: user \"alice\" may not \
                   use cluster \"east\" (not among its allowed users or groups)";
    assert_revoked(files, alice, "alice", "default", revoked).await;
    admin.echoes("still relayed after the reload").await;
    assert!(
        !ended(files, "admin", "default"),
        "admin's session ended too"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn narrowing_the_namespaces_ends_sessions_outside_them() {
    let Some(site) = start().await else { return };
    let (gw, files) = (&site.gw, &site.files);
    let admin = gw.kubectl("east", ADMIN.token);
    let outside = Held::open(&admin, "default", "shell-0", "sleep 600").await;
    let mut inside = Held::open(&admin, "shop", "web-0", "cat").await;

    let shop_only = site.config.clone().access("east", "{namespaces: [shop]}");
    let reload = gw.reload(|| files.write_config(&shop_only)).await;
    assert!(reload.contains("sessions_ended=1"), "{reload}");
    let revoked = "podgate: session closed: access was revoked: cluster \"east\" is \
                   open to user \"admin\" only in namespaces [\"shop\"], not namespace \"default\"";
    assert_revoked(files, outside, "admin", "default", revoked).await;
    inside.echoes("shop is still open").await;
    assert!(!ended(files, "admin", "shop"), "the session in shop ended");
}
