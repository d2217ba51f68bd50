//! What a failed `tar` in a container means for the person, as a `Status` they can act on.
//! Pure: the exit status and stderr in, the answer out, so every case is unit-tested.

use podgate_protocol::Status;

/// The `details.causes[].reason` naming what went wrong (`no_tar`, `permission_denied`, ...),
/// so the page tells cases apart without reading English.
pub const FILE_ERROR_CAUSE: &str = "podgate.io/file-error";

/// A transfer's failure, in podgate's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    NoTar,
    PermissionDenied,
    ReadOnly,
    DiskFull,
    NotFound,
    /// The path names a directory, a link or a device, not a regular file.
    NotRegular,
    TooLarge,
    /// Anything else tar said.
    Failed,
}

impl Problem {
    pub fn as_str(self) -> &'static str {
        match self {
            Problem::NoTar => "no_tar",
            Problem::PermissionDenied => "permission_denied",
            Problem::ReadOnly => "read_only",
            Problem::DiskFull => "disk_full",
            Problem::NotFound => "not_found",
            Problem::NotRegular => "not_regular",
            Problem::TooLarge => "too_large",
            Problem::Failed => "failed",
        }
    }

    fn code_reason(self) -> (u16, &'static str) {
        match self {
            Problem::NoTar => (422, "Invalid"),
            Problem::PermissionDenied => (403, "Forbidden"),
            Problem::ReadOnly => (409, "Conflict"),
            Problem::DiskFull => (507, "InsufficientStorage"),
            Problem::NotFound => (404, "NotFound"),
            Problem::NotRegular => (400, "BadRequest"),
            Problem::TooLarge => (413, "RequestEntityTooLarge"),
            Problem::Failed => (500, "InternalError"),
        }
    }

    /// The `Status` for this problem with `message`.
    pub fn status(self, message: String) -> Status {
        let (code, reason) = self.code_reason();
        Status::api_error(code, reason, message).with_cause(FILE_ERROR_CAUSE, self.as_str())
    }
}

/// Which way, and where, for the words.
#[derive(Debug, Clone, Copy)]
pub struct Transfer<'a> {
    pub upload: bool,
    pub path: &'a str,
    pub dir: &'a str,
    pub container: &'a str,
}

/// Whether the exit status says the command succeeded.
pub fn succeeded(status: &Status) -> bool {
    status.status == "Success"
}

/// The exit code in a `NonZeroExitCode` status.
fn exit_code(status: &Status) -> Option<i32> {
    status.cause("ExitCode").and_then(|c| c.parse().ok())
}

/// What went wrong, from the failed `status` and what tar wrote on stderr.
pub fn classify(status: &Status, stderr: &str) -> Problem {
    let message = status.message.as_deref().unwrap_or("");
    let both = format!("{message}\n{stderr}");
    let code = exit_code(status);
    // The runtime could not start tar (`exec: "tar": executable file not found in $PATH`),
    // or a shell in between said so (exit 127).
    let not_started = code.is_none() || matches!(code, Some(126 | 127));
    if not_started
        && (both.contains("executable file not found")
            || both.contains("tar: not found")
            || both.contains("tar: command not found")
            || both.contains("no such file or directory: unknown"))
    {
        return Problem::NoTar;
    }
    // tar names the errno's text (GNU: "Cannot open: Read-only file system", BusyBox:
    // "can't open 'x': Read-only file system").
    // GNU tar reports a short write (what a full disk gives it) without the errno's text.
    if both.contains("No space left on device")
        || both.contains("Disk quota exceeded")
        || (both.contains("Wrote only") && both.contains(" bytes"))
    {
        return Problem::DiskFull;
    }
    if both.contains("Read-only file system") {
        return Problem::ReadOnly;
    }
    if both.contains("Permission denied") || both.contains("Operation not permitted") {
        return Problem::PermissionDenied;
    }
    if both.contains("No such file or directory") || both.contains("Not a directory") {
        return Problem::NotFound;
    }
    if both.contains("Is a directory") {
        return Problem::NotRegular;
    }
    Problem::Failed
}

/// The message for `problem`, saying what to do.
pub fn message(problem: Problem, t: &Transfer<'_>, stderr: &str, exit: &Status) -> String {
    let c = t.container;
    let said = last_lines(stderr);
    let said = if said.is_empty() {
        exit.message.clone().unwrap_or_default()
    } else {
        said
    };
    match problem {
        Problem::NoTar => format!(
            "container \"{c}\" has no tar on its PATH; podgate copies files with tar, as kubectl \
             cp does. Use an image that has tar, or copy through a debug container that has it"
        ),
        Problem::PermissionDenied if t.upload => format!(
            "permission denied: the user container \"{c}\" runs as may not write {}; upload into \
             a directory it owns (its home or /tmp) ({said})",
            t.path
        ),
        Problem::PermissionDenied => format!(
            "permission denied: the user container \"{c}\" runs as may not read {} ({said})",
            t.path
        ),
        Problem::ReadOnly => format!(
            "{} is on a read-only file system in container \"{c}\"; upload into a writable \
             directory (/tmp, or an emptyDir volume) ({said})",
            t.dir
        ),
        Problem::DiskFull => format!(
            "no space left on the file system holding {} in container \"{c}\": the file did not \
             fit and a partial copy may remain; free space there or upload elsewhere ({said})",
            t.dir
        ),
        Problem::NotFound if t.upload => format!(
            "directory {} does not exist in container \"{c}\"; create it first or choose another \
             ({said})",
            t.dir
        ),
        Problem::NotFound => format!("there is no file {} in container \"{c}\" ({said})", t.path),
        Problem::NotRegular => format!(
            "{} in container \"{c}\" is not a regular file; podgate copies one file at a time \
             ({said})",
            t.path
        ),
        Problem::TooLarge => format!("{} is too large ({said})", t.path),
        Problem::Failed => {
            let code = exit_code(exit).map_or(String::new(), |c| format!(" with exit code {c}"));
            format!(
                "tar failed{code} in container \"{c}\" copying {}: {said}",
                t.path
            )
        }
    }
}

/// The last few lines of what tar wrote, bounded, for a message.
fn last_lines(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(3);
    let text = lines[start..].join("; ");
    text.chars().take(600).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exit(code: i32) -> Status {
        Status::exit_code(code, &format!("error executing command, exit code {code}"))
    }

    #[test]
    fn tar_missing_is_told_as_such() {
        let s = Status::stream_failure(
            "OCI runtime exec failed: exec failed: unable to start container process: exec: \
             \"tar\": executable file not found in $PATH: unknown",
        );
        assert_eq!(classify(&s, ""), Problem::NoTar);
        assert_eq!(classify(&exit(127), "sh: tar: not found\n"), Problem::NoTar);
        // A file named "tar: not found" inside an ordinary failure is not a missing tar.
        assert_ne!(
            classify(&exit(2), "tar: x: Cannot stat: No such file or directory"),
            Problem::NoTar
        );
    }

    #[test]
    fn errno_texts_map_to_problems() {
        let cases = [
            (
                "tar: f: Cannot open: Read-only file system\ntar: Exiting with failure status due to previous errors",
                Problem::ReadOnly,
            ),
            (
                "tar: f: Cannot write: No space left on device",
                Problem::DiskFull,
            ),
            (
                "tar: f: Wrote only 4096 of 10240 bytes\ntar: f: Cannot write: No space left on device",
                Problem::DiskFull,
            ),
            (
                "tar: f: Cannot open: Permission denied",
                Problem::PermissionDenied,
            ),
            (
                "tar: can't open 'f': Permission denied",
                Problem::PermissionDenied,
            ),
            (
                "tar: f: Cannot stat: No such file or directory",
                Problem::NotFound,
            ),
            (
                "tar: /nope: Cannot open: No such file or directory",
                Problem::NotFound,
            ),
            ("tar: f: Cannot open: Is a directory", Problem::NotRegular),
            ("tar: something else entirely", Problem::Failed),
        ];
        for (stderr, want) in cases {
            assert_eq!(classify(&exit(2), stderr), want, "{stderr}");
        }
    }

    #[test]
    fn statuses_carry_code_reason_and_cause() {
        let t = Transfer {
            upload: true,
            path: "/ro/f",
            dir: "/ro",
            container: "main",
        };
        let m = message(
            Problem::ReadOnly,
            &t,
            "tar: f: Cannot open: Read-only file system\n",
            &exit(2),
        );
        assert!(m.contains("/ro is on a read-only file system"), "{m}");
        assert!(m.contains("Read-only file system)"), "{m}");
        let s = Problem::ReadOnly.status(m);
        assert_eq!(s.code, Some(409));
        assert_eq!(s.cause(FILE_ERROR_CAUSE), Some("read_only"));
        let m = message(Problem::Failed, &t, "", &exit(3));
        assert!(m.contains("exit code 3"), "{m}");
        assert!(!succeeded(&exit(2)));
        assert!(succeeded(&Status::success()));
    }

    #[test]
    fn long_stderr_is_bounded() {
        let noise = "x".repeat(10_000);
        let t = Transfer {
            upload: false,
            path: "/f",
            dir: "/",
            container: "c",
        };
        assert!(message(Problem::Failed, &t, &noise, &exit(1)).len() < 800);
    }
}
