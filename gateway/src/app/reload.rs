//! Applying the config file again while serving (on SIGHUP or when it changes).
//!
//! What can change live does: clusters (added, removed, rebuilt; sessions on unchanged ones
//! untouched), the static tokens file, the per-session metric switches, each cluster's
//! recording mode (for sessions started from then on) and the operators' rights. Whatever else changed
//! needs a restart, and the report says so (logged as a warning) instead of pretending.
//! Access ends with the right to it: after every reload each live session is judged again, and
//! one whose static token was removed, or whose cluster's `access` no longer admits its
//! person, is ended with the reason.

use crate::session::registry::{LiveSession, LiveSessions, Stop};
use crate::upstream::Registry;
use podgate_auth::StaticTokens;
use podgate_config::Config;
use podgate_metrics::{Metrics, ReloadResult};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What a reload did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// What took effect, in words.
    pub applied: Vec<String>,
    /// Config sections that changed but are only read at start.
    pub needs_restart: Vec<&'static str>,
    /// What could not be applied (the running state stays for those parts).
    pub failed: Vec<String>,
    /// Live sessions ended because their access was revoked.
    pub sessions_ended: usize,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.failed.is_empty()
    }
}

pub struct Reloader {
    path: PathBuf,
    /// The config the process started with: sections only read at start are compared to it.
    started: Config,
    clusters: Registry,
    static_tokens: Option<Arc<StaticTokens>>,
    metrics: Metrics,
    live: Arc<LiveSessions>,
    recording: Arc<crate::recording::Recording>,
    operators: Arc<crate::route::operators::Operators>,
    /// The agent token files the running config names: a rotated token reloads at once, so
    /// tunnels made with the old one are cut without waiting for another change.
    agent_tokens: std::sync::Mutex<Vec<PathBuf>>,
}

/// The agent token files `config` names.
pub(crate) fn agent_token_files(config: &Config) -> Vec<PathBuf> {
    config
        .clusters
        .iter()
        .filter_map(|c| c.agent.as_ref()?.token_file.clone())
        .collect()
}

impl Reloader {
    /// What a reload changes, as the running gateway has it.
    pub fn new(
        path: &Path,
        started: Config,
        static_tokens: Option<Arc<StaticTokens>>,
        running: &crate::app::Running,
    ) -> Reloader {
        Reloader {
            path: path.to_path_buf(),
            agent_tokens: std::sync::Mutex::new(agent_token_files(&started)),
            started,
            clusters: running.clusters().clone(),
            static_tokens,
            metrics: running.metrics().clone(),
            live: running.sessions.live.clone(),
            recording: running.sessions.recording.clone(),
            operators: running.router.operators.clone(),
        }
    }

    /// The tokens file the running config names, to watch it.
    pub fn tokens_file(&self) -> Option<&Path> {
        self.started.auth.tokens_file.as_deref()
    }

    /// The agent token files the running config names, to watch them.
    pub fn agent_token_files(&self) -> Vec<PathBuf> {
        self.agent_tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Reads the file again and applies what can be applied; logs and counts the result.
    pub async fn reload(&self, reason: &str) -> Report {
        let report = self.apply(reason).await;
        self.metrics.config_reload(if report.ok() {
            ReloadResult::Success
        } else {
            ReloadResult::Failure
        });
        let applied = report.applied.join("; ");
        if report.ok() {
            tracing::info!(
                reason,
                sessions_ended = report.sessions_ended,
                "config reloaded: {applied}"
            );
        } else {
            tracing::error!(
                reason,
                "config reload incomplete: {}; applied: {applied}",
                report.failed.join("; ")
            );
        }
        if !report.needs_restart.is_empty() {
            tracing::warn!(
                reason,
                "config reload: {} changed and need(s) a restart to take effect; the running values stay",
                report.needs_restart.join(", ")
            );
        }
        report
    }

    async fn apply(&self, reason: &str) -> Report {
        let mut report = Report::default();
        let config = match podgate_config::load(&self.path) {
            Ok(c) => c,
            Err(e) => {
                report.failed.push(format!(
                    "the file was refused ({reason}), keeping the running config: {}",
                    one_line(&e.to_string())
                ));
                return report;
            }
        };
        *self
            .agent_tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = agent_token_files(&config);
        let s = self
            .clusters
            .apply(config.clusters.clone(), &config.upstream)
            .await;
        for e in &s.failed {
            report.failed.push(e.to_string());
        }
        report.applied.push(format!(
            "clusters: {} added, {} removed, {} rebuilt{}",
            s.added.len(),
            s.removed.len(),
            s.changed.len(),
            describe(&s.added, &s.removed, &s.changed)
        ));
        self.metrics
            .set_clusters(self.clusters.list().iter().map(|c| c.id.clone()));
        report_client_certificates(&self.metrics, &self.clusters);
        self.metrics
            .set_session_series(podgate_metrics::SessionSeries {
                enabled: config.metrics.session_series,
                max_sessions: config.metrics.max_session_series,
            });
        if let (Some(t), Some(f)) = (&self.static_tokens, &config.auth.tokens_file) {
            match t.reload_file(f) {
                Ok(()) => report.applied.push(format!("static tokens: {}", t.len())),
                Err(e) => report
                    .failed
                    .push(format!("tokens file: {}", one_line(&e.to_string()))),
            }
        }
        self.recording
            .configure(&config.recording, &config.clusters);
        self.operators.set(config.operators.clone());
        report.applied.push("recording modes and operators".into());
        report.needs_restart = needs_restart(&self.started, &config);
        report.sessions_ended = self.revalidate();
        report
    }

    /// Ends every live session whose credential or access no longer holds.
    fn revalidate(&self) -> usize {
        self.live
            .revalidate(|s| judge(s, self.static_tokens.as_deref(), &self.clusters))
    }
}

/// Whether `s` may live on, and if not, what its person is told.
fn judge(
    s: &LiveSession,
    tokens: Option<&StaticTokens>,
    clusters: &Registry,
) -> Option<(Stop, String)> {
    let identity = &s.credential.identity;
    if let (Some(digest), Some(tokens)) = (&s.credential.static_token, tokens)
        && !tokens.still_grants(digest, identity)
    {
        return Some((
            Stop::AccessRevoked,
            "podgate: session closed: the token it was opened with was revoked".into(),
        ));
    }
    // A removed cluster's sessions run until they end (the README promises it); a changed
    // policy applies at once.
    let cluster = clusters.get(&s.record.cluster)?;
    podgate_auth::policy::check_session(&cluster.access, &cluster.id, identity, &s.record.namespace)
        .err()
        .map(|denied| {
            (
                Stop::AccessRevoked,
                format!(
                    "podgate: session closed: access was revoked: {}",
                    denied.to_string().trim_start_matches("podgate: ")
                ),
            )
        })
}

/// Every cluster's client certificate expiry, for the gauge (after start and every reload).
pub fn report_client_certificates(metrics: &Metrics, clusters: &Registry) {
    for c in clusters.list() {
        metrics.set_certificate_expiry(
            podgate_metrics::CertificateUse::ClusterClient,
            &c.id,
            c.client_cert_not_after,
        );
    }
}

/// The sections that changed and are read only at start.
fn needs_restart(started: &Config, now: &Config) -> Vec<&'static str> {
    let mut changed = Vec::new();
    let mut check = |name, same: bool| {
        if !same {
            changed.push(name);
        }
    };
    check("listen", started.listen == now.listen);
    check("tls", started.tls == now.tls);
    check("admin", started.admin == now.admin);
    check(
        "auth.tokens_file (added or removed)",
        started.auth.tokens_file.is_some() == now.auth.tokens_file.is_some(),
    );
    check("auth.oidc", started.auth.oidc == now.auth.oidc);
    check("auth.session", started.auth.session == now.auth.session);
    check("sessions", started.sessions == now.sessions);
    check("limits", started.limits == now.limits);
    let health = |u: &podgate_config::UpstreamConfig| {
        (
            u.health_interval,
            u.health_timeout,
            u.health_max_rate,
            u.health_concurrency,
            u.health_concurrency_per_server,
            u.health_backoff_max,
        )
    };
    check(
        "upstream.health_* (interval, timeout, rate, concurrency, backoff)",
        health(&started.upstream) == health(&now.upstream),
    );
    check("audit", started.audit == now.audit);
    check("recording.dir", started.recording.dir == now.recording.dir);
    check("log", started.log == now.log);
    changed
}

fn describe(added: &[String], removed: &[String], changed: &[String]) -> String {
    let mut parts = Vec::new();
    for (what, ids) in [("added", added), ("removed", removed), ("rebuilt", changed)] {
        if !ids.is_empty() {
            parts.push(format!("{what} {}", ids.join(", ")));
        }
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join("; "))
    }
}

/// A multi-line message (a config error lists one problem per line) as one log line.
pub fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        podgate_config::parse(
            Path::new("/etc/podgate/podgate.yaml"),
            &format!(
                "tls: {{cert_file: c.pem, key_file: k.pem}}\nclusters: [{{id: a, kubeconfig: a.kubeconfig}}]\n{extra}"
            ),
        )
        .expect("config parses")
    }

    #[test]
    fn changes_read_only_at_start_are_reported_not_applied() {
        let started = config("");
        assert!(needs_restart(&started, &config("")).is_empty());
        assert_eq!(
            needs_restart(
                &started,
                &config("limits: {max_connections: 5}\nsessions: {idle_timeout: 1m}")
            ),
            ["sessions", "limits"]
        );
        assert_eq!(
            needs_restart(&started, &config("listen: 127.0.0.1:1")),
            ["listen"]
        );
        assert_eq!(
            needs_restart(&started, &config("log: {format: json}")),
            ["log"]
        );
        // What reloads live is not reported.
        assert!(needs_restart(&started, &config("metrics: {session_series: false}")).is_empty());
    }

    #[test]
    fn multi_line_errors_become_one_line() {
        assert_eq!(one_line("a: x\n  b: y\n\n"), "a: x; b: y");
    }
}
