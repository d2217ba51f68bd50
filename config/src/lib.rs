#![forbid(unsafe_code)]
//! Configuration for the podgate gateway: the schema of `podgate serve --config FILE`, its
//! defaults, validation that reports every problem with file and field, and kubeconfig imports.
//! (The static tokens file belongs to the auth crate, which reports its problems with
//! [`ConfigError`] and [`Problems`] too.)
//!
//! Everything here is pure except [`load`], which reads the file, and
//! [`parse`], which reads the kubeconfigs named by `imports`; [`parse_with`] takes the reader
//! so tests and reloads can supply their own.

mod duration;
mod error;
mod imports;
mod recording;
mod schema;
mod size;
mod validate;

use std::io;
use std::path::{Path, PathBuf};

pub use duration::{Duration, ParseDurationError};
pub use error::{ConfigError, Problem, Problems};
pub use imports::{
    ImportProblem, KubeconfigContexts, expand_import, kubeconfig_contexts, sanitize_id,
};
pub use recording::{OperatorsConfig, Principals, RecordingConfig, RecordingMode};
pub use schema::{
    AccessPolicy, AdminConfig, AgentConfig, AgentToken, AuditConfig, AuthConfig,
    BrowserSessionConfig, ClusterConfig, ClusterSource, Config, FilesConfig, ImportConfig,
    LimitsConfig, LogConfig, LogFormat, MetricsConfig, PodIndexConfig, PodIndexIdentity,
    ResumeOverflow, SessionsConfig, TlsConfig, UpstreamConfig,
};
pub use size::{ByteSize, ParseSizeError};

use validate::Imported;

/// Reads, parses and validates the config file at `path`, and the kubeconfigs its `imports`
/// name.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    parse(path, &text)
}

/// Parses and validates config text. `path` names the file in messages and anchors relative
/// paths; the kubeconfigs named by `imports` are read from disk.
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    parse_with(path, text, |p| std::fs::read_to_string(p))
}

/// [`parse`] with the kubeconfig reader supplied by the caller. `read` receives the resolved
/// (config-directory-relative) path of each import's kubeconfig.
pub fn parse_with(
    path: &Path,
    text: &str,
    read: impl Fn(&Path) -> io::Result<String>,
) -> Result<Config, ConfigError> {
    let mut config: Config =
        serde_norway::from_str(text).map_err(|e| ConfigError::syntax(path, &e))?;
    resolve_paths(&mut config, path.parent().unwrap_or(Path::new("")));

    let mut problems = Problems::new(path);
    let mut imported = Vec::new();
    for (index, import) in config.imports.iter().enumerate() {
        if import.kubeconfig.as_os_str().is_empty() {
            continue; // reported by validation
        }
        let text = match read(&import.kubeconfig) {
            Ok(text) => text,
            Err(e) => {
                problems.push(
                    format!("imports[{index}].kubeconfig"),
                    format!("cannot read {}: {e}", import.kubeconfig.display()),
                );
                continue;
            }
        };
        match expand_import(import, &text) {
            Ok(clusters) => imported.push(Imported { index, clusters }),
            Err(found) => {
                for p in found {
                    problems.push(format!("imports[{index}]{}", p.field), p.message);
                }
            }
        }
    }
    validate::validate(&config, &imported, &mut problems);
    problems.finish()?;

    config
        .clusters
        .extend(imported.into_iter().flat_map(|group| group.clusters));
    Ok(config)
}

/// Relative paths mean "next to the config file", so a config directory can be moved or
/// mounted anywhere without editing it.
fn resolve_paths(config: &mut Config, base: &Path) {
    let resolve = |p: &mut PathBuf| {
        if !p.as_os_str().is_empty() && p.is_relative() {
            *p = base.join(&*p);
        }
    };
    resolve(&mut config.tls.cert_file);
    resolve(&mut config.tls.key_file);
    for cluster in &mut config.clusters {
        if let Some(kubeconfig) = &mut cluster.kubeconfig {
            resolve(kubeconfig);
        }
        if let Some(file) = cluster.agent.as_mut().and_then(|a| a.token_file.as_mut()) {
            resolve(file);
        }
    }
    for import in &mut config.imports {
        resolve(&mut import.kubeconfig);
    }
    if let Some(file) = &mut config.auth.tokens_file {
        resolve(file);
    }
    if let Some(file) = &mut config.auth.session.key_file {
        resolve(file);
    }
    if let Some(dir) = &mut config.recording.dir {
        resolve(dir);
    }
    if !matches!(config.audit.output.as_str(), "stdout" | "off") {
        let mut p = PathBuf::from(&config.audit.output);
        resolve(&mut p);
        config.audit.output = p.display().to_string();
    }
}

#[cfg(test)]
mod tests;
