//! `metav1.Status`: the error body of every Kubernetes API failure, and the exit status that
//! v4+ remote-command servers send on stream 3.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(
        default,
        rename = "apiVersion",
        skip_serializing_if = "Option::is_none"
    )]
    pub api_version: Option<String>,
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<StatusDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<StatusCause>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCause {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl Status {
    /// Stream 3 on success: `{"metadata":{},"status":"Success"}`.
    pub fn success() -> Status {
        Status {
            status: "Success".into(),
            ..Status::default()
        }
    }

    /// Stream 3 for a non-zero exit, shaped as the kubelet sends it so that kubectl prints
    /// `command terminated with exit code N` and exits N.
    pub fn exit_code(code: i32, runtime_message: &str) -> Status {
        Status {
            status: "Failure".into(),
            message: Some(format!(
                "command terminated with non-zero exit code: {runtime_message}"
            )),
            reason: Some("NonZeroExitCode".into()),
            details: Some(StatusDetails {
                causes: vec![StatusCause {
                    reason: Some("ExitCode".into()),
                    message: Some(code.to_string()),
                    field: None,
                }],
                ..StatusDetails::default()
            }),
            ..Status::default()
        }
    }

    /// Stream 3 for any other failure inside a session.
    pub fn stream_failure(message: impl Into<String>) -> Status {
        Status {
            status: "Failure".into(),
            message: Some(message.into()),
            ..Status::default()
        }
    }

    /// An API error body, as kube-apiserver returns before any upgrade.
    pub fn api_error(code: u16, reason: &str, message: impl Into<String>) -> Status {
        Status {
            kind: Some("Status".into()),
            api_version: Some("v1".into()),
            status: "Failure".into(),
            message: Some(message.into()),
            reason: Some(reason.into()),
            code: Some(code),
            ..Status::default()
        }
    }

    /// Adds `details` naming the object (`kind` is the resource, e.g. `pods`).
    pub fn with_details(mut self, name: &str, kind: &str) -> Status {
        self.details = Some(StatusDetails {
            name: Some(name.into()),
            kind: Some(kind.into()),
            ..StatusDetails::default()
        });
        self
    }

    /// Adds a cause (`details.causes`), keeping any details already there.
    pub fn with_cause(mut self, reason: &str, message: &str) -> Status {
        self.details
            .get_or_insert_with(StatusDetails::default)
            .causes
            .push(StatusCause {
                reason: Some(reason.into()),
                message: Some(message.into()),
                field: None,
            });
        self
    }

    /// The message of the first cause with `reason`.
    pub fn cause(&self, reason: &str) -> Option<&str> {
        self.details
            .as_ref()?
            .causes
            .iter()
            .find(|c| c.reason.as_deref() == Some(reason))?
            .message
            .as_deref()
    }

    /// `404 pods "nope" not found`.
    pub fn not_found(resource: &str, name: &str) -> Status {
        Status::api_error(404, "NotFound", format!("{resource} \"{name}\" not found"))
            .with_details(name, resource)
    }

    /// `401 Unauthorized`, the generic message kube-apiserver gives for any failed login.
    pub fn unauthorized() -> Status {
        Status::api_error(401, "Unauthorized", "Unauthorized")
    }

    pub fn bad_request(message: impl Into<String>) -> Status {
        Status::api_error(400, "BadRequest", message)
    }

    /// The exit code a client should report, read the way kubectl reads it: `Success` is 0,
    /// a `NonZeroExitCode` carries it in the `ExitCode` cause, any other failure is `None`.
    pub fn exit_code_value(&self) -> Option<i32> {
        if self.status == "Success" {
            return Some(0);
        }
        if self.reason.as_deref() != Some("NonZeroExitCode") {
            return None;
        }
        self.details
            .as_ref()?
            .causes
            .iter()
            .find(|c| c.reason.as_deref() == Some("ExitCode"))?
            .message
            .as_deref()?
            .parse()
            .ok()
    }

    pub fn to_json(&self) -> Vec<u8> {
        // Serialising plain strings and maps cannot fail.
        serde_json::to_vec(self).unwrap_or_else(|_| b"{}".to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_are_added_and_found() {
        let s = Status::api_error(403, "Forbidden", "no")
            .with_details("east", "clusters")
            .with_cause("podgate.io/outcome", "denied");
        assert_eq!(s.cause("podgate.io/outcome"), Some("denied"));
        assert_eq!(
            s.details.as_ref().and_then(|d| d.name.as_deref()),
            Some("east")
        );
        assert_eq!(Status::success().cause("podgate.io/outcome"), None);
        // An exit status stays readable next to another cause.
        let exit = Status::exit_code(3, "x").with_cause("podgate.io/outcome", "exit_nonzero");
        assert_eq!(exit.exit_code_value(), Some(3));
    }

    #[test]
    fn success_is_byte_exact() {
        assert_eq!(
            String::from_utf8(Status::success().to_json()).unwrap(),
            r#"{"metadata":{},"status":"Success"}"#
        );
        assert_eq!(Status::success().exit_code_value(), Some(0));
    }

    #[test]
    fn exit_code_shape_matches_kubelet() {
        let s = Status::exit_code(3, "exit status 3");
        assert_eq!(
            String::from_utf8(s.to_json()).unwrap(),
            r#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: exit status 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#
        );
        assert_eq!(s.exit_code_value(), Some(3));
        let back: Status = serde_json::from_slice(&s.to_json()).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn other_failures_have_no_exit_code() {
        assert_eq!(Status::stream_failure("boom").exit_code_value(), None);
    }

    #[test]
    fn not_found_shape_matches_apiserver() {
        assert_eq!(
            String::from_utf8(Status::not_found("pods", "nope").to_json()).unwrap(),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods \"nope\" not found","reason":"NotFound","details":{"name":"nope","kind":"pods"},"code":404}"#
        );
    }
}
