//! `pods/{pod}/ephemeralcontainers`: what `kubectl debug` PATCHes (a strategic merge patch of
//! `spec.ephemeralContainers`, merged by name) and reads. An ephemeral container runs the
//! process runtime: its image is recorded, its command (and args) is what `attach` runs, as
//! for any process container here. As kube-apiserver: ephemeral containers can be added, never
//! changed or removed; a name already in the pod, a missing image or an unknown
//! `targetContainerName` is `422 Invalid`.

use crate::store::{PodEntry, now, running_status};
use crate::topology::{ContainerSpec, Runtime};
use k8s_openapi::api::core::v1 as core;
use podgate_protocol::Status;
use serde_json::Value;

/// The media types a PATCH may have here.
pub fn patch_type_ok(content_type: &str) -> bool {
    content_type.starts_with("application/strategic-merge-patch+json")
        || content_type.starts_with("application/merge-patch+json")
}

fn invalid(pod: &str, field: String, why: &str) -> Status {
    Status::api_error(
        422,
        "Invalid",
        format!("Pod \"{pod}\" is invalid: {field}: {why}"),
    )
}

/// The pod `entry` with the ephemeral containers `patch` adds, or why not.
pub fn apply(entry: &PodEntry, pod_name: &str, patch: &[u8]) -> Result<PodEntry, Status> {
    let patch: Value = serde_json::from_slice(patch)
        .map_err(|e| Status::bad_request(format!("the patch is not JSON: {e}")))?;
    let wanted = match &patch["spec"]["ephemeralContainers"] {
        Value::Array(list) => list.clone(),
        Value::Null => Vec::new(),
        _ => {
            return Err(Status::bad_request(
                "spec.ephemeralContainers must be a list",
            ));
        }
    };
    let mut spec = entry.spec.clone();
    let mut pod = entry.pod.clone();
    let time = now();
    for (i, item) in wanted.iter().enumerate() {
        let field = |f: &str| format!("spec.ephemeralContainers[{i}].{f}");
        let c: core::EphemeralContainer = serde_json::from_value(item.clone())
            .map_err(|e| Status::bad_request(format!("spec.ephemeralContainers[{i}]: {e}")))?;
        if let Some(existing) = spec.ephemeral_containers.iter().find(|e| e.name == c.name) {
            // The patch repeats the ones there (merged by name): unchanged is fine.
            if existing.image == c.image.clone().unwrap_or_default() {
                continue;
            }
            return Err(invalid(
                pod_name,
                field("").trim_end_matches('.').to_string(),
                &format!(
                    "Forbidden: existing ephemeral containers {:?} may not be changed",
                    c.name
                ),
            ));
        }
        if c.name.is_empty() {
            return Err(invalid(pod_name, field("name"), "Required value"));
        }
        if spec.all_containers().any(|x| x.name == c.name) {
            return Err(invalid(
                pod_name,
                field("name"),
                &format!("Duplicate value: {:?}", c.name),
            ));
        }
        let Some(image) = c.image.clone().filter(|i| !i.is_empty()) else {
            return Err(invalid(pod_name, field("image"), "Required value"));
        };
        if let Some(t) = &c.target_container_name
            && !spec.containers.iter().any(|x| &x.name == t)
        {
            return Err(invalid(
                pod_name,
                field("targetContainerName"),
                &format!("Not found: {t:?}"),
            ));
        }
        // The image's entrypoint would run; here that is a shell.
        let mut command = c.command.clone().unwrap_or_default();
        command.extend(c.args.clone().unwrap_or_default());
        if command.is_empty() {
            command = vec!["sh".into()];
        }
        let added = ContainerSpec {
            name: c.name.clone(),
            image,
            runtime: Runtime::Process,
            command,
            flood_bytes: 0,
            ports: Vec::new(),
            restarts: 0,
            env: Vec::new(),
            working_dir: None,
            security_context: None,
        };
        let status = running_status(&added, &time);
        let pod_spec = pod.spec.get_or_insert_with(Default::default);
        pod_spec
            .ephemeral_containers
            .get_or_insert_with(Vec::new)
            .push(c);
        pod.status
            .get_or_insert_with(Default::default)
            .ephemeral_container_statuses
            .get_or_insert_with(Vec::new)
            .push(status);
        spec.ephemeral_containers.push(added);
    }
    let version = pod
        .metadata
        .resource_version
        .as_deref()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(1);
    pod.metadata.resource_version = Some((version + 1).to_string());
    Ok(PodEntry { pod, spec })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::topology::Topology;

    fn shell() -> std::sync::Arc<PodEntry> {
        Store::new(&Topology::builtin())
            .pod("default", "shell-0")
            .expect("shell-0")
    }

    #[test]
    fn a_debug_container_is_added_and_runs_its_command() {
        let patch = br#"{"spec":{"ephemeralContainers":[{"name":"debugger-x","image":"busybox",
            "command":["sh"],"stdin":true,"tty":true,"targetContainerName":"main"}]}}"#;
        let e = apply(&shell(), "shell-0", patch).expect("added");
        let c = e.container("debugger-x").expect("attachable");
        assert_eq!(
            (c.image.as_str(), c.command.as_slice()),
            ("busybox", &["sh".to_string()][..])
        );
        let st = e
            .pod
            .status
            .as_ref()
            .unwrap()
            .ephemeral_container_statuses
            .as_ref()
            .unwrap();
        assert!(st[0].state.as_ref().unwrap().running.is_some());
        // Again (kubectl's patch lists it again): unchanged.
        let again = apply(&e, "shell-0", patch).expect("idempotent");
        assert_eq!(again.spec.ephemeral_containers.len(), 1);
    }

    fn refused(patch: &[u8]) -> Status {
        match apply(&shell(), "shell-0", patch) {
            Ok(_) => panic!("accepted: {}", String::from_utf8_lossy(patch)),
            Err(s) => s,
        }
    }

    #[test]
    fn what_kube_apiserver_refuses_is_refused() {
        let target = shell().spec.containers[0].name.clone();
        let e = refused(
            format!(
                r#"{{"spec":{{"ephemeralContainers":[{{"name":"{target}","image":"busybox"}}]}}}}"#
            )
            .as_bytes(),
        );
        assert_eq!(e.code, Some(422));
        let e = refused(br#"{"spec":{"ephemeralContainers":[{"name":"d"}]}}"#);
        assert!(e.message.unwrap().contains("image: Required value"));
        let e = refused(
            br#"{"spec":{"ephemeralContainers":[{"name":"d","image":"b","targetContainerName":"nope"}]}}"#,
        );
        assert!(
            e.message
                .unwrap()
                .contains("targetContainerName: Not found")
        );
        assert_eq!(refused(b"nope").code, Some(400));
    }
}
