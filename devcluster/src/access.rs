//! Who is asking (bearer token, impersonation) and what they may do (a small rule list), with
//! kube-apiserver's messages. Pure: the server feeds it header values.

use crate::topology::{Rule, User};
use podgate_protocol::Status;
use std::collections::BTreeMap;

/// An authenticated (or impersonated) identity.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub groups: Vec<String>,
    /// From `Impersonate-Uid` (token users have none).
    pub uid: Option<String>,
    /// From `Impersonate-Extra-<key>`: keys lower-case and %-decoded, as kube-apiserver keeps them.
    pub extra: BTreeMap<String, Vec<String>>,
}

/// kube-apiserver adds this group to every authenticated user.
const AUTHENTICATED: &str = "system:authenticated";
const UNAUTHENTICATED: &str = "system:unauthenticated";
const ANONYMOUS: &str = "system:anonymous";
/// kube-apiserver lets this group do anything, whatever the rules say.
const MASTERS: &str = "system:masters";
const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";
/// The API group of `uids` and `userextras` (k8s.io/api/authentication/v1).
const AUTHENTICATION_GROUP: &str = "authentication.k8s.io";

/// What a request wants to do, in RBAC terms.
#[derive(Clone, Copy, Debug)]
pub struct Attributes<'a> {
    pub verb: &'a str,
    /// The API group: `""` for the core group.
    pub group: &'a str,
    /// `pods`, or `pods/exec` for a subresource.
    pub resource: &'a str,
    pub namespace: Option<&'a str>,
    pub name: Option<&'a str>,
}

/// The impersonation headers.
pub const IMPERSONATE_USER: &str = "impersonate-user";
pub const IMPERSONATE_UID: &str = "impersonate-uid";
pub const IMPERSONATE_GROUP: &str = "impersonate-group";
pub const IMPERSONATE_EXTRA_PREFIX: &str = "impersonate-extra-";

/// A header value as text: the raw bytes decoded as UTF-8, blanks around it trimmed as HTTP
/// parsers trim them. Go's net/http passes bytes >= 0x80 (obs-text) through, so UTF-8 names
/// reach kube-apiserver intact; what is not UTF-8 cannot name anyone and is refused (400),
/// never skipped.
pub fn header_text<'a>(name: &str, value: &'a [u8]) -> Result<&'a str, Status> {
    let text = std::str::from_utf8(value).map_err(|e| {
        Status::bad_request(format!(
            "the {} header is not valid UTF-8 (invalid byte at offset {})",
            display_name(name),
            e.valid_up_to()
        ))
    })?;
    Ok(text.trim_matches([' ', '\t']))
}

/// `impersonate-user` as `Impersonate-User`, for messages.
fn display_name(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut c = part.chars();
            match c.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// What the `Impersonate-*` headers of a request ask for, read as kube-apiserver reads them
/// (k8s.io/apiserver/pkg/endpoints/filters/impersonation.go, `buildImpersonationRequests`), but
/// failing closed where it would guess: a value that is not UTF-8, a second `Impersonate-User`
/// or `Impersonate-Uid`, an empty user name or extra key are refused (400), so a request never
/// runs as the caller because its impersonation could not be read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Impersonation {
    pub user: Option<String>,
    pub uid: Option<String>,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

impl Impersonation {
    /// Reads the headers given as (lower-case name, raw value) pairs, in request order.
    pub fn from_headers<'a>(
        headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Result<Impersonation, Status> {
        let mut out = Impersonation::default();
        let single = |slot: &mut Option<String>, name: &str, value: &[u8]| {
            if slot.is_some() {
                return Err(Status::bad_request(format!(
                    "more than one {} header: a request impersonates one user",
                    display_name(name)
                )));
            }
            *slot = Some(header_text(name, value)?.to_string());
            Ok(())
        };
        for (name, value) in headers {
            match name {
                IMPERSONATE_USER => single(&mut out.user, name, value)?,
                IMPERSONATE_UID => single(&mut out.uid, name, value)?,
                IMPERSONATE_GROUP => out.groups.push(header_text(name, value)?.to_string()),
                _ => {
                    let Some(encoded) = name.strip_prefix(IMPERSONATE_EXTRA_PREFIX) else {
                        continue;
                    };
                    let key = unescape_extra_key(encoded).ok_or_else(|| {
                        Status::bad_request(format!(
                            "the {} header names an extra key that is empty or not UTF-8 once %-decoded",
                            display_name(name)
                        ))
                    })?;
                    let value = header_text(name, value)?.to_string();
                    out.extra.entry(key).or_default().push(value);
                }
            }
        }
        if out.user.as_deref() == Some("") {
            return Err(Status::bad_request(
                "the Impersonate-User header is empty: name the user to impersonate, or send no header",
            ));
        }
        // kube-apiserver ignores an empty Impersonate-Uid (`len(uid) > 0`).
        if out.uid.as_deref() == Some("") {
            out.uid = None;
        }
        Ok(out)
    }

    pub fn is_empty(&self) -> bool {
        self.user.is_none() && self.uid.is_none() && self.groups.is_empty() && self.extra.is_empty()
    }
}

/// kube-apiserver's `unescapeExtraKey`: `url.PathUnescape` of the lower-cased key, or the key as
/// it came when that fails. `None` for an empty key or one that does not decode to UTF-8.
fn unescape_extra_key(encoded: &str) -> Option<String> {
    let lower = encoded.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    let hex = |b: u8| (b as char).to_digit(16);
    while i < bytes.len() {
        if bytes[i] == b'%' {
            match (
                bytes.get(i + 1).and_then(|b| hex(*b)),
                bytes.get(i + 2).and_then(|b| hex(*b)),
            ) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                // Malformed: Go keeps the key as it was.
                _ => return (!lower.is_empty()).then_some(lower),
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).ok().filter(|k| !k.is_empty())
}

pub struct Access {
    users: Vec<User>,
    rules: Vec<Rule>,
}

impl Access {
    pub fn new(users: Vec<User>, rules: Vec<Rule>) -> Access {
        Access { users, rules }
    }

    /// Finds the user for a bearer token (from `Authorization: Bearer` or the WebSocket
    /// protocol entry). Tokens are compared in constant time.
    pub fn authenticate(&self, token: Option<&str>) -> Result<UserInfo, Status> {
        let token = token.ok_or_else(Status::unauthorized)?;
        let mut found = None;
        for u in &self.users {
            if constant_time_eq(u.token.as_bytes(), token.as_bytes()) {
                found = Some(u);
            }
        }
        let u = found.ok_or_else(Status::unauthorized)?;
        let mut groups = u.groups.clone();
        groups.push(AUTHENTICATED.into());
        Ok(UserInfo {
            name: u.name.clone(),
            groups,
            ..UserInfo::default()
        })
    }

    /// Applies the impersonation headers as kube-apiserver does: the caller needs the
    /// `impersonate` verb on the user (`users`, or `serviceaccounts` in its namespace for a
    /// service account), on each group (`groups`), on each extra value (`userextras/<key>` in
    /// `authentication.k8s.io`) and on the uid (`uids` in `authentication.k8s.io`), checked in that
    /// order; the first refusal is the 403.
    pub fn impersonate(
        &self,
        caller: UserInfo,
        wanted: &Impersonation,
    ) -> Result<UserInfo, Status> {
        let Some(target) = wanted.user.as_deref() else {
            if wanted.is_empty() {
                return Ok(caller);
            }
            let mut asked = Vec::new();
            if wanted.uid.is_some() {
                asked.push("Impersonate-Uid");
            }
            if !wanted.groups.is_empty() {
                asked.push("Impersonate-Group");
            }
            if !wanted.extra.is_empty() {
                asked.push("Impersonate-Extra-");
            }
            return Err(Status::api_error(
                500,
                "InternalError",
                format!(
                    "Internal error occurred: requested [{}] without impersonating a user",
                    asked.join(" ")
                ),
            ));
        };
        let check = |group: &str, resource: &str, namespace: Option<&str>, name: &str| {
            let attrs = Attributes {
                verb: "impersonate",
                group,
                resource,
                namespace,
                name: Some(name),
            };
            if self.allows(&caller, &attrs) {
                Ok(())
            } else {
                Err(forbidden(&caller, &attrs))
            }
        };
        let service_account = split_service_account(target);
        match service_account {
            Some((ns, name)) => check("", "serviceaccounts", Some(ns), name)?,
            None => check("", "users", None, target)?,
        }
        for g in &wanted.groups {
            check("", "groups", None, g)?;
        }
        for (key, values) in &wanted.extra {
            let resource = format!("userextras/{key}");
            for v in values {
                check(AUTHENTICATION_GROUP, &resource, None, v)?;
            }
        }
        if let Some(uid) = &wanted.uid {
            check(AUTHENTICATION_GROUP, "uids", None, uid)?;
        }
        // Groups asked for are the authority; a service account without them gets its fixed ones.
        let mut groups = wanted.groups.clone();
        if groups.is_empty()
            && let Some((ns, _)) = service_account
        {
            groups = vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{ns}"),
            ];
        }
        if target == ANONYMOUS {
            if !groups.iter().any(|g| g == UNAUTHENTICATED) {
                groups.push(UNAUTHENTICATED.into());
            }
        } else if !groups
            .iter()
            .any(|g| g == AUTHENTICATED || g == UNAUTHENTICATED)
        {
            groups.push(AUTHENTICATED.into());
        }
        Ok(UserInfo {
            name: target.into(),
            groups,
            uid: wanted.uid.clone(),
            extra: wanted.extra.clone(),
        })
    }

    pub fn allows(&self, user: &UserInfo, attrs: &Attributes) -> bool {
        if user.groups.iter().any(|g| g == MASTERS) {
            return true;
        }
        self.rules.iter().any(|r| rule_matches(r, user, attrs))
    }

    /// Whether `user` may do anything (`system:masters`).
    pub fn is_master(&self, user: &UserInfo) -> bool {
        user.groups.iter().any(|g| g == MASTERS)
    }

    /// The rules that apply to `user` in `namespace` (a rule for every namespace included):
    /// what a SelfSubjectRulesReview lists.
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> Vec<&Rule> {
        self.rules
            .iter()
            .filter(|r| {
                let subject = r.users.iter().any(|u| u == &user.name)
                    || r.groups.iter().any(|g| user.groups.contains(g));
                let ns = r.namespaces.is_empty()
                    || r.namespaces.iter().any(|n| n == "*" || n == namespace);
                subject && ns
            })
            .collect()
    }

    /// `Ok` when allowed, else the 403 `Status` kube-apiserver would send.
    pub fn authorize(&self, user: &UserInfo, attrs: &Attributes) -> Result<(), Status> {
        if self.allows(user, attrs) {
            Ok(())
        } else {
            Err(forbidden(user, attrs))
        }
    }
}

/// `system:serviceaccount:<ns>:<name>` as (ns, name), as k8s.io/apiserver's `SplitUsername`.
fn split_service_account(user: &str) -> Option<(&str, &str)> {
    let rest = user.strip_prefix(SERVICE_ACCOUNT_PREFIX)?;
    let (ns, name) = rest.split_once(':')?;
    (!ns.is_empty() && !name.is_empty() && !name.contains(':')).then_some((ns, name))
}

/// Rules name resources, not API groups: the devcluster's resources have distinct names
/// (`uids` and `userextras/...` are only in authentication.k8s.io), so the group adds nothing.
fn rule_matches(r: &Rule, user: &UserInfo, a: &Attributes) -> bool {
    let star_or = |list: &[String], v: &str| list.iter().any(|x| x == "*" || x == v);
    let subject =
        r.users.iter().any(|u| u == &user.name) || r.groups.iter().any(|g| user.groups.contains(g));
    let namespace = r.namespaces.is_empty()
        || r.namespaces.iter().any(|n| n == "*")
        || a.namespace
            .is_some_and(|ns| r.namespaces.iter().any(|n| n == ns));
    subject && star_or(&r.verbs, a.verb) && star_or(&r.resources, a.resource) && namespace
}

/// The 403 body, worded as kube-apiserver words it (responsewriters.Forbidden and
/// apierrors.NewForbidden: `<resource>[.<group>] "<name>" is forbidden: User "<user>" cannot
/// <verb> resource "<resource>" in API group "<group>" ...`, values quoted as Go's `%q` does).
pub fn forbidden(user: &UserInfo, a: &Attributes) -> Status {
    let (group_resource, _) = a.resource.split_once('/').unwrap_or((a.resource, ""));
    let qualified = if a.group.is_empty() {
        group_resource.to_string()
    } else {
        format!("{group_resource}.{}", a.group)
    };
    let subject = match a.name {
        Some(name) => format!("{qualified} {}", go_quote(name)),
        None => qualified,
    };
    let scope = match a.namespace {
        Some(ns) => format!("in the namespace {}", go_quote(ns)),
        None => "at the cluster scope".to_string(),
    };
    let reason = format!(
        "User {} cannot {} resource {} in API group {} {scope}",
        go_quote(&user.name),
        a.verb,
        go_quote(a.resource),
        go_quote(a.group)
    );
    // responsewriters' sanitizer: no text that looks like HTML.
    let reason = reason
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let message = format!("{subject} is forbidden: {reason}");
    let mut s = Status::api_error(403, "Forbidden", message);
    s.details = Some(podgate_protocol::status::StatusDetails {
        name: a.name.map(str::to_string),
        group: (!a.group.is_empty()).then(|| a.group.to_string()),
        kind: Some(group_resource.to_string()),
        ..Default::default()
    });
    s
}

/// Go's `%q` (strconv.Quote) for the text kube-apiserver puts in messages: printable characters,
/// UTF-8 ones included, stay as they are ("zoë" is "zoë"); quotes, backslashes and control or
/// space characters other than ' ' are escaped.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if c == ' ' || !(c.is_control() || c.is_whitespace()) => out.push(c),
            c if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::Topology;

    fn access() -> Access {
        let t = Topology::builtin();
        Access::new(t.users, t.rules)
    }

    fn exec_in<'a>(ns: &'a str, pod: &'a str) -> Attributes<'a> {
        Attributes {
            verb: "get",
            group: "",
            resource: "pods/exec",
            namespace: Some(ns),
            name: Some(pod),
        }
    }

    #[test]
    fn tokens() {
        let a = access();
        assert_eq!(
            a.authenticate(Some("devcluster-alice-token")).unwrap().name,
            "alice"
        );
        assert_eq!(a.authenticate(Some("nope")).unwrap_err().code, Some(401));
        assert_eq!(
            a.authenticate(None).unwrap_err().reason.as_deref(),
            Some("Unauthorized")
        );
    }

    #[test]
    fn alice_execs_only_in_default() {
        let a = access();
        let alice = a.authenticate(Some("devcluster-alice-token")).unwrap();
        assert!(a.authorize(&alice, &exec_in("default", "shell-0")).is_ok());
        let s = a.authorize(&alice, &exec_in("shop", "web-0")).unwrap_err();
        assert_eq!(
            s.message.as_deref(),
            Some(
                "pods \"web-0\" is forbidden: User \"alice\" cannot get resource \"pods/exec\" in API group \"\" in the namespace \"shop\""
            )
        );
        assert_eq!(s.code, Some(403));
    }

    #[test]
    fn bob_lists_but_does_not_exec() {
        let a = access();
        let bob = a.authenticate(Some("devcluster-bob-token")).unwrap();
        let list = Attributes {
            verb: "list",
            group: "",
            resource: "pods",
            namespace: None,
            name: None,
        };
        assert!(a.allows(&bob, &list));
        assert!(!a.allows(&bob, &exec_in("default", "shell-0")));
    }

    #[test]
    fn cluster_scope_message() {
        let u = UserInfo {
            name: "eve".into(),
            ..UserInfo::default()
        };
        let list = Attributes {
            verb: "list",
            group: "",
            resource: "pods",
            namespace: None,
            name: None,
        };
        assert_eq!(
            forbidden(&u, &list).message.as_deref(),
            Some(
                "pods is forbidden: User \"eve\" cannot list resource \"pods\" in API group \"\" at the cluster scope"
            )
        );
    }

    fn wants(user: &str, groups: &[&str]) -> Impersonation {
        Impersonation {
            user: Some(user.into()),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..Impersonation::default()
        }
    }

    #[test]
    fn impersonation_needs_the_right() {
        let a = access();
        let gw = a.authenticate(Some("devcluster-podgate-token")).unwrap();
        let as_bob = a
            .impersonate(gw.clone(), &wants("bob", &["viewers"]))
            .unwrap();
        assert_eq!(as_bob.name, "bob");
        assert_eq!(as_bob.groups, ["viewers", "system:authenticated"]);
        // The gateway itself may not exec; the impersonated identity decides.
        assert!(!a.allows(&gw, &exec_in("default", "shell-0")));
        let bob = a.authenticate(Some("devcluster-bob-token")).unwrap();
        let s = a.impersonate(bob, &wants("admin", &[])).unwrap_err();
        assert_eq!(
            s.message.as_deref(),
            Some(
                "users \"admin\" is forbidden: User \"bob\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"
            )
        );
        let admin = a.authenticate(Some("devcluster-admin-token")).unwrap();
        let as_alice = a.impersonate(admin, &wants("alice", &["dev"])).unwrap();
        assert!(a.allows(&as_alice, &exec_in("default", "shell-0")));
        assert!(!a.allows(&as_alice, &exec_in("shop", "web-0")));
    }

    /// Raw header pairs, as the server hands them over.
    fn read(headers: &[(&str, &[u8])]) -> Result<Impersonation, Status> {
        Impersonation::from_headers(headers.iter().map(|(n, v)| (*n, *v)))
    }

    #[test]
    fn headers_are_read_byte_exact_or_refused() {
        type Case = (
            &'static str,
            &'static [(&'static str, &'static [u8])],
            Result<Impersonation, &'static str>,
        );
        let ok = |user: &str, groups: &[&str]| Ok(wants(user, groups));
        let cases: Vec<Case> = vec![
            ("none", &[], Ok(Impersonation::default())),
            (
                "unrelated headers",
                &[("accept", b"*/*"), ("user-agent", b"\xff")],
                Ok(Impersonation::default()),
            ),
            ("ascii", &[("impersonate-user", b"alice")], ok("alice", &[])),
            (
                "UTF-8 user",
                &[("impersonate-user", b"zo\xc3\xab")],
                ok("zoë", &[]),
            ),
            (
                "CJK user",
                &[("impersonate-user", b"\xe7\x94\xa8\xe6\x88\xb7")],
                ok("用户", &[]),
            ),
            (
                "blanks trimmed",
                &[("impersonate-user", b" \tbob\t ")],
                ok("bob", &[]),
            ),
            (
                "groups in order, UTF-8 too",
                &[
                    ("impersonate-group", b"\xc3\xa9quipe"),
                    ("impersonate-user", b"bob"),
                    ("impersonate-group", b"dev"),
                ],
                ok("bob", &["équipe", "dev"]),
            ),
            (
                "Latin-1 user is not UTF-8",
                &[("impersonate-user", b"zo\xeb")],
                Err("the Impersonate-User header is not valid UTF-8 (invalid byte at offset 2)"),
            ),
            (
                "UTF-8 cut short",
                &[("impersonate-user", b"zo\xc3")],
                Err("the Impersonate-User header is not valid UTF-8 (invalid byte at offset 2)"),
            ),
            (
                "two users",
                &[("impersonate-user", b"alice"), ("impersonate-user", b"bob")],
                Err("more than one Impersonate-User header: a request impersonates one user"),
            ),
            (
                "the same user twice",
                &[("impersonate-user", b"bob"), ("impersonate-user", b"bob")],
                Err("more than one Impersonate-User header: a request impersonates one user"),
            ),
            (
                "empty user",
                &[("impersonate-user", b"")],
                Err(
                    "the Impersonate-User header is empty: name the user to impersonate, or send no header",
                ),
            ),
            (
                "a group that cannot be read",
                &[
                    ("impersonate-user", b"bob"),
                    ("impersonate-group", b"ok"),
                    ("impersonate-group", b"\xfe"),
                ],
                Err("the Impersonate-Group header is not valid UTF-8 (invalid byte at offset 0)"),
            ),
            (
                "two uids",
                &[
                    ("impersonate-user", b"bob"),
                    ("impersonate-uid", b"1"),
                    ("impersonate-uid", b"2"),
                ],
                Err("more than one Impersonate-Uid header: a request impersonates one user"),
            ),
            (
                "uid not UTF-8",
                &[("impersonate-user", b"bob"), ("impersonate-uid", b"\x80")],
                Err("the Impersonate-Uid header is not valid UTF-8 (invalid byte at offset 0)"),
            ),
            (
                "extra value not UTF-8",
                &[
                    ("impersonate-user", b"bob"),
                    ("impersonate-extra-scopes", b"a\xffb"),
                ],
                Err(
                    "the Impersonate-Extra-Scopes header is not valid UTF-8 (invalid byte at offset 1)",
                ),
            ),
            (
                "empty extra key",
                &[("impersonate-user", b"bob"), ("impersonate-extra-", b"x")],
                Err(
                    "the Impersonate-Extra- header names an extra key that is empty or not UTF-8 once %-decoded",
                ),
            ),
            (
                "extra key not UTF-8 once decoded",
                &[
                    ("impersonate-user", b"bob"),
                    ("impersonate-extra-%ff", b"x"),
                ],
                Err(
                    "the Impersonate-Extra-%ff header names an extra key that is empty or not UTF-8 once %-decoded",
                ),
            ),
        ];
        for (name, headers, want) in cases {
            let got = read(headers);
            match (&got, &want) {
                (Ok(g), Ok(w)) => assert_eq!(g, w, "{name}"),
                (Err(s), Err(msg)) => {
                    assert_eq!(s.code, Some(400), "{name}");
                    assert_eq!(s.reason.as_deref(), Some("BadRequest"), "{name}");
                    assert_eq!(s.message.as_deref(), Some(*msg), "{name}");
                }
                _ => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn uid_and_extras_are_read_as_kube_apiserver_reads_them() {
        let got = read(&[
            ("impersonate-user", b"bob"),
            ("impersonate-uid", b"1234-abcd"),
            ("impersonate-extra-scopes", b"openid"),
            ("impersonate-extra-scopes", b"profile"),
            ("impersonate-extra-acme.com%2fproject", "café".as_bytes()),
            // Malformed escape: Go's unescapeExtraKey keeps the key as it came.
            ("impersonate-extra-100%zz", b"v"),
        ])
        .unwrap();
        assert_eq!(got.uid.as_deref(), Some("1234-abcd"));
        let extra: Vec<(&str, Vec<&str>)> = got
            .extra
            .iter()
            .map(|(k, v)| (k.as_str(), v.iter().map(String::as_str).collect()))
            .collect();
        assert_eq!(
            extra,
            [
                ("100%zz", vec!["v"]),
                ("acme.com/project", vec!["café"]),
                ("scopes", vec!["openid", "profile"]),
            ]
        );
        // An empty uid is no uid, as in kube-apiserver.
        assert_eq!(
            read(&[("impersonate-user", b"bob"), ("impersonate-uid", b"")]).unwrap(),
            wants("bob", &[])
        );
    }

    #[test]
    fn uid_and_extras_need_their_own_rights() {
        let a = access();
        let gw = a.authenticate(Some("devcluster-podgate-token")).unwrap();
        let admin = a.authenticate(Some("devcluster-admin-token")).unwrap();
        let with_extra = Impersonation {
            extra: [("scopes".to_string(), vec!["read".to_string()])].into(),
            ..wants("alice", &["dev"])
        };
        let s = a.impersonate(gw.clone(), &with_extra).unwrap_err();
        assert_eq!(s.code, Some(403));
        assert_eq!(
            s.message.as_deref(),
            Some(
                "userextras.authentication.k8s.io \"read\" is forbidden: User \"podgate\" cannot impersonate resource \"userextras/scopes\" in API group \"authentication.k8s.io\" at the cluster scope"
            )
        );
        let d = s.details.unwrap();
        assert_eq!(
            (d.name.as_deref(), d.group.as_deref(), d.kind.as_deref()),
            (
                Some("read"),
                Some("authentication.k8s.io"),
                Some("userextras")
            )
        );
        let with_uid = Impersonation {
            uid: Some("42".into()),
            ..wants("alice", &[])
        };
        let s = a.impersonate(gw.clone(), &with_uid).unwrap_err();
        assert_eq!(
            s.message.as_deref(),
            Some(
                "uids.authentication.k8s.io \"42\" is forbidden: User \"podgate\" cannot impersonate resource \"uids\" in API group \"authentication.k8s.io\" at the cluster scope"
            )
        );
        // The user is checked first: a caller who may not impersonate it hears about that.
        let bob = a.authenticate(Some("devcluster-bob-token")).unwrap();
        let s = a.impersonate(bob, &with_uid).unwrap_err();
        assert!(
            s.message
                .unwrap()
                .starts_with("users \"alice\" is forbidden")
        );
        // Someone with the rights gets all of it.
        let both = Impersonation {
            uid: Some("42".into()),
            ..with_extra.clone()
        };
        let u = a.impersonate(admin, &both).unwrap();
        assert_eq!(u.name, "alice");
        assert_eq!(u.uid.as_deref(), Some("42"));
        assert_eq!(u.extra["scopes"], ["read"]);
        assert_eq!(u.groups, ["dev", "system:authenticated"]);
        // A rule granting exactly these resources is enough.
        let rules = vec![crate::topology::Rule {
            users: vec!["podgate".into()],
            groups: vec![],
            verbs: vec!["impersonate".into()],
            resources: vec![
                "users".into(),
                "groups".into(),
                "uids".into(),
                "userextras/scopes".into(),
            ],
            namespaces: vec![],
        }];
        let narrow = Access::new(Topology::builtin().users, rules);
        assert!(narrow.impersonate(gw.clone(), &both).is_ok());
        let other_key = Impersonation {
            extra: [("other".to_string(), vec!["x".to_string()])].into(),
            ..wants("alice", &[])
        };
        assert_eq!(
            narrow.impersonate(gw, &other_key).unwrap_err().code,
            Some(403)
        );
    }

    #[test]
    fn impersonating_without_a_user_is_an_internal_error() {
        let a = access();
        let admin = a.authenticate(Some("devcluster-admin-token")).unwrap();
        for (wanted, asked) in [
            (
                Impersonation {
                    groups: vec!["dev".into()],
                    ..Impersonation::default()
                },
                "[Impersonate-Group]",
            ),
            (
                Impersonation {
                    uid: Some("1".into()),
                    ..Impersonation::default()
                },
                "[Impersonate-Uid]",
            ),
            (
                Impersonation {
                    extra: [("k".to_string(), vec!["v".to_string()])].into(),
                    ..Impersonation::default()
                },
                "[Impersonate-Extra-]",
            ),
        ] {
            let s = a.impersonate(admin.clone(), &wanted).unwrap_err();
            assert_eq!(s.code, Some(500));
            assert_eq!(
                s.message.unwrap(),
                format!("Internal error occurred: requested {asked} without impersonating a user")
            );
        }
        assert_eq!(
            a.impersonate(admin.clone(), &Impersonation::default()),
            Ok(admin)
        );
    }

    #[test]
    fn groups_and_service_accounts_as_kube_apiserver() {
        let a = access();
        let admin = a.authenticate(Some("devcluster-admin-token")).unwrap();
        let u = a
            .impersonate(admin.clone(), &wants("x", &["system:unauthenticated"]))
            .unwrap();
        assert_eq!(u.groups, ["system:unauthenticated"]);
        let u = a
            .impersonate(admin.clone(), &wants("system:anonymous", &[]))
            .unwrap();
        assert_eq!(u.groups, ["system:unauthenticated"]);
        let u = a
            .impersonate(admin.clone(), &wants("system:serviceaccount:shop:web", &[]))
            .unwrap();
        assert_eq!(
            u.groups,
            [
                "system:serviceaccounts",
                "system:serviceaccounts:shop",
                "system:authenticated"
            ]
        );
        // A service account is checked as `serviceaccounts` in its namespace.
        let gw = a.authenticate(Some("devcluster-podgate-token")).unwrap();
        let s = a
            .impersonate(gw, &wants("system:serviceaccount:shop:web", &[]))
            .unwrap_err();
        assert_eq!(
            s.message.as_deref(),
            Some(
                "serviceaccounts \"web\" is forbidden: User \"podgate\" cannot impersonate resource \"serviceaccounts\" in API group \"\" in the namespace \"shop\""
            )
        );
    }

    #[test]
    fn messages_quote_as_go_does() {
        let u = |name: &str| UserInfo {
            name: name.into(),
            ..UserInfo::default()
        };
        let msg = |user: &UserInfo| {
            forbidden(user, &exec_in("default", "shell-0"))
                .message
                .unwrap()
        };
        assert_eq!(
            msg(&u("zoë")),
            "pods \"shell-0\" is forbidden: User \"zoë\" cannot get resource \"pods/exec\" in API group \"\" in the namespace \"default\""
        );
        assert!(msg(&u("用户")).contains("User \"用户\" cannot"));
        assert!(msg(&u("a\"b\\c")).contains(r#"User "a\"b\\c" cannot"#));
        assert!(msg(&u("tab\there\u{1}")).contains(r#"User "tab\there\x01" cannot"#));
        assert!(msg(&u("nb\u{a0}sp")).contains(r#"User "nb\u00a0sp" cannot"#));
        assert!(msg(&u("<b>&")).contains("User \"&lt;b&gt;&amp;\" cannot"));
    }

    #[test]
    fn header_text_names_the_header() {
        assert_eq!(
            header_text("authorization", b"Bearer x").unwrap(),
            "Bearer x"
        );
        let s = header_text("authorization", b"Bearer \xff").unwrap_err();
        assert_eq!(s.code, Some(400));
        assert_eq!(
            s.message.as_deref(),
            Some("the Authorization header is not valid UTF-8 (invalid byte at offset 7)")
        );
    }
}
