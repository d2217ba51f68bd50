//! Impersonation over real HTTP, with header bytes written by hand: UTF-8 names travel
//! byte-exact, and whatever cannot be read refuses the request instead of running it as the
//! caller.

use podgate_protocol::Status;
use podgate_testkit::devcluster::{ADMIN, Env, PODGATE as GATEWAY, start};
use podgate_testkit::http;
const EXEC: &str = "/api/v1/namespaces/default/pods/shell-0/exec?command=true";
const PODS: &str = "/api/v1/namespaces/default/pods";

/// Sends `GET path` with these headers, their values as raw bytes; returns the status code and
/// the body's `Status` (`None` for a success body).
async fn get(env: &Env, path: &str, headers: &[(&str, &[u8])]) -> (u16, Option<Status>) {
    let mut head =
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n").into_bytes();
    for (name, value) in headers {
        head.extend_from_slice(name.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value);
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    let answer = http::send(env, &head).await;
    let status = serde_json::from_str::<Status>(&answer.body)
        .ok()
        .filter(|s| s.status == "Failure");
    (answer.code, status)
}

fn bearer(token: &str) -> Vec<u8> {
    format!("Bearer {token}").into_bytes()
}

fn message(s: &Option<Status>) -> &str {
    s.as_ref().and_then(|s| s.message.as_deref()).unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn utf8_names_are_impersonated_byte_exact() {
    let env = start().await;
    let gw = bearer(GATEWAY);
    // The gateway may impersonate anyone; "zoë" may not exec, and the 403 names her exactly.
    let (code, s) = get(
        &env,
        EXEC,
        &[
            ("Authorization", &gw),
            ("Impersonate-User", "zoë".as_bytes()),
        ],
    )
    .await;
    assert_eq!(code, 403, "{s:?}");
    assert_eq!(
        message(&s),
        r#"pods "shell-0" is forbidden: User "zoë" cannot get resource "pods/exec" in API group "" in the namespace "default""#
    );
    assert_eq!(
        s.as_ref().and_then(|s| s.reason.as_deref()),
        Some("Forbidden")
    );

    let (code, s) = get(
        &env,
        PODS,
        &[
            ("Authorization", &gw),
            ("Impersonate-User", "用户".as_bytes()),
        ],
    )
    .await;
    assert_eq!(code, 403);
    assert_eq!(
        message(&s),
        r#"pods is forbidden: User "用户" cannot list resource "pods" in API group "" in the namespace "default""#
    );
    // With a group that may list, the same name lists: impersonated, not refused.
    let (code, s) = get(
        &env,
        PODS,
        &[
            ("Authorization", &gw),
            ("Impersonate-User", "用户".as_bytes()),
            ("Impersonate-Group", b"dev"),
        ],
    )
    .await;
    assert_eq!(code, 200, "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_impersonation_is_refused_not_ignored() {
    let env = start().await;
    let admin = bearer(ADMIN);
    // The admin could list pods itself: had the bad header been skipped, this would be a 200.
    type Headers = &'static [(&'static str, &'static [u8])];
    let cases: &[(&str, Headers, &str)] = &[
        (
            "a Latin-1 user name",
            &[("Impersonate-User", b"zo\xeb")],
            "the Impersonate-User header is not valid UTF-8 (invalid byte at offset 2)",
        ),
        (
            "two users",
            &[("Impersonate-User", b"bob"), ("Impersonate-User", b"alice")],
            "more than one Impersonate-User header: a request impersonates one user",
        ),
        (
            "a group that is not UTF-8",
            &[
                ("Impersonate-User", b"bob"),
                ("Impersonate-Group", b"viewers"),
                ("Impersonate-Group", b"\xffroot"),
            ],
            "the Impersonate-Group header is not valid UTF-8 (invalid byte at offset 0)",
        ),
        (
            "an extra value that is not UTF-8",
            &[
                ("Impersonate-User", b"bob"),
                ("Impersonate-Extra-Scopes", b"\xc3("),
            ],
            "the Impersonate-Extra-Scopes header is not valid UTF-8 (invalid byte at offset 0)",
        ),
    ];
    for (name, headers, want) in cases {
        let mut all: Vec<(&str, &[u8])> = vec![("Authorization", &admin)];
        all.extend_from_slice(headers);
        let (code, s) = get(&env, PODS, &all).await;
        assert_eq!(code, 400, "{name}: {s:?}");
        assert_eq!(
            s.as_ref().and_then(|s| s.reason.as_deref()),
            Some("BadRequest"),
            "{name}"
        );
        assert_eq!(message(&s), *want, "{name}");
    }
    // The token header itself, too.
    let (code, s) = get(
        &env,
        PODS,
        &[("Authorization", b"Bearer devcluster-admin-t\xf6ken")],
    )
    .await;
    assert_eq!(code, 400);
    assert_eq!(
        message(&s),
        "the Authorization header is not valid UTF-8 (invalid byte at offset 25)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uid_and_extras_need_their_own_rights() {
    let env = start().await;
    let gw = bearer(GATEWAY);
    // The gateway may impersonate users and groups (deploy/target-cluster), nothing more.
    let (code, s) = get(
        &env,
        PODS,
        &[
            ("Authorization", &gw),
            ("Impersonate-User", b"alice"),
            ("Impersonate-Group", b"dev"),
            ("Impersonate-Extra-Scopes", b"read"),
        ],
    )
    .await;
    assert_eq!(code, 403, "{s:?}");
    assert_eq!(
        message(&s),
        r#"userextras.authentication.k8s.io "read" is forbidden: User "podgate" cannot impersonate resource "userextras/scopes" in API group "authentication.k8s.io" at the cluster scope"#
    );
    let d = s.and_then(|s| s.details).expect("details");
    assert_eq!(d.group.as_deref(), Some("authentication.k8s.io"));
    assert_eq!(d.kind.as_deref(), Some("userextras"));
    let (code, s) = get(
        &env,
        PODS,
        &[
            ("Authorization", &gw),
            ("Impersonate-User", b"alice"),
            ("Impersonate-Uid", b"4f1c"),
        ],
    )
    .await;
    assert_eq!(code, 403);
    assert_eq!(
        message(&s),
        r#"uids.authentication.k8s.io "4f1c" is forbidden: User "podgate" cannot impersonate resource "uids" in API group "authentication.k8s.io" at the cluster scope"#
    );
    // Without a user they are kube-apiserver's internal error, never ignored.
    let (code, s) = get(
        &env,
        PODS,
        &[("Authorization", &gw), ("Impersonate-Uid", b"4f1c")],
    )
    .await;
    assert_eq!(code, 500);
    assert_eq!(
        message(&s),
        "Internal error occurred: requested [Impersonate-Uid] without impersonating a user"
    );
    // The admin may impersonate all of it; alice (in dev) then lists.
    let (code, s) = get(
        &env,
        PODS,
        &[
            ("Authorization", &bearer(ADMIN)),
            ("Impersonate-User", b"alice"),
            ("Impersonate-Group", b"dev"),
            ("Impersonate-Uid", b"4f1c"),
            ("Impersonate-Extra-Acme.com%2Fproject", "café".as_bytes()),
        ],
    )
    .await;
    assert_eq!(code, 200, "{s:?}");
}
