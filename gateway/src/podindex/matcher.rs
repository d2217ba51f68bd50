//! Which pods a search matches and in what order. Pure: every rule is unit-tested here.
//!
//! A search is words separated by spaces; a pod matches when every word does:
//! - `key=value`: the pod has label `key` with value `value` (both exact; `key=` matches any
//!   value of `key`);
//! - any other word: part of the pod's name, namespace, node, or owner name (the Deployment,
//!   StatefulSet, Job... that controls it), case-insensitive; or of one of its labels written
//!   `key=value`.
//!
//! Results are ranked by how well the words fit: the name first (exactly, then at its start,
//! then anywhere), then the owner, the namespace, the node and labels; ties in namespace, then
//! name order.

use super::summary::PodSummary;

/// One word of a search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    /// `key=value` (`value` empty: any value).
    Label { key: String, value: String },
    /// Lowercased text.
    Text(String),
}

/// A parsed search.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Query {
    pub terms: Vec<Term>,
}

impl Query {
    pub fn parse(text: &str) -> Query {
        let terms = text
            .split_whitespace()
            .map(|w| match w.split_once('=') {
                Some((k, v)) if !k.is_empty() => Term::Label {
                    key: k.to_string(),
                    value: v.to_string(),
                },
                _ => Term::Text(w.to_lowercase()),
            })
            .collect();
        Query { terms }
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// `None` when `pod` does not match; else its rank (lower is better).
    pub fn score(&self, pod: &PodSummary) -> Option<u32> {
        let mut total = 0u32;
        for t in &self.terms {
            total += term_score(t, pod)?;
        }
        Some(total)
    }
}

fn term_score(t: &Term, pod: &PodSummary) -> Option<u32> {
    match t {
        Term::Label { key, value } => {
            let v = pod.labels.get(key)?;
            (value.is_empty() || v == value).then_some(4)
        }
        Term::Text(w) => {
            let l = &pod.lower;
            if l.name == *w {
                Some(0)
            } else if l.name.starts_with(w.as_str()) {
                Some(1)
            } else if l.name.contains(w.as_str()) {
                Some(2)
            } else if !l.owner.is_empty() && l.owner.contains(w.as_str()) {
                Some(3)
            } else if l.namespace.contains(w.as_str()) {
                Some(4)
            } else if l.node.contains(w.as_str()) {
                Some(5)
            } else if l.labels.iter().any(|kv| kv.contains(w.as_str())) {
                Some(6)
            } else {
                None
            }
        }
    }
}

/// The best `limit` of `pods` for `query` with their rank, and how many matched in all.
pub fn rank<'a>(
    query: &Query,
    pods: impl Iterator<Item = &'a PodSummary>,
    limit: usize,
) -> (Vec<(u32, &'a PodSummary)>, usize) {
    let mut hits: Vec<(u32, &PodSummary)> = pods
        .filter_map(|p| query.score(p).map(|s| (s, p)))
        .collect();
    let total = hits.len();
    let order = |a: &(u32, &PodSummary), b: &(u32, &PodSummary)| {
        a.0.cmp(&b.0)
            .then_with(|| a.1.namespace.cmp(&b.1.namespace))
            .then_with(|| a.1.name.cmp(&b.1.name))
    };
    if hits.len() > limit && limit > 0 {
        hits.select_nth_unstable_by(limit - 1, order);
        hits.truncate(limit);
    } else if limit == 0 {
        hits.clear();
    }
    hits.sort_unstable_by(order);
    (hits, total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::podindex::summary::pod;

    fn names<'a>(v: &[(u32, &'a PodSummary)]) -> Vec<&'a str> {
        v.iter().map(|(_, p)| p.name.as_str()).collect()
    }

    #[test]
    fn words_and_labels_parse() {
        let q = Query::parse("  Web  app=shop tier= =x ");
        assert_eq!(
            q.terms,
            vec![
                Term::Text("web".into()),
                Term::Label {
                    key: "app".into(),
                    value: "shop".into()
                },
                Term::Label {
                    key: "tier".into(),
                    value: String::new()
                },
                Term::Text("=x".into()),
            ]
        );
        assert!(Query::parse("   ").is_empty());
    }

    #[test]
    fn every_word_must_match_some_field() {
        let pods = [
            pod("shop", "web-1", &[("app", "web")], "node-a"),
            pod("shop", "db-0", &[("app", "db")], "node-b"),
            pod("default", "shell", &[], "node-a"),
        ];
        let q = |s: &str| {
            let (hits, n) = rank(&Query::parse(s), pods.iter(), 10);
            (names(&hits), n)
        };
        assert_eq!(q("web"), (vec!["web-1"], 1));
        assert_eq!(q("app=db"), (vec!["db-0"], 1));
        assert_eq!(q("app="), (vec!["db-0", "web-1"], 2));
        assert_eq!(q("app=we"), (vec![], 0));
        assert_eq!(q("node-a"), (vec!["shell", "web-1"], 2));
        assert_eq!(q("shop node-b"), (vec!["db-0"], 1));
        assert_eq!(q("SHOP"), (vec!["db-0", "web-1"], 2));
        assert_eq!(q("nothing"), (vec![], 0));
        assert_eq!(q("").1, 3);
    }

    #[test]
    fn names_rank_before_owners_before_namespaces() {
        let mut owned = pod("x", "a-1", &[], "n");
        owned.owner = Some(("Deployment".into(), "api".into()));
        owned.lower.owner = "api".into();
        let pods = [
            pod("api", "zzz", &[], "n"),
            owned,
            pod("x", "my-api-2", &[], "n"),
            pod("x", "api-1", &[], "n"),
            pod("x", "api", &[], "n"),
        ];
        let (hits, n) = rank(&Query::parse("api"), pods.iter(), 10);
        assert_eq!(n, 5);
        assert_eq!(names(&hits), ["api", "api-1", "my-api-2", "a-1", "zzz"]);
        let (hits, n) = rank(&Query::parse("api"), pods.iter(), 2);
        assert_eq!((names(&hits), n), (vec!["api", "api-1"], 5));
        assert!(rank(&Query::parse("api"), pods.iter(), 0).0.is_empty());
    }

    #[test]
    fn label_text_matches_key_value_form() {
        let pods = [pod("x", "p", &[("Team", "Payments")], "n")];
        assert_eq!(rank(&Query::parse("payments"), pods.iter(), 5).1, 1);
        // `team=payments` is a label term: exact and case-sensitive, so no match here.
        assert_eq!(rank(&Query::parse("team=payments"), pods.iter(), 5).1, 0);
        assert_eq!(rank(&Query::parse("Team=Payments"), pods.iter(), 5).1, 1);
    }
}
