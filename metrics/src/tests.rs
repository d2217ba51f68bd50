//! Unit tests: the exposition is parsed back and checked series by series.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::*;

/// One sample of the text format: name, labels, value.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

struct Exposition {
    types: BTreeMap<String, String>,
    samples: Vec<Sample>,
}

impl Exposition {
    fn parse(text: &str) -> Exposition {
        let mut types = BTreeMap::new();
        let mut samples = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, ty) = rest.split_once(' ').expect("TYPE line");
                types.insert(name.to_string(), ty.to_string());
                continue;
            }
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            samples.push(parse_sample(line));
        }
        Exposition { types, samples }
    }

    fn find(&self, name: &str, labels: &[(&str, &str)]) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect()
    }

    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let found = self.find(name, labels);
        assert_eq!(found.len(), 1, "{name}{labels:?}: {found:?}");
        found[0].value
    }

    fn has(&self, name: &str) -> bool {
        self.samples.iter().any(|s| s.name == name)
    }
}

fn parse_sample(line: &str) -> Sample {
    let (name, rest) = match line.find('{') {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => {
            let (n, v) = line.split_once(' ').expect("sample");
            return Sample {
                name: n.to_string(),
                labels: BTreeMap::new(),
                value: v.parse().expect("value"),
            };
        }
    };
    let mut labels = BTreeMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        assert_eq!(chars.next(), Some('"'));
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(c) => value.push(c),
                    None => panic!("dangling escape"),
                },
                '"' => break,
                c => value.push(c),
            }
        }
        labels.insert(key.trim_start_matches(',').to_string(), value);
        match chars.next() {
            Some(',') => {
                if chars.peek() == Some(&'}') {
                    chars.next();
                    break;
                }
            }
            Some('}') => break,
            other => panic!("unexpected {other:?} in {line}"),
        }
    }
    let value: String = chars.collect();
    Sample {
        name: name.to_string(),
        labels,
        value: value.trim().parse().expect("value"),
    }
}

fn labels<'a>(session_id: &'a str, user: &'a str, cluster: &'a str) -> SessionLabels<'a> {
    SessionLabels {
        session_id,
        user,
        cluster,
        namespace: "default",
        pod: "shell-0",
        container: "main",
    }
}

fn metrics() -> Metrics {
    Metrics::new(["prod", "staging"], SessionSeries::default())
}

/// Every family of the interface, with its type and exact label names (without `le`).
const INTERFACE: &[(&str, &str, &[&str])] = &[
    ("podgate_sessions_active", "gauge", &["cluster"]),
    ("podgate_sessions_total", "counter", &["cluster", "outcome"]),
    (
        "podgate_session_duration_seconds",
        "histogram",
        &["cluster"],
    ),
    ("podgate_session_setup_seconds", "histogram", &["cluster"]),
    (
        "podgate_session_bytes_total",
        "counter",
        &["cluster", "direction"],
    ),
    (
        "podgate_session_info",
        "gauge",
        &[
            "session_id",
            "user",
            "cluster",
            "namespace",
            "pod",
            "container",
        ],
    ),
    (
        "podgate_session_relayed_bytes_total",
        "counter",
        &["session_id", "direction"],
    ),
    (
        "podgate_session_start_time_seconds",
        "gauge",
        &["session_id"],
    ),
    ("podgate_session_series_dropped_total", "counter", &[]),
    ("podgate_auth_failures_total", "counter", &["reason"]),
    (
        "podgate_upstream_requests_total",
        "counter",
        &["cluster", "code"],
    ),
    (
        "podgate_upstream_request_duration_seconds",
        "histogram",
        &["cluster"],
    ),
    ("podgate_cluster_up", "gauge", &["cluster"]),
    ("podgate_config_reloads_total", "counter", &["result"]),
    (
        "podgate_config_last_reload_success_timestamp_seconds",
        "gauge",
        &[],
    ),
    ("podgate_tls_handshake_failures_total", "counter", &[]),
    (
        "podgate_tls_certificate_expiry_timestamp_seconds",
        "gauge",
        &["use", "cluster"],
    ),
    ("podgate_build_info", "gauge", &["version", "revision"]),
    ("podgate_audit_write_failures_total", "counter", &[]),
    ("podgate_audit_lines_dropped_total", "counter", &[]),
    ("podgate_unauthenticated_requests_total", "counter", &[]),
];

#[test]
fn names_types_and_labels_are_exactly_the_interface() {
    let m = metrics();
    let s = m.session_started(labels("s-1", "alice", "prod"));
    s.established(Duration::from_millis(30));
    s.add(Direction::Stdin, 1);
    m.auth_failure("expired");
    m.upstream_request("prod", Some(200), Duration::from_millis(5));
    m.set_cluster_up("prod", true);
    m.config_reload(ReloadResult::Success);
    m.tls_handshake_failure();
    m.set_build_info("0.1.0", "abc123");
    m.set_certificate_expiry(CertificateUse::Serving, "", Some(1_800_000_000));
    m.set_certificate_expiry(CertificateUse::ClusterClient, "prod", Some(1_900_000_000));
    m.audit_write_failures(1);
    m.audit_line_dropped();
    m.unauthenticated_request();
    let e = Exposition::parse(&m.render());

    let podgate_families: BTreeSet<&str> = e
        .types
        .keys()
        .map(String::as_str)
        .filter(|n| n.starts_with("podgate_"))
        .collect();
    let expected: BTreeSet<&str> = INTERFACE.iter().map(|(n, _, _)| *n).collect();
    assert_eq!(podgate_families, expected);

    for (name, ty, label_names) in INTERFACE {
        assert_eq!(e.types[*name], *ty, "type of {name}");
        let expected: BTreeSet<&str> = label_names.iter().copied().collect();
        let sample_names: Vec<String> = if *ty == "histogram" {
            vec![
                format!("{name}_bucket"),
                format!("{name}_sum"),
                format!("{name}_count"),
            ]
        } else {
            vec![name.to_string()]
        };
        let mut seen = 0;
        for sample in e.samples.iter().filter(|s| sample_names.contains(&s.name)) {
            seen += 1;
            let mut got: BTreeSet<&str> = sample.labels.keys().map(String::as_str).collect();
            if sample.name.ends_with("_bucket") {
                assert!(got.remove("le"), "{sample:?} has no le");
            }
            assert_eq!(got, expected, "labels of {sample:?}");
        }
        assert!(seen > 0, "{name} has no samples");
    }
    s.finish(Outcome::Completed, Duration::from_secs(1));
}

#[test]
fn process_metrics_are_exported() {
    let e = Exposition::parse(&metrics().render());
    for name in [
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_cpu_seconds_total",
    ] {
        assert!(e.has(name), "{name} missing");
    }
    assert!(e.value("process_resident_memory_bytes", &[]) > 0.0);
    assert!(e.value("process_open_fds", &[]) > 0.0);
}

#[test]
fn per_cluster_series_appear_at_first_use_all_at_zero() {
    let m = metrics();
    let e = Exposition::parse(&m.render());
    // A configured cluster nobody used has none (a fleet's idle clusters cost no series).
    for name in [
        "podgate_sessions_active",
        "podgate_sessions_total",
        "podgate_session_bytes_total",
        "podgate_session_setup_seconds_count",
        "podgate_session_duration_seconds_count",
        "podgate_upstream_request_duration_seconds_count",
    ] {
        assert!(e.find(name, &[]).is_empty(), "{name} before any use");
    }
    // The first use creates every series of the cluster at once: an outcome that has not
    // happened yet reads 0, not absent. A session's own outcome is counted when it ends,
    // after its start created the series.
    drop(m.session_started(labels("s-0", "alice", "prod")));
    m.upstream_request("staging", Some(200), Duration::from_millis(1));
    let e = Exposition::parse(&m.render());
    assert_eq!(
        e.value(
            "podgate_upstream_request_duration_seconds_count",
            &[("cluster", "staging")]
        ),
        1.0
    );
    assert_eq!(
        e.value(
            "podgate_sessions_total",
            &[("cluster", "prod"), ("outcome", Outcome::CLAMPED.as_str())]
        ),
        1.0,
        "the dropped session"
    );
    for cluster in ["prod", "staging"] {
        assert_eq!(
            e.value("podgate_sessions_active", &[("cluster", cluster)]),
            0.0
        );
        for o in Outcome::ALL {
            let l = [("cluster", cluster), ("outcome", o.as_str())];
            let want = if cluster == "prod" && o == Outcome::CLAMPED {
                1.0
            } else {
                0.0
            };
            assert_eq!(e.value("podgate_sessions_total", &l), want);
        }
        for d in Direction::ALL {
            let l = [("cluster", cluster), ("direction", d.as_str())];
            assert_eq!(e.value("podgate_session_bytes_total", &l), 0.0);
        }
        assert_eq!(
            e.value(
                "podgate_session_setup_seconds_count",
                &[("cluster", cluster)]
            ),
            0.0
        );
    }
    assert_eq!(
        e.value(
            "podgate_session_duration_seconds_count",
            &[("cluster", "prod")]
        ),
        1.0
    );
    for r in ["success", "failure"] {
        assert_eq!(
            e.value("podgate_config_reloads_total", &[("result", r)]),
            0.0
        );
    }
    assert_eq!(e.value("podgate_session_series_dropped_total", &[]), 0.0);
    assert!(!e.has("podgate_session_info"));
    assert!(!e.types.contains_key("podgate_session_info"));
}

#[test]
fn a_session_counts_and_its_series_appear_and_disappear() {
    let m = metrics();
    let s = m.session_started(labels("s-1", "alice", "prod"));
    assert!(s.exported());
    s.established(Duration::from_millis(40));
    s.add(Direction::Stdin, 3);
    s.add(Direction::Stdout, 100);
    s.add(Direction::Stdout, 28);
    s.add(Direction::Stderr, 7);
    assert_eq!(s.bytes(Direction::Stdout), 128);

    let e = Exposition::parse(&m.render());
    let info = e.find("podgate_session_info", &[("session_id", "s-1")]);
    assert_eq!(info.len(), 1);
    let want: BTreeMap<String, String> = [
        ("session_id", "s-1"),
        ("user", "alice"),
        ("cluster", "prod"),
        ("namespace", "default"),
        ("pod", "shell-0"),
        ("container", "main"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(info[0].labels, want);
    assert_eq!(info[0].value, 1.0);
    for (d, n) in [("stdin", 3.0), ("stdout", 128.0), ("stderr", 7.0)] {
        let l = [("session_id", "s-1"), ("direction", d)];
        assert_eq!(e.value("podgate_session_relayed_bytes_total", &l), n);
        let l = [("cluster", "prod"), ("direction", d)];
        assert_eq!(e.value("podgate_session_bytes_total", &l), n);
    }
    let start = e.value(
        "podgate_session_start_time_seconds",
        &[("session_id", "s-1")],
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((now - start).abs() < 60.0, "start {start}, now {now}");
    assert_eq!(
        e.value("podgate_sessions_active", &[("cluster", "prod")]),
        1.0
    );
    assert_eq!(
        e.value(
            "podgate_session_setup_seconds_count",
            &[("cluster", "prod")]
        ),
        1.0
    );
    assert_eq!(m.exported_sessions(), 1);

    s.finish(Outcome::ExitNonzero, Duration::from_secs(90));
    let text = m.render();
    assert!(!text.contains("s-1"), "{text}");
    let e = Exposition::parse(&text);
    for name in [
        "podgate_session_info",
        "podgate_session_relayed_bytes_total",
        "podgate_session_start_time_seconds",
    ] {
        assert!(!e.types.contains_key(name), "{name} still exported");
    }
    assert_eq!(
        e.value("podgate_sessions_active", &[("cluster", "prod")]),
        0.0
    );
    let l = [("cluster", "prod"), ("outcome", "exit_nonzero")];
    assert_eq!(e.value("podgate_sessions_total", &l), 1.0);
    let l = [("cluster", "prod"), ("direction", "stdout")];
    assert_eq!(e.value("podgate_session_bytes_total", &l), 128.0);
    let l = [("cluster", "prod")];
    assert_eq!(e.value("podgate_session_duration_seconds_count", &l), 1.0);
    assert_eq!(e.value("podgate_session_duration_seconds_sum", &l), 90.0);
    assert_eq!(m.exported_sessions(), 0);
}

#[test]
fn a_dropped_guard_ends_the_session_as_clamped() {
    let m = metrics();
    {
        let s = m.session_started(labels("s-1", "alice", "staging"));
        s.add(Direction::Stdout, 5);
    }
    let e = Exposition::parse(&m.render());
    assert!(!e.has("podgate_session_info"));
    assert_eq!(
        e.value("podgate_sessions_active", &[("cluster", "staging")]),
        0.0
    );
    let l = [
        ("cluster", "staging"),
        ("outcome", Outcome::CLAMPED.as_str()),
    ];
    assert_eq!(e.value("podgate_sessions_total", &l), 1.0);
    let total: f64 = e
        .find("podgate_sessions_total", &[("cluster", "staging")])
        .iter()
        .map(|s| s.value)
        .sum();
    assert_eq!(total, 1.0, "counted once");
}

#[test]
fn the_cap_bounds_per_session_series_and_counts_the_rest() {
    let m = Metrics::new(
        ["prod"],
        SessionSeries {
            enabled: true,
            max_sessions: 2,
        },
    );
    let a = m.session_started(labels("a", "u", "prod"));
    let b = m.session_started(labels("b", "u", "prod"));
    let c = m.session_started(labels("c", "u", "prod"));
    assert!(a.exported() && b.exported() && !c.exported());
    c.add(Direction::Stdout, 10);
    let e = Exposition::parse(&m.render());
    assert_eq!(e.find("podgate_session_info", &[]).len(), 2);
    assert!(
        e.find("podgate_session_info", &[("session_id", "c")])
            .is_empty()
    );
    assert_eq!(e.value("podgate_session_series_dropped_total", &[]), 1.0);
    // Aggregates still count the session without series.
    assert_eq!(
        e.value("podgate_sessions_active", &[("cluster", "prod")]),
        3.0
    );
    let l = [("cluster", "prod"), ("direction", "stdout")];
    assert_eq!(e.value("podgate_session_bytes_total", &l), 10.0);

    // A slot frees when an exported session ends; the session over the cap never gets one.
    a.finish(Outcome::Completed, Duration::ZERO);
    let d = m.session_started(labels("d", "u", "prod"));
    assert!(d.exported());
    let e = Exposition::parse(&m.render());
    let ids: BTreeSet<&str> = e
        .find("podgate_session_info", &[])
        .iter()
        .map(|s| s.labels["session_id"].as_str())
        .collect();
    assert_eq!(ids, BTreeSet::from(["b", "d"]));
    c.finish(Outcome::Completed, Duration::ZERO);
    assert_eq!(m.exported_sessions(), 2);
    drop((b, d));
    assert_eq!(m.exported_sessions(), 0);
}

#[test]
fn the_switch_turns_per_session_series_off() {
    let m = Metrics::new(
        ["prod"],
        SessionSeries {
            enabled: false,
            max_sessions: 10,
        },
    );
    let s = m.session_started(labels("s-1", "alice", "prod"));
    assert!(!s.exported());
    s.add(Direction::Stdin, 4);
    assert_eq!(s.bytes(Direction::Stdin), 4, "counted all the same");
    let e = Exposition::parse(&m.render());
    assert!(!e.has("podgate_session_info"));
    assert!(!e.has("podgate_session_relayed_bytes_total"));
    assert_eq!(
        e.value("podgate_session_series_dropped_total", &[]),
        0.0,
        "off is not dropped"
    );
    assert_eq!(
        e.value("podgate_sessions_active", &[("cluster", "prod")]),
        1.0
    );

    // Switching on applies to new sessions; switching off hides live ones at once.
    m.set_session_series(SessionSeries {
        enabled: true,
        max_sessions: 10,
    });
    let t = m.session_started(labels("s-2", "alice", "prod"));
    assert!(t.exported());
    let e = Exposition::parse(&m.render());
    assert_eq!(e.find("podgate_session_info", &[]).len(), 1);
    m.set_session_series(SessionSeries {
        enabled: false,
        max_sessions: 10,
    });
    assert!(!m.render().contains("podgate_session_info"));
    drop((s, t));
    assert_eq!(m.exported_sessions(), 0);
}

#[test]
fn outcomes_are_a_closed_set() {
    let labels: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
    assert_eq!(
        labels,
        [
            "completed",
            "exit_nonzero",
            "client_closed",
            "client_unresponsive",
            "client_error",
            "upstream_closed",
            "upstream_lost",
            "upstream_error",
            "idle_timeout",
            "max_duration",
            "shutdown",
            "credential_expired",
            "access_revoked",
            "terminated",
            "recording_failed",
            "resume_window_expired",
            "denied",
            "limit_reached",
            "bad_request"
        ]
    );
    for o in Outcome::ALL {
        assert_eq!(Outcome::parse(o.as_str()), Some(o));
        assert_eq!(Outcome::clamp(o.as_str()), o);
        assert_eq!(Outcome::ALL[o.index()], o);
    }
    for other in [
        "resume_expired",
        "",
        "Completed",
        "completed ",
        "exit_nonzero\n",
    ] {
        assert_eq!(Outcome::parse(other), None);
        assert_eq!(Outcome::clamp(other), Outcome::CLAMPED);
    }
    assert_eq!(Outcome::from_exit_code(0), Outcome::Completed);
    assert_eq!(Outcome::from_exit_code(2), Outcome::ExitNonzero);
    for d in Direction::ALL {
        assert_eq!(Direction::ALL[d.index()], d);
    }
    assert_eq!(Direction::from_channel(1), Some(Direction::Stdout));
    assert_eq!(Direction::from_channel(4), None);
}

#[test]
fn rejected_sessions_count_without_becoming_active() {
    let m = metrics();
    m.session_rejected("prod", Outcome::LimitReached);
    m.session_rejected("prod", Outcome::clamp("not-an-outcome"));
    let e = Exposition::parse(&m.render());
    let l = [("cluster", "prod"), ("outcome", "limit_reached")];
    assert_eq!(e.value("podgate_sessions_total", &l), 1.0);
    let l = [("cluster", "prod"), ("outcome", "upstream_error")];
    assert_eq!(e.value("podgate_sessions_total", &l), 1.0);
    assert_eq!(
        e.value("podgate_sessions_active", &[("cluster", "prod")]),
        0.0
    );
    let outcomes: BTreeSet<&str> = e
        .find("podgate_sessions_total", &[])
        .iter()
        .map(|s| s.labels["outcome"].as_str())
        .collect();
    assert_eq!(outcomes.len(), Outcome::ALL.len());
}

#[test]
fn unconfigured_clusters_do_not_mint_series() {
    let m = metrics();
    let s = m.session_started(labels("s-1", "alice", "no-such-cluster"));
    m.upstream_request("also-not", Some(404), Duration::from_millis(1));
    m.session_rejected("nope", Outcome::Denied);
    assert!(!m.set_cluster_up("nope", false));
    let text = m.render();
    for bad in ["no-such-cluster", "also-not", "nope"] {
        assert!(!text.contains(bad), "{bad} in\n{text}");
    }
    let e = Exposition::parse(&text);
    let info = e.find("podgate_session_info", &[("session_id", "s-1")]);
    assert_eq!(info[0].labels["cluster"], UNKNOWN_CLUSTER);
    assert_eq!(
        e.value("podgate_sessions_active", &[("cluster", UNKNOWN_CLUSTER)]),
        1.0
    );
    assert!(
        e.find("podgate_cluster_up", &[("cluster", UNKNOWN_CLUSTER)])
            .is_empty()
    );
    drop(s);
}

#[test]
fn set_clusters_follows_the_config() {
    let m = metrics();
    assert!(m.set_cluster_up("prod", true));
    assert!(m.set_cluster_up("staging", false));
    m.set_clusters(["prod", "dev"]);
    let e = Exposition::parse(&m.render());
    assert!(
        e.find("podgate_cluster_up", &[("cluster", "staging")])
            .is_empty()
    );
    assert_eq!(e.value("podgate_cluster_up", &[("cluster", "prod")]), 1.0);
    assert!(
        e.find("podgate_sessions_active", &[("cluster", "dev")])
            .is_empty(),
        "no series before the first use"
    );
    let s = m.session_started(labels("s-1", "u", "dev"));
    let e = Exposition::parse(&m.render());
    assert_eq!(
        e.value("podgate_sessions_active", &[("cluster", "dev")]),
        1.0
    );
    drop(s);
}

#[test]
fn auth_reasons_and_status_codes_are_bounded() {
    let m = metrics();
    m.auth_failure("expired");
    m.auth_failure("unknown_token");
    m.auth_failure("Not A Label");
    m.auth_failure("");
    m.upstream_request("prod", Some(201), Duration::from_millis(1));
    m.upstream_request("prod", None, Duration::from_secs(5));
    m.upstream_request("prod", Some(42), Duration::from_millis(1));
    let e = Exposition::parse(&m.render());
    let reasons: BTreeSet<&str> = e
        .find("podgate_auth_failures_total", &[])
        .iter()
        .map(|s| s.labels["reason"].as_str())
        .collect();
    assert_eq!(
        reasons,
        BTreeSet::from(["expired", "unknown_token", OTHER_REASON])
    );
    assert_eq!(
        e.value("podgate_auth_failures_total", &[("reason", OTHER_REASON)]),
        2.0
    );
    let codes: BTreeSet<&str> = e
        .find("podgate_upstream_requests_total", &[("cluster", "prod")])
        .iter()
        .map(|s| s.labels["code"].as_str())
        .collect();
    assert_eq!(codes, BTreeSet::from(["201", NO_RESPONSE_CODE, "other"]));
    assert_eq!(
        e.value(
            "podgate_upstream_request_duration_seconds_count",
            &[("cluster", "prod")]
        ),
        3.0
    );
}

#[test]
fn a_duplicate_session_id_does_not_disturb_the_first() {
    let m = metrics();
    let first = m.session_started(labels("same", "alice", "prod"));
    let second = m.session_started(labels("same", "bob", "prod"));
    assert!(first.exported() && !second.exported());
    second.finish(Outcome::Completed, Duration::ZERO);
    let e = Exposition::parse(&m.render());
    let info = e.find("podgate_session_info", &[("session_id", "same")]);
    assert_eq!(info.len(), 1);
    assert_eq!(info[0].labels["user"], "alice");
    drop(first);
}

#[test]
fn label_values_from_users_are_escaped() {
    let m = metrics();
    let s = m.session_started(SessionLabels {
        session_id: "s-1",
        user: "o\"brien\\\nx",
        cluster: "prod",
        namespace: "ns",
        pod: "p",
        container: "",
    });
    let e = Exposition::parse(&m.render());
    let info = e.find("podgate_session_info", &[("session_id", "s-1")]);
    assert_eq!(info[0].labels["user"], "o\"brien\\\nx");
    assert_eq!(info[0].labels["container"], "");
    drop(s);
}

#[test]
fn concurrent_byte_counts_add_up() {
    let m = metrics();
    let s = m.session_started(labels("s-1", "alice", "prod"));
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..10_000 {
                    s.add(Direction::Stdout, 3);
                }
            });
        }
    });
    assert_eq!(s.bytes(Direction::Stdout), 120_000);
    let e = Exposition::parse(&m.render());
    let l = [("cluster", "prod"), ("direction", "stdout")];
    assert_eq!(e.value("podgate_session_bytes_total", &l), 120_000.0);
    drop(s);
}

#[test]
fn handles_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Metrics>();
    check::<SessionMetrics>();
}

#[test]
fn operational_series_say_what_they_measure() {
    let m = metrics();
    // One build_info series, whatever was set before.
    m.set_build_info("0.1.0", "old");
    m.set_build_info("0.1.0", "abc123");
    let e = Exposition::parse(&m.render());
    assert_eq!(e.find("podgate_build_info", &[]).len(), 1);
    assert_eq!(
        e.value(
            "podgate_build_info",
            &[("version", "0.1.0"), ("revision", "abc123")]
        ),
        1.0
    );
    // Certificate expiry: the serving one, and clients of configured clusters only.
    m.set_certificate_expiry(CertificateUse::Serving, "", Some(1_800_000_000));
    m.set_certificate_expiry(CertificateUse::ClusterClient, "prod", Some(1_900_000_000));
    m.set_certificate_expiry(CertificateUse::ClusterClient, "nope", Some(1));
    let e = Exposition::parse(&m.render());
    let name = "podgate_tls_certificate_expiry_timestamp_seconds";
    assert_eq!(
        e.value(name, &[("use", "serving"), ("cluster", "")]),
        1_800_000_000.0
    );
    assert_eq!(
        e.value(name, &[("use", "cluster_client"), ("cluster", "prod")]),
        1_900_000_000.0
    );
    assert_eq!(
        e.find(name, &[]).len(),
        2,
        "an unconfigured cluster mints no series"
    );
    // A cluster that goes away takes its certificate with it.
    m.set_clusters(["staging"]);
    let e = Exposition::parse(&m.render());
    assert_eq!(e.find(name, &[]).len(), 1);
    // The last successful reload's time.
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as f64;
    m.config_reload(ReloadResult::Failure);
    let e = Exposition::parse(&m.render());
    assert_eq!(
        e.value("podgate_config_last_reload_success_timestamp_seconds", &[]),
        0.0
    );
    m.config_reload(ReloadResult::Success);
    let e = Exposition::parse(&m.render());
    assert!(e.value("podgate_config_last_reload_success_timestamp_seconds", &[]) >= before);
}
