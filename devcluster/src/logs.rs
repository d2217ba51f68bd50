//! `pods/{pod}/log`: each container's log is a few deterministic lines, and with `follow`
//! a new line every [`FOLLOW_EVERY`] until the client leaves, so `kubectl logs -f` through a
//! proxy has something to stream. A container with `restarts` has a previous instance with a
//! log of its own (`previous=true`); `timestamps=true` puts each line's RFC3339Nano time in
//! front of it, as the kubelet does; `tailLines`, `sinceSeconds` and `sinceTime` choose lines
//! by count and time.

use bytes::Bytes;
use hyper::{Response, StatusCode};
use k8s_openapi::api::core::v1 as core;
use podgate_protocol::Status;
use podgate_protocol::http::{Body, with_type};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const FOLLOW_EVERY: Duration = Duration::from_millis(200);
const INITIAL_LINES: u64 = 3;
const PREVIOUS_LINES: u64 = 3;

/// Go's `time.RFC3339Nano` in UTC: fractional seconds without trailing zeros (none when 0).
pub fn rfc3339_nano(unix_nanos: i128) -> String {
    let secs = unix_nanos.div_euclid(1_000_000_000);
    let nanos = unix_nanos.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i128::from(month <= 2);
    let mut out = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        tod / 3600,
        tod / 60 % 60,
        tod % 60
    );
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

fn now_nanos() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

/// What the client asked of a log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LogQuery {
    pub follow: bool,
    pub previous: bool,
    pub timestamps: bool,
    pub tail: Option<u64>,
    /// Only lines at or after this time (unix nanoseconds).
    pub since: Option<i128>,
}

fn flag(v: &str) -> Result<bool, String> {
    match v {
        "true" | "1" | "True" | "TRUE" | "t" | "T" => Ok(true),
        "false" | "0" | "False" | "FALSE" | "f" | "F" | "" => Ok(false),
        _ => Err(format!("strconv.ParseBool: parsing {v:?}: invalid syntax")),
    }
}

impl LogQuery {
    /// Reads `follow`, `previous`, `timestamps`, `tailLines`, `sinceSeconds`, `sinceTime`;
    /// a value that does not parse, or both since options, is refused as kube-apiserver does.
    pub fn parse(query: &str, now_nanos: i128) -> Result<LogQuery, Status> {
        let mut q = LogQuery::default();
        let (mut since_seconds, mut since_time) = (None, None);
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            let bad = |e: String| Status::bad_request(format!("{k}: {e}"));
            match k.as_ref() {
                "follow" => q.follow = flag(&v).map_err(bad)?,
                "previous" => q.previous = flag(&v).map_err(bad)?,
                "timestamps" => q.timestamps = flag(&v).map_err(bad)?,
                "tailLines" => {
                    let n: i64 = v.parse().map_err(|e| bad(format!("{e}")))?;
                    if n < 0 {
                        return Err(invalid(
                            "tailLines",
                            &n.to_string(),
                            "must be greater than or equal to 0",
                        ));
                    }
                    q.tail = Some(n as u64);
                }
                "sinceSeconds" => {
                    let n: i64 = v.parse().map_err(|e| bad(format!("{e}")))?;
                    if n < 1 {
                        return Err(invalid(
                            "sinceSeconds",
                            &n.to_string(),
                            "must be greater than 0",
                        ));
                    }
                    since_seconds = Some(n);
                }
                "sinceTime" => {
                    let t: k8s_openapi::jiff::Timestamp =
                        v.parse().map_err(|e| bad(format!("{e}")))?;
                    since_time = Some(t.as_nanosecond());
                }
                _ => {}
            }
        }
        q.since = match (since_seconds, since_time) {
            (Some(_), Some(_)) => {
                return Err(Status::api_error(
                    422,
                    "Invalid",
                    "PodLogOptions.meta.k8s.io \"\" is invalid: sinceSeconds: Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified",
                ));
            }
            (Some(s), None) => Some(now_nanos - i128::from(s) * 1_000_000_000),
            (None, t) => t,
        };
        Ok(q)
    }
}

fn invalid(field: &str, value: &str, why: &str) -> Status {
    Status::api_error(
        422,
        "Invalid",
        format!(
            "PodLogOptions.meta.k8s.io \"\" is invalid: {field}: Invalid value: {value}: {why}"
        ),
    )
}

/// One log line: its time and its text (with the newline).
fn render(timestamps: bool, at: i128, text: &str) -> Bytes {
    if timestamps {
        Bytes::from(format!("{} {text}\n", rfc3339_nano(at)))
    } else {
        Bytes::from(format!("{text}\n"))
    }
}

/// The lines already written by the instance asked for: (time, text). The previous instance
/// wrote its lines one microsecond apart from its start; the current one from 1 ms after.
pub fn written_lines(
    pod: &str,
    container: &str,
    started: i128,
    previous: bool,
) -> Vec<(i128, String)> {
    if previous {
        (1..=PREVIOUS_LINES)
            .map(|n| {
                (
                    started + i128::from(n) * 1_000,
                    format!("devcluster {pod}/{container} (previous): log line {n}"),
                )
            })
            .chain(std::iter::once((
                started + i128::from(PREVIOUS_LINES + 1) * 1_000,
                format!("devcluster {pod}/{container} (previous): exiting with code 1"),
            )))
            .collect()
    } else {
        (1..=INITIAL_LINES)
            .map(|n| {
                (
                    started + 1_000_000 + i128::from(n) * 1_000,
                    format!("devcluster {pod}/{container}: log line {n}"),
                )
            })
            .collect()
    }
}

/// Serves the log of `container` in `pod` (its status says which instances exist).
pub fn serve(
    pod: &core::Pod,
    container: &str,
    query: &str,
    shutdown: CancellationToken,
) -> Response<Body> {
    match respond(pod, container, query, shutdown) {
        Ok(r) => r,
        Err(s) => podgate_protocol::http::status(&s),
    }
}

fn respond(
    pod: &core::Pod,
    container: &str,
    query: &str,
    shutdown: CancellationToken,
) -> Result<Response<Body>, Status> {
    use futures_util::StreamExt as _;
    let q = LogQuery::parse(query, now_nanos())?;
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    let status = pod.status.as_ref();
    let cs = status
        .into_iter()
        .flat_map(|s| {
            s.container_statuses
                .iter()
                .chain(&s.init_container_statuses)
                .chain(&s.ephemeral_container_statuses)
                .flatten()
        })
        .find(|c| c.name == container);
    let started = status
        .and_then(|s| s.start_time.as_ref())
        .map_or(0, |t| i128::from(t.0.as_second()) * 1_000_000_000);
    let state = cs.and_then(|c| c.state.as_ref());
    if q.previous {
        let has_previous = cs.is_some_and(|c| c.restart_count > 0);
        if !has_previous {
            return Err(Status::bad_request(format!(
                "previous terminated container {container:?} in pod {pod_name:?} not found"
            )));
        }
    } else if let Some(w) = state.and_then(|s| s.waiting.as_ref()) {
        return Err(Status::bad_request(format!(
            "container {container:?} in pod {pod_name:?} is waiting to start: {}",
            w.reason.clone().unwrap_or_default()
        )));
    }
    // A previous instance, or a container that ended, writes nothing more.
    let ended = q.previous || state.is_some_and(|s| s.terminated.is_some());
    let follow = q.follow && !ended;
    let mut lines = written_lines(&pod_name, container, started, q.previous);
    if let Some(since) = q.since {
        lines.retain(|(at, _)| *at >= since);
    }
    if let Some(tail) = q.tail {
        let skip = lines
            .len()
            .saturating_sub(usize::try_from(tail).unwrap_or(usize::MAX));
        lines.drain(..skip);
    }
    let timestamps = q.timestamps;
    let initial: Vec<Result<hyper::body::Frame<Bytes>, std::io::Error>> = lines
        .iter()
        .map(|(at, text)| Ok(hyper::body::Frame::data(render(timestamps, *at, text))))
        .collect();
    let (pod_name, container) = (pod_name.clone(), container.to_string());
    let more = futures_util::stream::unfold(INITIAL_LINES + 1, move |n| {
        let (pod, container, shutdown) = (pod_name.clone(), container.clone(), shutdown.clone());
        async move {
            if !follow {
                return None;
            }
            tokio::select! {
                _ = shutdown.cancelled() => None,
                _ = tokio::time::sleep(FOLLOW_EVERY) => {
                    let text = format!("devcluster {pod}/{container}: log line {n}");
                    Some((Ok(hyper::body::Frame::data(render(timestamps, now_nanos(), &text))), n + 1))
                }
            }
        }
    });
    let body = http_body_util::StreamBody::new(futures_util::stream::iter(initial).chain(more));
    Ok(with_type(
        StatusCode::OK,
        "text/plain",
        http_body_util::BodyExt::boxed(body),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_gos_rfc3339_nano() {
        assert_eq!(rfc3339_nano(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339_nano(1_764_661_149_123_456_789),
            "2025-12-02T07:39:09.123456789Z"
        );
        assert_eq!(
            rfc3339_nano(1_764_661_149_120_000_000),
            "2025-12-02T07:39:09.12Z"
        );
        assert_eq!(
            rfc3339_nano(951_782_400_000_001_000),
            "2000-02-29T00:00:00.000001Z"
        );
        assert_eq!(
            render(true, 1_000_000_000, "x"),
            Bytes::from("1970-01-01T00:00:01Z x\n")
        );
        assert_eq!(render(false, 1, "x"), Bytes::from("x\n"));
    }

    #[test]
    fn log_options_parse_and_refuse_as_kube_does() {
        let q = LogQuery::parse("follow=true&previous=1&timestamps=true&tailLines=2", 0).unwrap();
        assert!(q.follow && q.previous && q.timestamps);
        assert_eq!(q.tail, Some(2));
        let q = LogQuery::parse("sinceSeconds=10", 100_000_000_000).unwrap();
        assert_eq!(q.since, Some(90_000_000_000));
        let q = LogQuery::parse("sinceTime=1970-01-01T00:00:05Z", 0).unwrap();
        assert_eq!(q.since, Some(5_000_000_000));
        assert_eq!(
            LogQuery::parse("tailLines=-1", 0).unwrap_err().code,
            Some(422)
        );
        assert_eq!(
            LogQuery::parse("sinceSeconds=0", 0).unwrap_err().code,
            Some(422)
        );
        assert_eq!(
            LogQuery::parse("sinceSeconds=1&sinceTime=1970-01-01T00:00:05Z", 0)
                .unwrap_err()
                .code,
            Some(422)
        );
        assert_eq!(
            LogQuery::parse("previous=maybe", 0).unwrap_err().code,
            Some(400)
        );
        assert_eq!(
            LogQuery::parse("tailLines=x", 0).unwrap_err().code,
            Some(400)
        );
    }

    #[test]
    fn the_previous_instance_wrote_before_the_current_one() {
        let prev = written_lines("p", "c", 0, true);
        let cur = written_lines("p", "c", 0, false);
        assert_eq!(
            prev.last().unwrap().1,
            "devcluster p/c (previous): exiting with code 1"
        );
        assert_eq!(cur[0].1, "devcluster p/c: log line 1");
        assert!(prev.last().unwrap().0 < cur[0].0);
        assert!(cur.windows(2).all(|w| w[0].0 < w[1].0));
    }
}
