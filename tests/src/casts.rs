//! Recorded sessions for tests: a gateway's recording into a directory of the test's own, the
//! `.cast` files found there by recording id, and those files as the tools outside podgate read
//! them: parsed ([`Cast`]), through Debian's `asciinema cat`, replayed in pyte.

use podgate_config::{RecordingConfig, RecordingMode};
use std::path::{Path, PathBuf};

/// Every session recorded in `mode` into `dir` (input not recorded), by a replica named
/// `replica`: what [`crate::gateway::Builder::recording`] takes.
pub fn into_dir(dir: &Path, mode: RecordingMode, replica: &str) -> podgate::recording::Recording {
    let config = RecordingConfig {
        default: mode,
        dir: Some(dir.to_path_buf()),
        ..Default::default()
    };
    podgate::recording::Recording::new(
        podgate::recording::Recording::dir_sink(&config),
        &config,
        &[],
        replica.into(),
    )
}

/// The file of recording `id` (`YYYYMMDD.CLUSTER.SESSION`) under `dir`; `None` when the id
/// is not one.
pub fn path(dir: &Path, id: &str) -> Option<PathBuf> {
    podgate::recording::Key::parse(id).map(|k| dir.join(k.path()))
}

/// What pyte (a terminal emulator in Python, in the venv scripts/setup.sh makes) shows after
/// replaying a recording: its `"o"` events written in order and its `"r"` events applied as
/// resizes (markers and input change nothing on a screen).
#[derive(serde::Deserialize, Debug)]
pub struct PyteScreen {
    pub cols: u16,
    pub rows: u16,
    /// The visible rows, each without trailing blanks.
    pub display: Vec<String>,
}

const PYTE_SCRIPT: &str = r#"
import json, sys
import pyte

lines = open(sys.argv[1], encoding="utf-8").read().split("\n")
header = json.loads(lines[0])
screen = pyte.Screen(header["width"], header["height"])
stream = pyte.Stream(screen)
for line in lines[1:]:
    if not line.strip():
        continue
    _, code, data = json.loads(line)
    if code == "o":
        stream.feed(data)
    elif code == "r":
        cols, rows = data.split("x")
        screen.resize(int(rows), int(cols))
print(json.dumps({"cols": screen.columns, "rows": screen.lines,
                  "display": [row.rstrip() for row in screen.display]}))
"#;

/// Replays the `.cast` file at `cast` in pyte; `None` (the test skips, loudly) when the venv
/// or pyte is missing, outside CI.
pub fn pyte_screen(cast: &Path) -> Option<PyteScreen> {
    let python = crate::python::python()?;
    let has_pyte = std::process::Command::new(&python)
        .args(["-c", "import pyte"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !crate::available(has_pyte, "pyte in target/py (run scripts/setup.sh)") {
        return None;
    }
    let out = std::process::Command::new(&python)
        .args(["-c", PYTE_SCRIPT])
        .arg(cast)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "pyte could not replay {}: {}",
        cast.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).expect("pyte's screen as JSON"))
}

/// One parsed recording.
#[derive(Debug)]
pub struct Cast {
    pub header: serde_json::Value,
    /// `(seconds, code, data)` in file order.
    pub events: Vec<(f64, String, String)>,
}

impl Cast {
    /// Parses `text`; panics with the line when it is not asciicast v2.
    pub fn parse(text: &str) -> Cast {
        let mut lines = text.lines();
        let header: serde_json::Value = lines
            .next()
            .and_then(|l| serde_json::from_str(l).ok())
            .unwrap_or_else(|| panic!("no asciicast header: {:?}", text.lines().next()));
        assert_eq!(header["version"], 2, "{header}");
        let events = lines
            .map(|l| {
                let v: (f64, String, String) = serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("not an asciicast event ({e}): {l}"));
                v
            })
            .collect();
        Cast { header, events }
    }

    /// The data of every event with `code`, joined.
    pub fn joined(&self, code: &str) -> String {
        self.events
            .iter()
            .filter(|(_, c, _)| c == code)
            .map(|(_, _, d)| d.as_str())
            .collect()
    }

    /// The markers, in order.
    pub fn markers(&self) -> Vec<&str> {
        self.events
            .iter()
            .filter(|(_, c, _)| c == "m")
            .map(|(_, _, d)| d.as_str())
            .collect()
    }

    /// podgate's own header fields.
    pub fn podgate(&self) -> &serde_json::Value {
        &self.header["podgate"]
    }
}

/// Whether Debian's asciinema is installed (`make setup` installs it).
pub fn asciinema_available() -> bool {
    crate::available(
        std::process::Command::new("asciinema")
            .arg("--version")
            .output()
            .is_ok(),
        "asciinema (Debian package) is missing: make setup installs it",
    )
}

/// `asciinema cat FILE`: its stdout; panics when asciinema refuses the file. It runs under a
/// pseudo-terminal of its own (it insists on opening `/dev/tty`), its stdout a pipe, so what it
/// prints arrives as it printed it.
pub async fn asciinema_cat(file: &Path) -> Vec<u8> {
    let (pty, pts) = pty_process::open().expect("a pty");
    let child = pty_process::Command::new("asciinema")
        .arg("cat")
        .arg(file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn(pts)
        .expect("asciinema runs");
    let out = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("asciinema cat ends within 30 s")
        .expect("asciinema's output");
    drop(pty);
    assert!(
        out.status.success(),
        "asciinema cat refused {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
