//! The query string of `pods/{pod}/exec` and `pods/{pod}/attach`.

/// What a remote-command request asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecOptions {
    /// argv, one `command` parameter per element (empty for attach).
    pub command: Vec<String>,
    pub container: Option<String>,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QueryError {
    #[error("parameter {name}={value:?} is not a boolean (use true or false)")]
    NotBool { name: String, value: String },
    #[error("you must specify at least one command for the container")]
    NoCommand,
    #[error("you must specify at least 1 of stdin, stdout, stderr")]
    NoStreams,
}

/// Which subresource is being asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subresource {
    Exec,
    Attach,
}

impl Subresource {
    pub fn name(self) -> &'static str {
        match self {
            Subresource::Exec => "exec",
            Subresource::Attach => "attach",
        }
    }
}

/// Parses the query with kube-apiserver's defaults (stdout and stderr true unless given,
/// stdin and tty false) and its validation messages.
pub fn parse(query: &str, sub: Subresource) -> Result<ExecOptions, QueryError> {
    let mut opts = ExecOptions {
        stdout: true,
        stderr: true,
        ..ExecOptions::default()
    };
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let flag = |v: &str| parse_bool(&key, v);
        match key.as_ref() {
            "command" if sub == Subresource::Exec => opts.command.push(value.into_owned()),
            "container" if !value.is_empty() => opts.container = Some(value.into_owned()),
            "stdin" => opts.stdin = flag(&value)?,
            "stdout" => opts.stdout = flag(&value)?,
            "stderr" => opts.stderr = flag(&value)?,
            "tty" => opts.tty = flag(&value)?,
            _ => {}
        }
    }
    if sub == Subresource::Exec && opts.command.is_empty() {
        return Err(QueryError::NoCommand);
    }
    if !(opts.stdin || opts.stdout || opts.stderr) {
        return Err(QueryError::NoStreams);
    }
    Ok(opts)
}

fn parse_bool(name: &str, value: &str) -> Result<bool, QueryError> {
    match value {
        "true" | "True" | "TRUE" | "1" | "" => Ok(true),
        "false" | "False" | "FALSE" | "0" => Ok(false),
        _ => Err(QueryError::NotBool {
            name: name.into(),
            value: value.into(),
        }),
    }
}

/// Builds the query for `opts` (the inverse of [`parse`]).
pub fn to_query(opts: &ExecOptions) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for arg in &opts.command {
        q.append_pair("command", arg);
    }
    if let Some(c) = &opts.container {
        q.append_pair("container", c);
    }
    for (name, on) in [
        ("stdin", opts.stdin),
        ("stdout", opts.stdout),
        ("stderr", opts.stderr),
        ("tty", opts.tty),
    ] {
        q.append_pair(name, if on { "true" } else { "false" });
    }
    q.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_command_and_defaults() {
        let o = parse(
            "command=sh&command=-c&command=echo%20hi%3B%20exit%203&container=main",
            Subresource::Exec,
        )
        .unwrap();
        assert_eq!(o.command, ["sh", "-c", "echo hi; exit 3"]);
        assert_eq!(o.container.as_deref(), Some("main"));
        assert!(o.stdout && o.stderr && !o.stdin && !o.tty);
    }

    #[test]
    fn explicit_flags() {
        let o = parse(
            "command=cat&stdin=true&stdout=true&stderr=false&tty=1",
            Subresource::Exec,
        )
        .unwrap();
        assert!(o.stdin && o.stdout && !o.stderr && o.tty);
    }

    #[test]
    fn rejections() {
        assert_eq!(
            parse("stdin=true", Subresource::Exec),
            Err(QueryError::NoCommand)
        );
        assert_eq!(
            parse("command=x&stdout=false&stderr=false", Subresource::Exec),
            Err(QueryError::NoStreams)
        );
        assert!(matches!(
            parse("command=x&tty=maybe", Subresource::Exec),
            Err(QueryError::NotBool { .. })
        ));
    }

    #[test]
    fn attach_ignores_command() {
        let o = parse("command=x&stdin=true", Subresource::Attach).unwrap();
        assert!(o.command.is_empty());
    }

    #[test]
    fn round_trip() {
        let o = ExecOptions {
            command: vec!["sh".into(), "-c".into(), "a&b=c d".into()],
            container: Some("main".into()),
            stdin: true,
            stdout: true,
            stderr: false,
            tty: true,
        };
        assert_eq!(parse(&to_query(&o), Subresource::Exec).unwrap(), o);
    }
}
