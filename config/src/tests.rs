//! Tests of the public entry points: defaults, the exact text of every message, imports
//! end to end and the shipped examples.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::*;

const FILE: &str = "/etc/podgate/podgate.yaml";

const MINIMAL: &str = "\
tls: {cert_file: tls.crt, key_file: /abs/tls.key}
clusters:
- id: local
  in_cluster: true
";

fn no_files(p: &Path) -> io::Result<String> {
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        format!("unexpected read of {}", p.display()),
    ))
}

fn ok(text: &str) -> Config {
    match parse_with(Path::new(FILE), text, no_files) {
        Ok(c) => c,
        Err(e) => panic!("expected a valid config, got:\n{e}"),
    }
}

fn err(text: &str) -> String {
    match parse_with(Path::new(FILE), text, no_files) {
        Ok(c) => panic!("expected an error, got {c:?}"),
        Err(e) => e.to_string(),
    }
}

/// MINIMAL plus `extra` YAML; `extra` must not repeat `tls` or `clusters`.
fn with(extra: &str) -> String {
    format!("{MINIMAL}{extra}")
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

#[test]
fn every_default() {
    let config = ok(MINIMAL);
    assert_eq!(config.listen, addr("0.0.0.0:8443"));
    assert_eq!(config.admin.listen, addr("127.0.0.1:9090"));
    assert_eq!(config.auth.tokens_file, None);
    assert!(config.imports.is_empty());
    assert_eq!(
        config.clusters,
        [ClusterConfig {
            id: "local".into(),
            kubeconfig: None,
            context: None,
            in_cluster: true,
            agent: None,
            impersonate: true,
            access: Default::default(),
            display_name: None,
            environment: None,
            labels: Default::default(),
            recording: None,
            record_input: None,
        }]
    );
    assert_eq!(config.clusters[0].source(), ClusterSource::InCluster);

    let s = &config.sessions;
    assert_eq!(s.keepalive, Duration::from_secs(20));
    assert_eq!(s.idle_timeout, Duration::from_secs(1800));
    assert_eq!(s.max_duration, Duration::from_secs(43_200));
    assert_eq!(s.credential_grace, Duration::from_secs(300));
    assert_eq!(config.log.format, LogFormat::Text);

    let l = &config.limits;
    assert_eq!(l.max_sessions, 20_000);
    assert_eq!(l.max_sessions_per_user, 100);
    assert_eq!(l.max_sessions_per_cluster, 10_000);
    assert_eq!(l.max_connections, 40_000);
    assert_eq!(l.header_read_timeout, Duration::from_secs(10));
    assert_eq!(l.max_header_bytes, ByteSize(65_536));
    assert_eq!(l.max_message_bytes, ByteSize(1_048_576));
    assert_eq!(l.session_buffer_bytes, None);
    assert!(config.ignored_settings().is_empty());
    let old = parse(
        Path::new("/etc/podgate/podgate.yaml"),
        "tls: {cert_file: c, key_file: k}\nclusters: [{id: a, kubeconfig: k}]\nlimits: {session_buffer_bytes: 64KiB}\n",
    )
    .expect("an old file still loads");
    assert_eq!(old.ignored_settings().len(), 1);
    assert!(old.ignored_settings()[0].starts_with("limits.session_buffer_bytes has no effect"));

    let u = &config.upstream;
    assert_eq!(u.connect_timeout, Duration::from_secs(5));
    assert_eq!(u.health_interval, Duration::from_secs(15));
    assert_eq!(u.health_timeout, Duration::from_secs(5));

    // Sections given but empty take the same defaults.
    let spelled = ok(&with(
        "admin: {}\nauth: {}\nsessions: {}\nlimits: {}\nupstream: {}\n",
    ));
    assert_eq!(spelled, config);
}

#[test]
fn import_defaults() {
    let config = parse_with(
        Path::new(FILE),
        "tls: {cert_file: a, key_file: b}\nimports:\n- kubeconfig: k\n",
        |_| Ok("contexts:\n- name: one\n".to_string()),
    )
    .expect("valid");
    assert_eq!(
        config.imports,
        [ImportConfig {
            kubeconfig: PathBuf::from("/etc/podgate/k"),
            impersonate: true,
            contexts: None,
        }]
    );
    assert!(config.clusters[0].impersonate);
}

#[test]
fn relative_paths_resolve_against_the_config_directory() {
    let config = parse_with(
        Path::new("conf/podgate.yaml"),
        "\
tls: {cert_file: tls.crt, key_file: /abs/tls.key}
clusters:
- {id: a, kubeconfig: kube/a.yaml, context: ctx}
imports:
- kubeconfig: ../many.kubeconfig
auth: {tokens_file: tokens.yaml}
",
        |p| {
            assert_eq!(p, Path::new("conf/../many.kubeconfig"));
            Ok("contexts: [{name: b}]".to_string())
        },
    )
    .expect("valid");
    assert_eq!(config.tls.cert_file, Path::new("conf/tls.crt"));
    assert_eq!(config.tls.key_file, Path::new("/abs/tls.key"));
    assert_eq!(
        config.clusters[0].source(),
        ClusterSource::Kubeconfig {
            path: Path::new("conf/kube/a.yaml"),
            context: Some("ctx"),
        }
    );
    assert_eq!(
        config.clusters[1].kubeconfig.as_deref(),
        Some(Path::new("conf/../many.kubeconfig"))
    );
    assert_eq!(
        config.auth.tokens_file.as_deref(),
        Some(Path::new("conf/tokens.yaml"))
    );

    // A bare file name has no directory to join.
    let config = parse_with(Path::new("podgate.yaml"), MINIMAL, no_files).expect("valid");
    assert_eq!(config.tls.cert_file, Path::new("tls.crt"));
}

#[test]
fn cluster_id_errors() {
    assert_eq!(
        err("\
tls: {cert_file: a, key_file: b}
clusters:
- {id: prod, in_cluster: true}
- {id: Prod_1, in_cluster: true}
- {id: -edge, in_cluster: true}
- {id: prod, in_cluster: true}
- {id: '', in_cluster: true}
"),
        "\
/etc/podgate/podgate.yaml: clusters[1].id: \"Prod_1\" is not a DNS label (lowercase letters, digits and '-', at most 63 characters)
/etc/podgate/podgate.yaml: clusters[2].id: \"-edge\" is not a DNS label (must start and end with a letter or digit)
/etc/podgate/podgate.yaml: clusters[3].id: \"prod\" is already used by clusters[0]
/etc/podgate/podgate.yaml: clusters[4].id: is empty"
    );
}

#[test]
fn cluster_source_errors() {
    assert_eq!(
        err("\
tls: {cert_file: a, key_file: b}
clusters:
- {id: both, kubeconfig: k, in_cluster: true}
- {id: neither}
- {id: ctx, in_cluster: true, context: c}
- {id: empty, kubeconfig: ''}
- {id: three, kubeconfig: k, agent: {token_file: t}}
- {id: notoken, agent: {}}
- {id: twotokens, agent: {token_file: t, token_sha256: ab}}
- {id: badhash, agent: {token_sha256: 'not hex'}}
- {id: noimp, impersonate: false, agent: {token_file: t}}
"),
        "\
/etc/podgate/podgate.yaml: clusters[0]: set only one of kubeconfig, in_cluster: true and agent
/etc/podgate/podgate.yaml: clusters[1]: needs kubeconfig, in_cluster: true or agent to know how to reach the cluster
/etc/podgate/podgate.yaml: clusters[2].context: only applies with kubeconfig
/etc/podgate/podgate.yaml: clusters[3].kubeconfig: is empty
/etc/podgate/podgate.yaml: clusters[4]: set only one of kubeconfig, in_cluster: true and agent
/etc/podgate/podgate.yaml: clusters[5].agent: needs token_file or token_sha256: what the cluster's agents must show
/etc/podgate/podgate.yaml: clusters[6].agent: set either token_file or token_sha256, not both
/etc/podgate/podgate.yaml: clusters[7].agent.token_sha256: is not a SHA-256 in hex (64 hex digits, e.g. from `printf %s TOKEN | sha256sum`)
/etc/podgate/podgate.yaml: clusters[8].impersonate: cannot be false for an agent cluster: the agent only forwards requests that impersonate the person who sent them"
    );
}

#[test]
fn agent_cluster_sources() {
    let config = parse(
        Path::new("/etc/podgate/podgate.yaml"),
        "tls: {cert_file: a, key_file: b}\nclusters:\n- {id: edge, agent: {token_file: edge.token}}\n- {id: hashed, agent: {token_sha256: 9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08}}\n",
    )
    .expect("valid");
    assert_eq!(
        config.clusters[0].source(),
        ClusterSource::Agent(crate::AgentToken::File(Path::new(
            "/etc/podgate/edge.token"
        )))
    );
    assert_eq!(
        config.clusters[1].source(),
        ClusterSource::Agent(crate::AgentToken::Sha256(
            "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08"
        ))
    );
}

#[test]
fn no_clusters() {
    assert_eq!(
        err("tls: {cert_file: a, key_file: b}\n"),
        "/etc/podgate/podgate.yaml: clusters: no clusters: add at least one under clusters or imports"
    );
}

#[test]
fn empty_paths() {
    assert_eq!(
        err("\
tls: {cert_file: '', key_file: ''}
clusters: [{id: a, in_cluster: true}]
imports: [{kubeconfig: ''}]
auth: {tokens_file: ''}
"),
        "\
/etc/podgate/podgate.yaml: tls.cert_file: is empty
/etc/podgate/podgate.yaml: tls.key_file: is empty
/etc/podgate/podgate.yaml: imports[0].kubeconfig: is empty
/etc/podgate/podgate.yaml: auth.tokens_file: is empty"
    );
}

#[test]
fn admin_listener_must_not_overlap() {
    let expected = |admin: &str, public: &str| {
        format!(
            "/etc/podgate/podgate.yaml: admin.listen: {admin} overlaps listen ({public}); the \
             admin listener needs its own port so metrics and debug pages are never served \
             publicly"
        )
    };
    assert_eq!(
        err(&with("admin: {listen: 127.0.0.1:8443}\n")),
        expected("127.0.0.1:8443", "0.0.0.0:8443")
    );
    assert_eq!(
        err(&with("listen: 127.0.0.1:9090\n")),
        expected("127.0.0.1:9090", "127.0.0.1:9090")
    );
    // Different ports, or OS-chosen ports, are fine.
    ok(&with("listen: 127.0.0.1:0\nadmin: {listen: 127.0.0.1:0}\n"));
    ok(&with(
        "listen: '[::1]:9090'\nadmin: {listen: 0.0.0.0:9090}\n",
    ));
}

#[test]
fn session_errors() {
    assert_eq!(
        err(&with("sessions: {keepalive: 0s}\n")),
        "/etc/podgate/podgate.yaml: sessions.keepalive: must be more than 0s"
    );
    assert_eq!(
        err(&with("sessions: {keepalive: 1m, idle_timeout: 1m}\n")),
        "/etc/podgate/podgate.yaml: sessions.keepalive: 1m must be shorter than \
         sessions.idle_timeout (1m), or a quiet client is cut off before it is ever pinged"
    );
    // With the idle timeout off, any keepalive goes; both timeouts may be off.
    let config = ok(&with(
        "sessions: {keepalive: 2h, idle_timeout: 0s, max_duration: 0s}\n",
    ));
    assert_eq!(config.sessions.idle_timeout.enabled(), None);
    assert_eq!(config.sessions.max_duration.enabled(), None);
}

#[test]
fn browser_session_errors() {
    assert_eq!(
        err(&with(
            "auth: {session: {allowed_origins: [\"https://ok.example:8443\", \"https://x.example/\"]}}\n"
        )),
        "/etc/podgate/podgate.yaml: auth.session.allowed_origins: \"https://x.example/\" is not \
         an origin; write scheme, host and optional port, like \"https://podgate.example.com\" \
         (no path, no trailing slash)"
    );
    assert_eq!(
        err(&with("auth: {session: {max_lifetime: 0s}}\n")),
        "/etc/podgate/podgate.yaml: auth.session.max_lifetime: must be more than 0s"
    );
    let config = ok(&with("auth: {session: {key_file: cookie-key}}\n"));
    assert_eq!(
        config.auth.session.key_file.as_deref(),
        Some(std::path::Path::new("/etc/podgate/cookie-key"))
    );
    assert_eq!(config.auth.session.max_lifetime.get().as_secs(), 12 * 3600);
}

#[test]
fn limit_errors() {
    assert_eq!(
        err(&with(
            "\
limits:
  max_sessions: 0
  max_sessions_per_user: 0
  max_sessions_per_cluster: 0
  max_connections: 0
  header_read_timeout: 0s
  max_header_bytes: 4KiB
  max_message_bytes: 0
"
        )),
        "\
/etc/podgate/podgate.yaml: limits.max_sessions: must be at least 1
/etc/podgate/podgate.yaml: limits.max_sessions_per_user: must be at least 1
/etc/podgate/podgate.yaml: limits.max_sessions_per_cluster: must be at least 1
/etc/podgate/podgate.yaml: limits.max_connections: must be at least 1
/etc/podgate/podgate.yaml: limits.header_read_timeout: must be more than 0s
/etc/podgate/podgate.yaml: limits.max_header_bytes: 4KiB is below the minimum of 8KiB
/etc/podgate/podgate.yaml: limits.max_message_bytes: must be more than 0B"
    );
    assert_eq!(
        err(&with(
            "limits: {max_sessions: 10, max_sessions_per_user: 11, max_sessions_per_cluster: 12}\n"
        )),
        "\
/etc/podgate/podgate.yaml: limits.max_sessions_per_user: 11 is more than limits.max_sessions (10)
/etc/podgate/podgate.yaml: limits.max_sessions_per_cluster: 12 is more than limits.max_sessions (10)"
    );
    let config = ok(&with(
        "limits: {max_sessions: 10, max_sessions_per_user: 10, max_header_bytes: 8192, \
         max_sessions_per_cluster: 10, max_message_bytes: 16 MiB}\n",
    ));
    assert_eq!(config.limits.max_header_bytes, ByteSize(8192));
    assert_eq!(config.limits.max_message_bytes, ByteSize(16 << 20));
}

#[test]
fn upstream_errors() {
    assert_eq!(
        err(&with(
            "upstream: {connect_timeout: 0s, health_interval: 0s, health_timeout: 0s}\n"
        )),
        "\
/etc/podgate/podgate.yaml: upstream.connect_timeout: must be more than 0s
/etc/podgate/podgate.yaml: upstream.health_interval: must be more than 0s
/etc/podgate/podgate.yaml: upstream.health_timeout: must be more than 0s"
    );
    assert_eq!(
        err(&with(
            "upstream: {health_interval: 10s, health_timeout: 11s}\n"
        )),
        "/etc/podgate/podgate.yaml: upstream.health_timeout: 11s is longer than \
         upstream.health_interval (10s); probes would overlap"
    );
}

#[test]
fn all_problems_are_reported_together() {
    let message = err("\
tls: {cert_file: a, key_file: b}
listen: 127.0.0.1:9090
clusters: [{id: Bad}]
sessions: {keepalive: 0s}
limits: {max_connections: 0}
");
    assert_eq!(message.lines().count(), 5, "{message}");
    assert!(
        message
            .lines()
            .all(|l| l.starts_with("/etc/podgate/podgate.yaml: "))
    );
}

#[test]
fn unknown_fields_name_file_field_and_line() {
    let message = err(&with("sessions:\n  keepalive: 20s\n  idle_timout: 5m\n"));
    assert!(
        message.starts_with(
            "/etc/podgate/podgate.yaml: sessions: unknown field `idle_timout`, expected one of"
        ),
        "{message}"
    );
    assert!(message.ends_with("at line 7 column 3"), "{message}");

    let message = err("tls: {cert_file: a, key_file: b}\nclusters:\n- id: a\n  incluster: true\n");
    assert!(
        message.starts_with("/etc/podgate/podgate.yaml: clusters[0]: unknown field `incluster`"),
        "{message}"
    );
    assert!(message.contains("line 4"), "{message}");

    match parse_with(
        Path::new(FILE),
        "tls: {cert_file: a, key_file: b}\nlisten_on: x\n",
        no_files,
    ) {
        Err(ConfigError::Syntax { location, .. }) => assert_eq!(location, Some((2, 1))),
        other => panic!("expected a syntax error, got {other:?}"),
    }
}

#[test]
fn type_and_syntax_errors_name_file_field_and_line() {
    let message = err(&with("sessions:\n  keepalive: 20\n"));
    assert_eq!(
        message,
        "/etc/podgate/podgate.yaml: sessions.keepalive: missing unit in \"20\": write e.g. \
         \"20s\" (units: ms, s, m, h, d) at line 6 column 14"
    );
    let message = err(&with("limits:\n  max_header_bytes: 5x\n"));
    assert_eq!(
        message,
        "/etc/podgate/podgate.yaml: limits.max_header_bytes: \"5x\": unknown unit \"x\" \
         (units: B, KiB, MiB, GiB, KB, MB, GB) at line 6 column 21"
    );
    let message = err(&with("listen: nowhere\n"));
    assert!(
        message.starts_with("/etc/podgate/podgate.yaml: listen: invalid socket address"),
        "{message}"
    );
    let message = err(&with("limits: {max_sessions: -1}\n"));
    assert!(
        message.starts_with("/etc/podgate/podgate.yaml: limits.max_sessions: "),
        "{message}"
    );
    assert!(message.contains("line 5"), "{message}");
    let message = err("clusters: [}\n");
    assert!(
        message.starts_with("/etc/podgate/podgate.yaml: "),
        "{message}"
    );
    assert!(message.contains("line 1"), "{message}");
    let message = err("clusters: []\n");
    assert!(message.contains("missing field `tls`"), "{message}");
}

#[test]
fn missing_file() {
    let path = Path::new("/nonexistent/podgate-config-test/podgate.yaml");
    let io_error = std::fs::read_to_string(path).map(|_| ()).unwrap_err();
    let message = load(path).map(|_| ()).unwrap_err().to_string();
    assert_eq!(
        message,
        format!("/nonexistent/podgate-config-test/podgate.yaml: cannot read: {io_error}")
    );
}

const FLEET: &str = "\
current-context: EU_West
contexts:
- name: EU_West
  context: {cluster: eu, user: u}
- name: us-east
  context: {cluster: us, user: u}
- name: prod
  context: {cluster: p, user: u}
";

fn fleet(p: &Path) -> io::Result<String> {
    if p == Path::new("/etc/podgate/fleet.kubeconfig") {
        Ok(FLEET.to_string())
    } else {
        Err(io::Error::from(io::ErrorKind::NotFound))
    }
}

#[test]
fn imports_expand_after_explicit_clusters() {
    let config = parse_with(
        Path::new(FILE),
        "\
tls: {cert_file: a, key_file: b}
clusters: [{id: local, in_cluster: true}]
imports:
- kubeconfig: fleet.kubeconfig
  impersonate: false
  contexts: [us-east, EU_West]
",
        fleet,
    )
    .expect("valid");
    let ids: Vec<_> = config.clusters.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["local", "us-east", "eu-west"]);
    assert_eq!(
        config.clusters[2],
        ClusterConfig {
            id: "eu-west".into(),
            kubeconfig: Some(PathBuf::from("/etc/podgate/fleet.kubeconfig")),
            context: Some("EU_West".into()),
            in_cluster: false,
            agent: None,
            impersonate: false,
            access: Default::default(),
            display_name: None,
            environment: None,
            labels: Default::default(),
            recording: None,
            record_input: None,
        }
    );
}

#[test]
fn import_errors() {
    let message = parse_with(
        Path::new(FILE),
        "\
tls: {cert_file: a, key_file: b}
clusters: [{id: prod, in_cluster: true}]
imports:
- kubeconfig: fleet.kubeconfig
- kubeconfig: fleet.kubeconfig
  contexts: [us-east, missing]
- kubeconfig: gone.kubeconfig
",
        fleet,
    )
    .map(|_| ())
    .unwrap_err()
    .to_string();
    assert_eq!(
        message,
        "\
/etc/podgate/podgate.yaml: imports[1].contexts[1]: context \"missing\" is not in /etc/podgate/fleet.kubeconfig (it has: EU_West, us-east, prod)
/etc/podgate/podgate.yaml: imports[2].kubeconfig: cannot read /etc/podgate/gone.kubeconfig: entity not found
/etc/podgate/podgate.yaml: imports[0]: context \"prod\" gives cluster id \"prod\", which clusters[0] already uses"
    );

    let message = parse_with(
        Path::new(FILE),
        "\
tls: {cert_file: a, key_file: b}
imports:
- kubeconfig: fleet.kubeconfig
  contexts: [us-east]
- kubeconfig: fleet.kubeconfig
  contexts: [us-east]
",
        fleet,
    )
    .map(|_| ())
    .unwrap_err()
    .to_string();
    assert_eq!(
        message,
        "/etc/podgate/podgate.yaml: imports[1]: context \"us-east\" gives cluster id \
         \"us-east\", which imports[0] (context \"us-east\") already uses"
    );

    let message = parse_with(
        Path::new(FILE),
        "tls: {cert_file: a, key_file: b}\nimports: [{kubeconfig: k}]\n",
        |_| Ok("contexts: [{name: _bad}]\n".to_string()),
    )
    .map(|_| ())
    .unwrap_err()
    .to_string();
    assert_eq!(
        message,
        "/etc/podgate/podgate.yaml: imports[0]: context \"_bad\" gives cluster id \"-bad\", \
         which is not a DNS label (must start and end with a letter or digit)"
    );
}

#[test]
fn serialized_config_parses_back() {
    let config = ok(&with(
        "sessions: {idle_timeout: 1h30m}\nlimits: {max_message_bytes: 1000}\n",
    ));
    let text = serde_norway::to_string(&config).expect("serializes");
    assert!(text.contains("idle_timeout: 1h30m"), "{text}");
    assert!(text.contains("max_message_bytes: 1KB"), "{text}");
    assert_eq!(ok(&text), config);
}

#[test]
fn example_config_parses() {
    let stub = |p: &Path| {
        assert_eq!(p, Path::new("/etc/podgate/fleet.kubeconfig"));
        Ok("contexts: [{name: eu-west}, {name: us-east}, {name: ap-south}]".to_string())
    };
    let config = parse_with(
        Path::new("podgate.example.yaml"),
        include_str!("../podgate.example.yaml"),
        stub,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let ids: Vec<_> = config.clusters.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["prod", "local", "eu-west", "us-east"]);
    // The example documents the defaults: apart from what it must set, it equals them.
    assert_eq!(config.listen, addr("0.0.0.0:8443"));
    assert_eq!(config.admin, AdminConfig::default());
    assert_eq!(config.sessions, SessionsConfig::default());
    assert_eq!(config.limits, LimitsConfig::default());
    assert_eq!(config.upstream, UpstreamConfig::default());
    assert_eq!(config.files, crate::FilesConfig::default());
}

#[test]
fn cluster_display_fields() {
    let config = ok("\
tls: {cert_file: tls.crt, key_file: /abs/tls.key}
clusters:
- id: prod-eu-1
  in_cluster: true
  display_name: Production EU 1 (Frankfurt)
  environment: production
  labels: {region: eu-central-1, team: payments, example.com/tier: gold, empty: ''}
- id: plain
  in_cluster: true
");
    let c = &config.clusters[0];
    assert_eq!(
        c.display_name.as_deref(),
        Some("Production EU 1 (Frankfurt)")
    );
    assert_eq!(c.environment.as_deref(), Some("production"));
    assert_eq!(
        c.labels.get("region").map(String::as_str),
        Some("eu-central-1")
    );
    assert_eq!(
        c.labels.get("example.com/tier").map(String::as_str),
        Some("gold")
    );
    assert_eq!(c.labels.len(), 4);
    let plain = &config.clusters[1];
    assert_eq!(
        (plain.display_name.as_ref(), plain.environment.as_ref()),
        (None, None)
    );
    assert!(plain.labels.is_empty());
    // Written back without the empty ones, and read again the same.
    let text = serde_norway::to_string(&config).expect("serializes");
    assert_eq!(text.matches("display_name").count(), 1, "{text}");
    assert_eq!(ok(&text), config);
}

#[test]
fn cluster_display_field_errors() {
    let long = "x".repeat(101);
    let labels: String = (0..33).map(|i| format!("l{i}: v,")).collect();
    let message = err(&format!(
        "\
tls: {{cert_file: tls.crt, key_file: /abs/tls.key}}
clusters:
- id: a
  in_cluster: true
  display_name: \"  \"
  environment: Production
  labels: {{\"bad key\": ok, \"/x\": ok, good: \"-bad\", long: {long}}}
- id: b
  in_cluster: true
  display_name: \"{long}\"
  labels: {{{labels}}}
- id: c
  in_cluster: true
  display_name: \"tab\\there\"
"
    ));
    let lines: Vec<&str> = message.lines().collect();
    let has = |field: &str, text: &str| {
        assert!(
            lines
                .iter()
                .any(|l| l.contains(&format!(": {field}: ")) && l.contains(text)),
            "no {field}: {text} in\n{message}"
        );
    };
    has("clusters[0].display_name", "is empty");
    has(
        "clusters[0].environment",
        "\"Production\" is not a DNS label",
    );
    has(
        "clusters[0].labels",
        "key \"bad key\" is not a Kubernetes label key",
    );
    has(
        "clusters[0].labels",
        "key \"/x\" is not a Kubernetes label key (its prefix",
    );
    has(
        "clusters[0].labels.good",
        "\"-bad\" is not a Kubernetes label value (must start",
    );
    has("clusters[0].labels.long", "at most 63 characters");
    has("clusters[1].display_name", "is longer than 100 characters");
    has("clusters[1].labels", "33 labels; at most 32");
    has("clusters[2].display_name", "contains control characters");
    assert_eq!(lines.len(), 9, "{message}");
}

#[test]
fn upstream_fleet_settings() {
    let u = UpstreamConfig::default();
    assert_eq!(u.idle_timeout, Duration::from_secs(90));
    assert_eq!(u.health_max_rate, 30);
    assert_eq!(u.health_concurrency, 64);
    assert_eq!(u.health_concurrency_per_server, 8);
    assert_eq!(u.health_backoff_max, Duration::from_secs(300));
    let config = ok(&with(
        "upstream: {idle_timeout: 30s, health_max_rate: 20, health_concurrency: 10, \
         health_concurrency_per_server: 2, health_backoff_max: 10m}\n",
    ));
    assert_eq!(config.upstream.idle_timeout, Duration::from_secs(30));
    assert_eq!(config.upstream.health_max_rate, 20);
    assert_eq!(config.upstream.health_concurrency_per_server, 2);
    assert_eq!(config.upstream.health_backoff_max, Duration::from_secs(600));
    assert_eq!(
        err(&with(
            "upstream: {idle_timeout: 0s, health_backoff_max: 0s, health_max_rate: 0, \
             health_concurrency: 0, health_concurrency_per_server: 0}\n"
        )),
        "\
/etc/podgate/podgate.yaml: upstream.idle_timeout: must be more than 0s
/etc/podgate/podgate.yaml: upstream.health_backoff_max: must be more than 0s
/etc/podgate/podgate.yaml: upstream.health_max_rate: must be at least 1
/etc/podgate/podgate.yaml: upstream.health_concurrency: must be at least 1
/etc/podgate/podgate.yaml: upstream.health_concurrency_per_server: must be at least 1"
    );
}

#[test]
fn files_idle_timeout_defaults_to_a_minute_and_must_be_positive() {
    assert_eq!(ok(&with("")).files.idle_timeout, Duration::from_secs(60));
    assert_eq!(
        ok(&with("files: {idle_timeout: 5s}\n")).files.idle_timeout,
        Duration::from_secs(5)
    );
    assert!(
        err(&with("files: {idle_timeout: 0s}\n"))
            .contains("files.idle_timeout: must be more than 0s")
    );
}

#[test]
fn pod_index_defaults_and_bounds() {
    let p = ok(&with("")).pod_index;
    assert_eq!(p.max_pods, 50_000);
    assert_eq!(p.idle_timeout, Duration::from_secs(600));
    assert_eq!(p.max_clusters_per_search, 5);
    assert_eq!(p.access_ttl, Duration::from_secs(30));
    assert_eq!(p.feed_as, None);
    let c = ok(&with(
        "pod_index: {max_pods: 10, idle_timeout: 30s, feed_as: {user: idx, groups: [r]}}\n",
    ));
    assert_eq!(c.pod_index.max_pods, 10);
    assert_eq!(
        c.pod_index.feed_as.map(|f| f.groups),
        Some(vec!["r".to_string()])
    );
    let e = err(&with(
        "pod_index: {max_pods: 0, max_clusters_per_search: 0, idle_timeout: 0s, feed_as: {user: ''}}\n",
    ));
    for field in [
        "pod_index.max_pods: must be at least 1",
        "pod_index.max_clusters_per_search: must be at least 1",
        "pod_index.idle_timeout: must be more than 0s",
        "pod_index.feed_as.user: must not be empty",
    ] {
        assert!(e.contains(field), "{field} in {e}");
    }
    assert!(err(&with("pod_index: {nope: 1}\n")).contains("nope"));
}
