//! Turns an `imports` entry into clusters, one per kubeconfig context. Pure: the caller reads
//! the kubeconfig, so tests and reloads need no filesystem.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::schema::{ClusterConfig, ImportConfig};
use crate::validate::dns_label_problem;

/// The few kubeconfig fields the import needs. Everything else (users, clusters,
/// credentials) is ignored here: the gateway's kube client reads the file for real.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KubeconfigContexts {
    /// Context names in file order.
    pub names: Vec<String>,
    pub current: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawKubeconfig {
    contexts: Option<Vec<RawContext>>,
    #[serde(rename = "current-context")]
    current_context: Option<String>,
}

#[derive(Deserialize)]
struct RawContext {
    name: String,
}

/// Reads context names out of kubeconfig text. The error is the YAML parser's message,
/// with field path and line.
pub fn kubeconfig_contexts(text: &str) -> Result<KubeconfigContexts, String> {
    // An empty file is a valid, if useless, kubeconfig; the YAML parser calls it EOF.
    if text.trim().is_empty() {
        return Ok(KubeconfigContexts::default());
    }
    let raw: Option<RawKubeconfig> = serde_norway::from_str(text).map_err(|e| e.to_string())?;
    let raw = raw.unwrap_or_default();
    Ok(KubeconfigContexts {
        names: raw
            .contexts
            .unwrap_or_default()
            .into_iter()
            .map(|c| c.name)
            .collect(),
        current: raw.current_context.filter(|c| !c.is_empty()),
    })
}

/// Cluster id for a context name: lowercased, and every character that a DNS label cannot
/// hold replaced by `-` (so `arn:aws:eks:…/prod` stays readable). The result may still be
/// invalid, e.g. when it starts with `-`; [`expand_import`] reports that.
pub fn sanitize_id(context: &str) -> String {
    context
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// A problem found while expanding one import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportProblem {
    /// Field path relative to the import entry: `""` for the entry itself, `".kubeconfig"`
    /// or `".contexts[1]"`.
    pub field: String,
    pub message: String,
}

/// One cluster per selected context of the kubeconfig in `kubeconfig_text`, in file order
/// (or in `contexts` order when a subset is given). Collisions with clusters outside this
/// import are checked by the caller, which knows them.
pub fn expand_import(
    import: &ImportConfig,
    kubeconfig_text: &str,
) -> Result<Vec<ClusterConfig>, Vec<ImportProblem>> {
    let where_ = import.kubeconfig.display();
    let problem = |field: &str, message: String| ImportProblem {
        field: field.to_string(),
        message,
    };
    let found = kubeconfig_contexts(kubeconfig_text)
        .map_err(|e| vec![problem(".kubeconfig", format!("{where_}: {e}"))])?;

    let mut problems = Vec::new();
    // (context, field of the config that selected it)
    let selected: Vec<(&str, String)> = match &import.contexts {
        None => {
            if found.names.is_empty() {
                return Err(vec![problem(
                    ".kubeconfig",
                    format!("{where_} has no contexts to import"),
                )]);
            }
            found
                .names
                .iter()
                .map(|n| (n.as_str(), String::new()))
                .collect()
        }
        Some(wanted) if wanted.is_empty() => {
            return Err(vec![problem(
                ".contexts",
                "is empty; leave it out to import every context".to_string(),
            )]);
        }
        Some(wanted) => {
            let mut seen = BTreeMap::new();
            let mut selected = Vec::new();
            for (j, name) in wanted.iter().enumerate() {
                let field = format!(".contexts[{j}]");
                if let Some(first) = seen.insert(name.as_str(), j) {
                    problems.push(problem(
                        &field,
                        format!("context {name:?} is already listed at contexts[{first}]"),
                    ));
                } else if !found.names.iter().any(|n| n == name) {
                    problems.push(problem(
                        &field,
                        format!(
                            "context {name:?} is not in {where_} (it has: {})",
                            list_or_none(&found.names)
                        ),
                    ));
                } else {
                    selected.push((name.as_str(), field));
                }
            }
            selected
        }
    };

    let mut ids: BTreeMap<String, &str> = BTreeMap::new();
    let mut clusters = Vec::new();
    for (context, field) in selected {
        let id = sanitize_id(context);
        if let Some(why) = dns_label_problem(&id) {
            problems.push(problem(
                &field,
                format!(
                    "context {context:?} gives cluster id {id:?}, which is not a DNS label {why}"
                ),
            ));
            continue;
        }
        if let Some(other) = ids.get(&id) {
            problems.push(problem(
                &field,
                format!(
                    "context {context:?} gives cluster id {id:?}, the same as context {other:?}"
                ),
            ));
            continue;
        }
        ids.insert(id.clone(), context);
        clusters.push(ClusterConfig {
            id,
            kubeconfig: Some(import.kubeconfig.clone()),
            context: Some(context.to_string()),
            in_cluster: false,
            agent: None,
            impersonate: import.impersonate,
            access: Default::default(),
            display_name: None,
            environment: None,
            labels: Default::default(),
            recording: None,
            record_input: None,
        });
    }
    if problems.is_empty() {
        Ok(clusters)
    } else {
        Err(problems)
    }
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "no contexts".to_string()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    const KUBECONFIG: &str = "\
apiVersion: v1
kind: Config
current-context: Prod_EU
clusters:
- name: c
  cluster: {server: https://example}
contexts:
- name: Prod_EU
  context: {cluster: c, user: u}
- name: arn:aws:eks:us-east-1:123456789012:cluster/staging
  context: {cluster: c, user: u}
users:
- name: u
  user: {token: abc}
";

    fn import(contexts: Option<&[&str]>) -> ImportConfig {
        ImportConfig {
            kubeconfig: PathBuf::from("/k/many.kubeconfig"),
            impersonate: false,
            contexts: contexts.map(|c| c.iter().map(|s| s.to_string()).collect()),
        }
    }

    fn problems(result: Result<Vec<ClusterConfig>, Vec<ImportProblem>>) -> Vec<String> {
        match result {
            Ok(c) => panic!("expected problems, got {c:?}"),
            Err(p) => p
                .into_iter()
                .map(|p| format!("{}: {}", p.field, p.message))
                .collect(),
        }
    }

    #[test]
    fn reads_context_names_and_current() {
        let found = kubeconfig_contexts(KUBECONFIG).expect("parses");
        assert_eq!(
            found.names,
            [
                "Prod_EU",
                "arn:aws:eks:us-east-1:123456789012:cluster/staging"
            ]
        );
        assert_eq!(found.current.as_deref(), Some("Prod_EU"));
        assert_eq!(kubeconfig_contexts(""), Ok(KubeconfigContexts::default()));
        assert_eq!(
            kubeconfig_contexts("contexts: null\n"),
            Ok(KubeconfigContexts::default())
        );
    }

    #[test]
    fn sanitizes_ids() {
        assert_eq!(sanitize_id("Prod_EU"), "prod-eu");
        assert_eq!(
            sanitize_id("arn:aws:eks:us-east-1:123456789012:cluster/staging"),
            "arn-aws-eks-us-east-1-123456789012-cluster-staging"
        );
        assert_eq!(sanitize_id("kind-kind"), "kind-kind");
        assert_eq!(sanitize_id("é"), "-");
    }

    #[test]
    fn expands_every_context() {
        let clusters = expand_import(&import(None), KUBECONFIG).expect("expands");
        let ids: Vec<_> = clusters.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "prod-eu",
                "arn-aws-eks-us-east-1-123456789012-cluster-staging"
            ]
        );
        assert_eq!(
            clusters[0],
            ClusterConfig {
                id: "prod-eu".into(),
                kubeconfig: Some(PathBuf::from("/k/many.kubeconfig")),
                context: Some("Prod_EU".into()),
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
    fn expands_a_subset_in_given_order() {
        let wanted = ["arn:aws:eks:us-east-1:123456789012:cluster/staging"];
        let clusters = expand_import(&import(Some(&wanted)), KUBECONFIG).expect("expands");
        assert_eq!(clusters.len(), 1);
        assert_eq!(clusters[0].context.as_deref(), Some(wanted[0]));
    }

    #[test]
    fn reports_unknown_duplicate_and_empty_subsets() {
        assert_eq!(
            problems(expand_import(
                &import(Some(&["Prod_EU", "nope", "Prod_EU"])),
                KUBECONFIG
            )),
            [
                ".contexts[1]: context \"nope\" is not in /k/many.kubeconfig (it has: Prod_EU, \
                 arn:aws:eks:us-east-1:123456789012:cluster/staging)",
                ".contexts[2]: context \"Prod_EU\" is already listed at contexts[0]",
            ]
        );
        assert_eq!(
            problems(expand_import(&import(Some(&[])), KUBECONFIG)),
            [".contexts: is empty; leave it out to import every context"]
        );
    }

    #[test]
    fn reports_ids_that_stay_invalid_or_collide() {
        let text = "contexts:\n- name: _x\n- name: A.b\n- name: a_b\n- name: ok\n";
        assert_eq!(
            problems(expand_import(&import(None), text)),
            [
                ": context \"_x\" gives cluster id \"-x\", which is not a DNS label (must start and end \
                 with a letter or digit)",
                ": context \"a_b\" gives cluster id \"a-b\", the same as context \"A.b\"",
            ]
        );
        let long = format!("contexts:\n- name: {}\n", "a".repeat(64));
        assert_eq!(
            problems(expand_import(&import(None), &long)),
            [format!(
                ": context {0:?} gives cluster id {0:?}, which is not a DNS label (lowercase letters, \
                 digits and '-', at most 63 characters)",
                "a".repeat(64)
            )]
        );
    }

    #[test]
    fn reports_empty_and_broken_kubeconfigs() {
        assert_eq!(
            problems(expand_import(&import(None), "kind: Config\n")),
            [".kubeconfig: /k/many.kubeconfig has no contexts to import"]
        );
        let got = problems(expand_import(&import(None), "contexts:\n- context: {}\n"));
        assert_eq!(got.len(), 1);
        assert!(
            got[0]
                .starts_with(".kubeconfig: /k/many.kubeconfig: contexts[0]: missing field `name`"),
            "{got:?}"
        );
        assert!(got[0].contains("line 2"), "{got:?}");
    }
}
