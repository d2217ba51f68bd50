//! `podgate serve`'s log as operators and log shippers read it: one JSON object per line with
//! `log.format: json`; text lines that no client-controlled value (a command, a pod name, a
//! path) can end early to start a forged line of its own; a refused reload as one line that
//! names every problem.

use podgate_testkit::kubectl;
use podgate_testkit::metrics::sample;
use podgate_testkit::serve::{self, ADMIN, BOB, Serve};
use podgate_testkit::{http, ws};
use std::path::Path;
use std::time::Duration;

const PODGATE: &str = env!("CARGO_BIN_EXE_podgate");

/// What a forged line would say.
const FORGED: &str =
    "2026-12-01T00:00:00.000000Z  INFO podgate::session: session ended outcome=completed";

/// How long a logged event may take to show.
const SHOWS: Duration = Duration::from_secs(10);

/// `text` for a URL path segment: the forged line's blanks and newline percent-encoded.
fn in_path(text: &str) -> String {
    text.replace(' ', "%20").replace('\n', "%0A")
}

/// An exec WebSocket as `token` on `pod` (a name as a path segment) in `default` of `east`,
/// refused: its HTTP code.
async fn refused_exec(gw: &Serve, token: &str, pod: &str) -> u16 {
    let path = format!(
        "/clusters/east/api/v1/namespaces/default/pods/{pod}/exec?command=true&stdout=true"
    );
    let (code, _) = ws::open(gw, token, &path, &[ws::V5], &[])
        .await
        .expect_err("the exec is refused");
    code
}

/// How a JSON line begins its event's message (`fields.message` as written).
fn says(event: &str) -> String {
    format!("\"fields\":{{\"message\":\"{event}")
}

/// The whole log of a `podgate serve` with `log.format: json`, from its start to its exit
/// after SIGTERM: a completed exec, one the cluster refused, a token nobody has.
async fn json_run() -> Vec<String> {
    let mut site = serve::one_cluster(Path::new(PODGATE), |c| c.set("log", "{format: json}")).await;
    let gw = &mut site.gw;
    let out = gw.kubectl("east", ADMIN.token).sh("echo hi").await;
    assert_eq!(out.text(), "hi\n", "{}", out.stderr);
    assert_eq!(out.code, 0);
    assert_eq!(refused_exec(gw, BOB.token, "shell-0").await, 403);
    let r = http::get(gw, "/clusters/east/version", "nobody-has-this-token").await;
    assert_eq!(r.code, 401, "{r:?}");
    // Found by the text of their message: the parsed `fields.message` of "session ended" is
    // not its message (see `json_log_objects_name_each_field_once`).
    for event in [
        "session ended",
        "session refused: ",
        "authentication failed",
    ] {
        gw.line_after(0, SHOWS, event, |l| l.contains(&says(event)))
            .await;
    }
    gw.sigterm();
    assert!(gw.exit_within(Duration::from_secs(15)).await.success());
    gw.log()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line() {
    if !kubectl::available() {
        return;
    }
    let log = json_run().await;
    let lines: Vec<serde_json::Value> = log
        .iter()
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l:?}"));
            assert!(v.is_object(), "not an object: {l}");
            v
        })
        .collect();
    assert!(lines.len() >= 8, "{log:#?}");
    let event = |m: &str| {
        log.iter()
            .position(|l| l.contains(&says(m)))
            .map(|i| &lines[i])
            .unwrap_or_else(|| panic!("no {m:?} event in {log:#?}"))
    };
    let ended = event("session ended");
    assert_eq!(ended["fields"]["outcome"], "completed", "{ended}");
    assert_eq!(ended["fields"]["exit_code"], 0, "{ended}");
    assert_eq!(
        (
            ended["span"]["user"].as_str(),
            ended["span"]["command"].as_str()
        ),
        (Some("admin"), Some("sh -c echo hi")),
        "{ended}"
    );
    let refused = event("session refused: ");
    assert_eq!(
        (
            refused["fields"]["outcome"].as_str(),
            refused["fields"]["code"].as_u64(),
            refused["fields"]["user"].as_str()
        ),
        (Some("denied"), Some(403), Some("bob")),
        "{refused}"
    );
    assert_eq!(event("authentication failed")["level"], "INFO");
    assert_eq!(event("shut down")["level"], "INFO");
}

/// The names that occur more than once in an object of a JSON text, at any depth (parsers
/// differ on which one they keep; serde_json keeps the last).
struct Repeated(Vec<String>);

impl<'de> serde::Deserialize<'de> for Repeated {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Repeated, D::Error> {
        d.deserialize_any(Repeated(Vec::new()))
    }
}

impl<'de> serde::de::Visitor<'de> for Repeated {
    type Value = Repeated;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("JSON")
    }

    fn visit_map<M: serde::de::MapAccess<'de>>(mut self, mut map: M) -> Result<Repeated, M::Error> {
        let mut names = std::collections::HashSet::new();
        while let Some(name) = map.next_key::<String>()? {
            if !names.insert(name.clone()) {
                self.0.push(name);
            }
            self.0.extend(map.next_value::<Repeated>()?.0);
        }
        Ok(self)
    }

    fn visit_seq<S: serde::de::SeqAccess<'de>>(mut self, mut seq: S) -> Result<Repeated, S::Error> {
        while let Some(inner) = seq.next_element::<Repeated>()? {
            self.0.extend(inner.0);
        }
        Ok(self)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Repeated, E> {
        Ok(self)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Repeated, E> {
        Ok(self)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Repeated, E> {
        Ok(self)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Repeated, E> {
        Ok(self)
    }

    fn visit_str<E>(self, _: &str) -> Result<Repeated, E> {
        Ok(self)
    }

    fn visit_unit<E>(self) -> Result<Repeated, E> {
        Ok(self)
    }
}

/// A log shipper reads `fields.message` as the event: one name, one value. (The "session
/// ended" event once carried the message the person was told as a second `message`, and
/// readers that keep the last value saw that instead of "session ended".)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_log_objects_name_each_field_once() {
    if !kubectl::available() {
        return;
    }
    let log = json_run().await;
    let repeated: Vec<(Vec<String>, &String)> = log
        .iter()
        .map(|l| {
            let r: Repeated =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
            (r.0, l)
        })
        .filter(|(names, _)| !names.is_empty())
        .collect();
    assert!(repeated.is_empty(), "names given twice: {repeated:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_log_lines_cannot_be_forged() {
    if !kubectl::available() {
        return;
    }
    let site = serve::one_cluster(Path::new(PODGATE), |c| c).await;
    let gw = &site.gw;
    let hostile = format!("x\n{FORGED}");

    // In the command: `sh -c "echo hi" <hostile>` ($0 of the script).
    let out = gw
        .kubectl("east", ADMIN.token)
        .run(
            &[
                "exec", "-n", "default", "shell-0", "--", "sh", "-c", "echo hi", &hostile,
            ],
            b"",
        )
        .await;
    assert_eq!(out.text(), "hi\n", "{}", out.stderr);
    assert_eq!(out.code, 0);
    let escaped = format!("x\\n{FORGED}");
    let ended = gw
        .line_after(0, SHOWS, "the session's end", |l| {
            l.contains("session ended") && l.contains("outcome=\"completed\"")
        })
        .await;
    assert!(
        ended.contains(&format!("command=\"sh -c echo hi {escaped}\"")),
        "{ended}"
    );
    // Both of the session's own lines name it in full, under `session{...}:`.
    let started = gw
        .line_after(0, SHOWS, "the session's start", |l| {
            l.contains("session started")
        })
        .await;
    for line in [&started, &ended] {
        let fields = line
            .split_once(" session{session_id=")
            .and_then(|(_, rest)| rest.split_once("}: "))
            .map(|(fields, _)| fields)
            .unwrap_or_else(|| panic!("no session{{...}} fields: {line}"));
        for want in [
            " user=admin ",
            " cluster=east ",
            " namespace=default ",
            " pod=shell-0 ",
            " client_protocol=",
            " upstream_protocol=",
        ] {
            assert!(fields.contains(want), "{want:?} not in {line}");
        }
    }

    // In a pod name, which podgate logs with the cluster's refusal.
    let pod = in_path(&hostile);
    assert_eq!(refused_exec(gw, ADMIN.token, &pod).await, 404);
    let refused = gw
        .line_after(0, SHOWS, "the refusal", |l| l.contains("session refused: "))
        .await;
    assert!(refused.contains(&format!("pod=\"{escaped}\"")), "{refused}");
    // In a cluster id: answered 404 (and not logged).
    let r = http::get(gw, &format!("/clusters/nope{pod}/version"), ADMIN.token).await;
    http::assert_status(r.code, &r.body, 404);

    let log = gw.log();
    let forged: Vec<&String> = log.iter().filter(|l| l.starts_with(FORGED)).collect();
    assert!(forged.is_empty(), "forged lines: {forged:#?}");
    let carrying = log.iter().filter(|l| l.contains(&escaped)).count();
    // The session's start and end (its span names the command), and the refusal.
    assert!(carrying >= 3, "{carrying} lines carry it escaped: {log:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_reload_is_one_line_naming_every_problem() {
    if !kubectl::available() {
        return;
    }
    let site = serve::one_cluster(Path::new(PODGATE), |c| c).await;
    let (gw, files) = (&site.gw, &site.files);
    let admin = gw.kubectl("east", ADMIN.token);
    let lists = async || {
        let out = admin.run(&["get", "pods", "-o", "name"], b"").await;
        assert!(out.text().contains("pod/shell-0"), "{}", out.stderr);
    };
    lists().await;
    // Two problems; and a policy that, were any of the file applied, would shut admin out.
    let refused = site
        .config
        .clone()
        .access("east", "{users: [nobody]}")
        .set("limits", "{max_sessions: 0, max_connections: 0}");
    let line = gw.reload(|| files.write_config(&refused)).await;
    let file = files.config.display().to_string();
    let first = format!("{file}: limits.max_sessions: must be at least 1");
    let second = format!("{file}: limits.max_connections: must be at least 1");
    assert!(
        line.contains(" ERROR ")
            && line.contains("config reload incomplete: the file was refused")
            && line.contains(&format!("{first}; {second}")),
        "{line}"
    );
    let log = gw.log();
    assert!(
        !log.iter().any(|l| l.starts_with(&format!("{file}: "))),
        "a problem on a line of its own: {log:#?}"
    );
    // The running config stays, all of it.
    lists().await;
    let metrics = gw.admin_get("/metrics").await.body;
    assert_eq!(
        sample(
            &metrics,
            "podgate_config_reloads_total",
            &[("result", "failure")]
        ),
        Some(1.0),
        "{metrics}"
    );
}
