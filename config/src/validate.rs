//! Checks that need more than one field, or knowledge serde does not have. Every check runs
//! even after an earlier one failed, so the operator sees all problems at once.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use crate::duration::Duration;
use crate::error::Problems;
use crate::schema::{ClusterConfig, Config};
use crate::size::ByteSize;

/// hyper panics when its HTTP/1 read buffer limit is set below 8 KiB; refusing it here turns
/// a crash at startup into a config error.
const MIN_HEADER_BYTES: ByteSize = ByteSize(8 << 10);

/// Why `id` is not an RFC 1123 DNS label, as a parenthetical, or `None` when it is one.
/// Cluster ids appear in URL paths and metric labels, so they are held to the same rule as
/// Kubernetes object names.
pub(crate) fn dns_label_problem(id: &str) -> Option<&'static str> {
    let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-';
    if id.is_empty() || id.len() > 63 || !id.bytes().all(allowed) {
        Some("(lowercase letters, digits and '-', at most 63 characters)")
    } else if id.starts_with('-') || id.ends_with('-') {
        Some("(must start and end with a letter or digit)")
    } else {
        None
    }
}

/// Clusters expanded from `imports[index]`.
pub(crate) struct Imported {
    pub(crate) index: usize,
    pub(crate) clusters: Vec<ClusterConfig>,
}

pub(crate) fn validate(config: &Config, imported: &[Imported], problems: &mut Problems<'_>) {
    listeners(config, problems);
    not_empty(&config.tls.cert_file, "tls.cert_file", problems);
    not_empty(&config.tls.key_file, "tls.key_file", problems);
    clusters(config, imported, problems);
    if let Some(file) = &config.auth.tokens_file {
        not_empty(file, "auth.tokens_file", problems);
    }
    browser_sessions(&config.auth.session, problems);
    sessions(config, problems);
    limits(config, problems);
    upstream(config, problems);
    pod_index(config, problems);
    if config.files.idle_timeout.is_zero() {
        problems.push("files.idle_timeout", "must be more than 0s");
    }
    crate::recording::validate(config, problems);
}

/// `pod_index`: bounds of at least 1, a feed identity with a user.
fn pod_index(config: &Config, problems: &mut Problems<'_>) {
    let p = &config.pod_index;
    if p.max_pods == 0 {
        problems.push("pod_index.max_pods", "must be at least 1");
    }
    if p.max_clusters_per_search == 0 {
        problems.push("pod_index.max_clusters_per_search", "must be at least 1");
    }
    if p.idle_timeout.is_zero() {
        problems.push("pod_index.idle_timeout", "must be more than 0s");
    }
    if let Some(f) = &p.feed_as
        && f.user.trim().is_empty()
    {
        problems.push("pod_index.feed_as.user", "must not be empty");
    }
}

fn listeners(config: &Config, problems: &mut Problems<'_>) {
    let (public, admin) = (config.listen, config.admin.listen);
    if overlaps(public, admin) {
        problems.push(
            "admin.listen",
            format!(
                "{admin} overlaps listen ({public}); the admin listener needs its own port so \
                 metrics and debug pages are never served publicly"
            ),
        );
    }
}

/// Whether binding both would clash. Port 0 asks the OS for a fresh port, so it never does.
/// `[::]` usually accepts IPv4 too (dual stack); `0.0.0.0` covers IPv4 only.
fn overlaps(a: SocketAddr, b: SocketAddr) -> bool {
    let covers = |w: IpAddr, o: IpAddr| w.is_unspecified() && (w.is_ipv6() || o.is_ipv4());
    a.port() != 0
        && a.port() == b.port()
        && (a.ip() == b.ip() || covers(a.ip(), b.ip()) || covers(b.ip(), a.ip()))
}

fn not_empty(path: &Path, field: &str, problems: &mut Problems<'_>) {
    if path.as_os_str().is_empty() {
        problems.push(field, "is empty");
    }
}

/// An agent cluster's token: one form of it, a well-formed hash; and impersonation, which the
/// agent insists on (it forwards nothing that does not say whom it acts for).
fn agent_token(
    agent: &crate::schema::AgentConfig,
    impersonate: bool,
    at: &str,
    problems: &mut Problems<'_>,
) {
    match (&agent.token_file, &agent.token_sha256) {
        (Some(_), Some(_)) => problems.push(
            format!("{at}.agent"),
            "set either token_file or token_sha256, not both",
        ),
        (None, None) => problems.push(
            format!("{at}.agent"),
            "needs token_file or token_sha256: what the cluster's agents must show",
        ),
        (Some(path), None) => not_empty(path, &format!("{at}.agent.token_file"), problems),
        (None, Some(hash)) => {
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                problems.push(
                    format!("{at}.agent.token_sha256"),
                    "is not a SHA-256 in hex (64 hex digits, e.g. from `printf %s TOKEN | sha256sum`)",
                );
            }
        }
    }
    if !impersonate {
        problems.push(
            format!("{at}.impersonate"),
            "cannot be false for an agent cluster: the agent only forwards requests that \
             impersonate the person who sent them",
        );
    }
}

fn clusters(config: &Config, imported: &[Imported], problems: &mut Problems<'_>) {
    // id -> who claimed it first, for collision messages.
    let mut owners: BTreeMap<&str, String> = BTreeMap::new();
    for (i, cluster) in config.clusters.iter().enumerate() {
        let at = format!("clusters[{i}]");
        if cluster.id.is_empty() {
            problems.push(format!("{at}.id"), "is empty");
        } else if let Some(why) = dns_label_problem(&cluster.id) {
            problems.push(
                format!("{at}.id"),
                format!("{:?} is not a DNS label {why}", cluster.id),
            );
        } else if let Some(owner) = owners.get(cluster.id.as_str()) {
            problems.push(
                format!("{at}.id"),
                format!("{:?} is already used by {owner}", cluster.id),
            );
        } else {
            owners.insert(&cluster.id, at.clone());
        }
        cluster_metadata(cluster, &at, problems);
        let sources = [
            cluster.kubeconfig.is_some(),
            cluster.in_cluster,
            cluster.agent.is_some(),
        ];
        match sources.iter().filter(|s| **s).count() {
            0 => problems.push(
                &at,
                "needs kubeconfig, in_cluster: true or agent to know how to reach the cluster",
            ),
            1 => {}
            _ => problems.push(
                &at,
                "set only one of kubeconfig, in_cluster: true and agent",
            ),
        }
        if let Some(path) = &cluster.kubeconfig {
            not_empty(path, &format!("{at}.kubeconfig"), problems);
        } else if cluster.context.is_some() {
            problems.push(format!("{at}.context"), "only applies with kubeconfig");
        }
        if let Some(agent) = &cluster.agent {
            agent_token(agent, cluster.impersonate, &at, problems);
        }
    }
    for (i, import) in config.imports.iter().enumerate() {
        not_empty(
            &import.kubeconfig,
            &format!("imports[{i}].kubeconfig"),
            problems,
        );
    }
    for group in imported {
        for cluster in &group.clusters {
            let context = cluster.context.as_deref().unwrap_or_default();
            let at = format!("imports[{}]", group.index);
            if let Some(owner) = owners.get(cluster.id.as_str()) {
                problems.push(
                    &at,
                    format!(
                        "context {context:?} gives cluster id {:?}, which {owner} already uses",
                        cluster.id
                    ),
                );
            } else {
                owners.insert(&cluster.id, format!("{at} (context {context:?})"));
            }
        }
    }
    if config.clusters.is_empty() && config.imports.is_empty() {
        problems.push(
            "clusters",
            "no clusters: add at least one under clusters or imports",
        );
    }
}

/// Longest `display_name`, in characters.
const MAX_DISPLAY_NAME: usize = 100;
/// Most `labels` on one cluster.
const MAX_LABELS: usize = 32;

/// `display_name`, `environment` and `labels`: shown in the web UI and `/podgate/clusters`
/// and searched there, so held to what a page can show on one line and what Kubernetes
/// people already write (labels as Kubernetes labels).
fn cluster_metadata(cluster: &ClusterConfig, at: &str, problems: &mut Problems<'_>) {
    if let Some(name) = &cluster.display_name {
        if name.trim().is_empty() {
            problems.push(format!("{at}.display_name"), "is empty");
        } else if name.chars().count() > MAX_DISPLAY_NAME {
            problems.push(
                format!("{at}.display_name"),
                format!("is longer than {MAX_DISPLAY_NAME} characters"),
            );
        } else if name.chars().any(char::is_control) {
            problems.push(
                format!("{at}.display_name"),
                format!("{name:?} contains control characters"),
            );
        }
    }
    if let Some(env) = &cluster.environment
        && let Some(why) = dns_label_problem(env)
    {
        problems.push(
            format!("{at}.environment"),
            format!("{env:?} is not a DNS label {why}, like production or staging"),
        );
    }
    if cluster.labels.len() > MAX_LABELS {
        problems.push(
            format!("{at}.labels"),
            format!("{} labels; at most {MAX_LABELS}", cluster.labels.len()),
        );
    }
    for (key, value) in &cluster.labels {
        if let Some(why) = label_key_problem(key) {
            problems.push(
                format!("{at}.labels"),
                format!("key {key:?} is not a Kubernetes label key {why}"),
            );
        }
        if let Some(why) = label_value_problem(value) {
            problems.push(
                format!("{at}.labels.{key}"),
                format!("{value:?} is not a Kubernetes label value {why}"),
            );
        }
    }
}

/// Why `key` is not a Kubernetes label key (`[prefix/]name`), or `None`.
pub(crate) fn label_key_problem(key: &str) -> Option<&'static str> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        let dns =
            !p.is_empty() && p.len() <= 253 && p.split('.').all(|l| dns_label_problem(l).is_none());
        if !dns {
            return Some("(its prefix before '/' must be a DNS subdomain)");
        }
    }
    if name.is_empty() {
        return Some("(the name is empty)");
    }
    label_value_problem(name)
}

/// Why `value` is not a Kubernetes label value (at most 63 of letters, digits, `-`, `_`,
/// `.`, starting and ending alphanumeric; may be empty), or `None`.
pub(crate) fn label_value_problem(value: &str) -> Option<&'static str> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    if value.len() > 63 || !value.bytes().all(allowed) {
        Some("(letters, digits, '-', '_' and '.', at most 63 characters)")
    } else if value
        .bytes()
        .next()
        .zip(value.bytes().last())
        .is_some_and(|(a, z)| !a.is_ascii_alphanumeric() || !z.is_ascii_alphanumeric())
    {
        Some("(must start and end with a letter or digit)")
    } else {
        None
    }
}

fn sessions(config: &Config, problems: &mut Problems<'_>) {
    let s = &config.sessions;
    positive_duration(s.keepalive, "sessions.keepalive", problems);
    if !s.keepalive.is_zero() && !s.idle_timeout.is_zero() && s.keepalive >= s.idle_timeout {
        problems.push(
            "sessions.keepalive",
            format!(
                "{} must be shorter than sessions.idle_timeout ({}), or a quiet client is cut \
                 off before it is ever pinged",
                s.keepalive, s.idle_timeout
            ),
        );
    }
    if !s.resume_window.is_zero() {
        positive_duration(s.resume_heartbeat, "sessions.resume_heartbeat", problems);
        // A buffer smaller than a few output frames would stall every resumable session.
        const SMALLEST: u64 = 16 << 10;
        if s.resume_buffer.bytes() < SMALLEST {
            problems.push(
                "sessions.resume_buffer",
                format!(
                    "{} is too small to hold a few output frames; use at least 16KiB",
                    s.resume_buffer
                ),
            );
        }
        if s.resume_buffer_total.bytes() < s.resume_buffer.bytes() {
            problems.push(
                "sessions.resume_buffer_total",
                format!(
                    "{} is smaller than one session's sessions.resume_buffer ({}): no session \
                     could be resumed",
                    s.resume_buffer_total, s.resume_buffer
                ),
            );
        }
    }
}

fn limits(config: &Config, problems: &mut Problems<'_>) {
    let l = &config.limits;
    for (field, value) in [
        ("limits.max_sessions", l.max_sessions),
        ("limits.max_sessions_per_user", l.max_sessions_per_user),
        (
            "limits.max_sessions_per_cluster",
            l.max_sessions_per_cluster,
        ),
        ("limits.max_connections", l.max_connections),
    ] {
        if value == 0 {
            problems.push(field, "must be at least 1");
        }
    }
    if l.max_sessions > 0 {
        for (field, value) in [
            ("limits.max_sessions_per_user", l.max_sessions_per_user),
            (
                "limits.max_sessions_per_cluster",
                l.max_sessions_per_cluster,
            ),
        ] {
            if value > l.max_sessions {
                problems.push(
                    field,
                    format!(
                        "{value} is more than limits.max_sessions ({})",
                        l.max_sessions
                    ),
                );
            }
        }
    }
    positive_duration(
        l.header_read_timeout,
        "limits.header_read_timeout",
        problems,
    );
    if l.max_header_bytes < MIN_HEADER_BYTES {
        problems.push(
            "limits.max_header_bytes",
            format!(
                "{} is below the minimum of {MIN_HEADER_BYTES}",
                l.max_header_bytes
            ),
        );
    }
    for (field, value) in [("limits.max_message_bytes", l.max_message_bytes)] {
        if value.bytes() == 0 {
            problems.push(field, "must be more than 0B");
        }
    }
}

fn upstream(config: &Config, problems: &mut Problems<'_>) {
    let u = &config.upstream;
    positive_duration(u.connect_timeout, "upstream.connect_timeout", problems);
    positive_duration(u.health_interval, "upstream.health_interval", problems);
    positive_duration(u.health_timeout, "upstream.health_timeout", problems);
    positive_duration(u.idle_timeout, "upstream.idle_timeout", problems);
    positive_duration(
        u.health_backoff_max,
        "upstream.health_backoff_max",
        problems,
    );
    for (field, value) in [
        ("upstream.health_max_rate", u.health_max_rate as usize),
        ("upstream.health_concurrency", u.health_concurrency),
        (
            "upstream.health_concurrency_per_server",
            u.health_concurrency_per_server,
        ),
    ] {
        if value == 0 {
            problems.push(field, "must be at least 1");
        }
    }
    if !u.health_interval.is_zero() && u.health_timeout > u.health_interval {
        problems.push(
            "upstream.health_timeout",
            format!(
                "{} is longer than upstream.health_interval ({}); probes would overlap",
                u.health_timeout, u.health_interval
            ),
        );
    }
}

fn positive_duration(value: Duration, field: &str, problems: &mut Problems<'_>) {
    if value.is_zero() {
        problems.push(field, "must be more than 0s");
    }
}

/// Origins are compared as the browser sends them: scheme, host and port, nothing more.
fn browser_sessions(session: &crate::BrowserSessionConfig, problems: &mut Problems<'_>) {
    if let Some(file) = &session.key_file {
        not_empty(file, "auth.session.key_file", problems);
    }
    for origin in &session.allowed_origins {
        let ok = origin.split_once("://").is_some_and(|(scheme, rest)| {
            matches!(scheme, "https" | "http") && !rest.is_empty() && !rest.contains('/')
        });
        if !ok {
            problems.push(
                "auth.session.allowed_origins",
                format!(
                    "{origin:?} is not an origin; write scheme, host and optional port, \
                     like \"https://podgate.example.com\" (no path, no trailing slash)"
                ),
            );
        }
    }
    positive_duration(session.max_lifetime, "auth.session.max_lifetime", problems);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_labels() {
        for ok in ["a", "prod", "prod-eu-1", "0", &"a".repeat(63)] {
            assert_eq!(dns_label_problem(ok), None, "{ok}");
        }
        for bad in ["", "Prod", "prod_1", "prod.eu", "é", &"a".repeat(64)] {
            assert_eq!(
                dns_label_problem(bad),
                Some("(lowercase letters, digits and '-', at most 63 characters)"),
                "{bad}"
            );
        }
        for bad in ["-a", "a-", "-"] {
            assert_eq!(
                dns_label_problem(bad),
                Some("(must start and end with a letter or digit)"),
                "{bad}"
            );
        }
    }

    #[test]
    fn listener_overlap() {
        let addr = |s: &str| s.parse::<SocketAddr>().expect("test address");
        assert!(overlaps(addr("0.0.0.0:80"), addr("127.0.0.1:80")));
        assert!(overlaps(addr("127.0.0.1:80"), addr("127.0.0.1:80")));
        assert!(overlaps(addr("[::]:80"), addr("127.0.0.1:80")));
        assert!(!overlaps(addr("0.0.0.0:80"), addr("[::1]:80")));
        assert!(!overlaps(addr("127.0.0.1:80"), addr("127.0.0.2:80")));
        assert!(!overlaps(addr("0.0.0.0:80"), addr("0.0.0.0:81")));
        assert!(!overlaps(addr("127.0.0.1:0"), addr("127.0.0.1:0")));
    }
}
