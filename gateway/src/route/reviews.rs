//! Self reviews where the edge policy restricts namespaces: podgate reads what a
//! `SelfSubjectAccessReview` (`kubectl auth can-i`) or `SelfSubjectRulesReview` (`can-i
//! --list`) asks, and where the edge itself would refuse (a namespace outside `access`, a
//! cluster-wide question) answers it, no, with podgate's reason, without asking the cluster;
//! otherwise the request goes to the cluster with the body read. Answers are JSON, which
//! kubectl accepts (its `Accept` lists protobuf, then JSON; client-go decodes by the
//! response's `Content-Type`).

use crate::http::{Body, json, status};
use crate::upstream::Cluster;
use http::{Request, Response, StatusCode, header};
use http_body_util::BodyExt as _;
use podgate_auth::Identity;
use podgate_auth::policy::{self, Denied, Question};
use podgate_metrics::Metrics;
use podgate_protocol::Status;
use podgate_protocol::review::{self, AccessSpec};
use serde_json::{Map, Value, json};

/// The largest review body read (kubectl's are a few hundred bytes).
pub const MAX_REVIEW_BYTES: usize = 64 * 1024;

/// The self reviews whose question podgate judges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Review {
    Access,
    Rules,
}

/// Which self review `segments` (the path the cluster sees) creates, if any.
pub fn review_of(segments: &[&str]) -> Option<Review> {
    match segments {
        [
            "apis",
            "authorization.k8s.io",
            _,
            "selfsubjectaccessreviews",
        ] => Some(Review::Access),
        ["apis", "authorization.k8s.io", _, "selfsubjectrulesreviews"] => Some(Review::Rules),
        _ => None,
    }
}

/// Answers or forwards the POST `req` of a `review`.
pub async fn handle(
    metrics: &Metrics,
    cluster: &Cluster,
    req: Request<hyper::body::Incoming>,
    identity: &Identity,
    upstream_path: &str,
    review: Review,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_REVIEW_BYTES as u64) {
        return status(&too_large());
    }
    let body = match http_body_util::Limited::new(body, MAX_REVIEW_BYTES)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return status(&too_large()),
        Err(e) => {
            return status(&Status::bad_request(format!(
                "the review's body could not be read: {e}"
            )));
        }
    };
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let verdict = match judge(cluster, identity, review, content_type, &body) {
        Ok(v) => v,
        Err(e) => {
            return status(&Status::bad_request(format!(
                "the request body is not a review object: {e}"
            )));
        }
    };
    match verdict {
        None => {
            crate::upstream::proxy::forward_read(
                metrics,
                cluster,
                &parts,
                body,
                identity,
                upstream_path,
            )
            .await
        }
        Some(answer) => {
            tracing::info!(user = %identity.user(), cluster = %cluster.id, "self review answered at the edge");
            json(StatusCode::CREATED, &answer)
        }
    }
}

/// podgate's own answer to the review, when the edge refuses what it asks; `None`: ask the
/// cluster.
fn judge(
    cluster: &Cluster,
    identity: &Identity,
    review: Review,
    content_type: &str,
    body: &[u8],
) -> Result<Option<Value>, review::ReviewError> {
    let check =
        |q: Question<'_>| policy::check_question(&cluster.access, &cluster.id, identity, &q);
    Ok(match review {
        Review::Access => {
            let spec = review::access_review(content_type, body)?;
            let denied = match (&spec.resource, &spec.non_resource) {
                (Some(r), None) => check(Question::Resource {
                    namespace: &r.namespace,
                    group: &r.group,
                    resource: &r.resource,
                    name: &r.name,
                }),
                (None, Some(n)) => check(Question::NonResource { path: &n.path }),
                // Invalid (both or neither): the cluster says so.
                _ => Ok(()),
            };
            denied.err().map(|d| access_answer(&spec, &d))
        }
        Review::Rules => {
            let namespace = review::rules_review(content_type, body)?;
            check(Question::Rules {
                namespace: &namespace,
            })
            .err()
            .map(|d| rules_answer(&namespace, &d))
        }
    })
}

fn too_large() -> Status {
    Status::api_error(
        413,
        "RequestEntityTooLarge",
        format!("podgate reads self reviews of at most {MAX_REVIEW_BYTES} bytes"),
    )
}

/// The fields of `pairs` that are set, as a JSON object (as the API echoes a spec).
fn object(pairs: &[(&str, &str)]) -> Value {
    let o: Map<String, Value> = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| ((*k).to_string(), json!(v)))
        .collect();
    Value::Object(o)
}

/// A `SelfSubjectAccessReview` answered no, with podgate's reason.
pub fn access_answer(spec: &AccessSpec, denied: &Denied) -> Value {
    let mut s = Map::new();
    if let Some(r) = &spec.resource {
        s.insert(
            "resourceAttributes".into(),
            object(&[
                ("namespace", &r.namespace),
                ("verb", &r.verb),
                ("group", &r.group),
                ("version", &r.version),
                ("resource", &r.resource),
                ("subresource", &r.subresource),
                ("name", &r.name),
            ]),
        );
    }
    if let Some(n) = &spec.non_resource {
        s.insert(
            "nonResourceAttributes".into(),
            object(&[("path", &n.path), ("verb", &n.verb)]),
        );
    }
    json!({
        "kind": "SelfSubjectAccessReview",
        "apiVersion": "authorization.k8s.io/v1",
        "metadata": {},
        "spec": s,
        "status": {"allowed": false, "reason": denied.to_string()},
    })
}

/// A `SelfSubjectRulesReview` answered with no rules, and podgate's reason.
pub fn rules_answer(namespace: &str, denied: &Denied) -> Value {
    json!({
        "kind": "SelfSubjectRulesReview",
        "apiVersion": "authorization.k8s.io/v1",
        "metadata": {},
        "spec": object(&[("namespace", namespace)]),
        "status": {
            "resourceRules": [],
            "nonResourceRules": [],
            "incomplete": true,
            "evaluationError": denied.to_string(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use podgate_protocol::review::ResourceAttributes;

    fn denied() -> Denied {
        Denied::Namespace {
            user: "alice".into(),
            cluster: "dev-east".into(),
            allowed: vec!["default".into()],
            what: "namespace \"shop\"".into(),
        }
    }

    #[test]
    fn reviews_are_recognised_by_path() {
        let v1 = |r| ["apis", "authorization.k8s.io", "v1", r];
        assert_eq!(
            review_of(&v1("selfsubjectaccessreviews")),
            Some(Review::Access)
        );
        assert_eq!(
            review_of(&v1("selfsubjectrulesreviews")),
            Some(Review::Rules)
        );
        assert_eq!(review_of(&v1("subjectaccessreviews")), None);
        assert_eq!(
            review_of(&["apis", "authentication.k8s.io", "v1", "selfsubjectreviews"]),
            None
        );
    }

    #[test]
    fn answers_say_no_with_podgates_reason_and_echo_the_question() {
        let spec = AccessSpec {
            resource: Some(ResourceAttributes {
                namespace: "shop".into(),
                verb: "get".into(),
                resource: "pods".into(),
                ..Default::default()
            }),
            non_resource: None,
        };
        let a = access_answer(&spec, &denied());
        assert_eq!(a["status"]["allowed"], json!(false));
        let reason = a["status"]["reason"].as_str().unwrap_or_default();
        assert!(reason.starts_with("podgate: "), "{reason}");
        assert!(reason.ends_with("not namespace \"shop\""), "{reason}");
        assert_eq!(
            a["spec"]["resourceAttributes"],
            json!({"namespace": "shop", "verb": "get", "resource": "pods"})
        );
        let r = rules_answer("shop", &denied());
        assert_eq!(r["status"]["resourceRules"], json!([]));
        assert_eq!(r["status"]["nonResourceRules"], json!([]));
        assert_eq!(r["spec"], json!({"namespace": "shop"}));
        assert!(
            r["status"]["evaluationError"]
                .as_str()
                .is_some_and(|e| e.starts_with("podgate: "))
        );
    }
}
