//! Label and field selectors as kube-apiserver reads them (`labelSelector`, `fieldSelector`):
//! the grammar and the error wording of apimachinery's `labels.Parse` and
//! `fields.ParseSelector`, and matching against an object's labels and selectable fields.

use std::collections::BTreeMap;

/// One requirement of a label selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LabelReq {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
    Gt(String, i64),
    Lt(String, i64),
}

/// A parsed label selector; empty matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector(pub Vec<LabelReq>);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Ident(String),
    In,
    NotIn,
    Eq,
    DoubleEq,
    NotEq,
    Gt,
    Lt,
    Bang,
    Open,
    Close,
    Comma,
    End,
    Error(String),
}

impl Tok {
    fn literal(&self) -> &str {
        match self {
            Tok::Ident(s) | Tok::Error(s) => s,
            Tok::In => "in",
            Tok::NotIn => "notin",
            Tok::Eq => "=",
            Tok::DoubleEq => "==",
            Tok::NotEq => "!=",
            Tok::Gt => ">",
            Tok::Lt => "<",
            Tok::Bang => "!",
            Tok::Open => "(",
            Tok::Close => ")",
            Tok::Comma => ",",
            Tok::End => "",
        }
    }

    /// In value position, `in` and `notin` are plain identifiers.
    fn into_value(self) -> Tok {
        match self {
            Tok::In => Tok::Ident("in".into()),
            Tok::NotIn => Tok::Ident("notin".into()),
            t => t,
        }
    }
}

fn special(b: u8) -> bool {
    matches!(b, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

fn symbol(s: &[u8]) -> Option<Tok> {
    Some(match s {
        b"=" => Tok::Eq,
        b"==" => Tok::DoubleEq,
        b"!=" => Tok::NotEq,
        b"!" => Tok::Bang,
        b">" => Tok::Gt,
        b"<" => Tok::Lt,
        b"(" => Tok::Open,
        b")" => Tok::Close,
        b"," => Tok::Comma,
        _ => return None,
    })
}

fn lex(s: &str) -> Vec<Tok> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    loop {
        while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\r' | b'\n') {
            i += 1;
        }
        if i >= b.len() {
            out.push(Tok::End);
            return out;
        }
        if special(b[i]) {
            // The longest run of symbols that is still an operator, as apimachinery's lexer.
            let start = i;
            let mut last: Option<(Tok, usize)> = None;
            while i < b.len() && special(b[i]) {
                i += 1;
                match symbol(&b[start..i]) {
                    Some(t) => last = Some((t, i)),
                    None if last.is_some() => {
                        i -= 1;
                        break;
                    }
                    None => {}
                }
            }
            match last {
                Some((t, end)) => {
                    i = end;
                    out.push(t);
                }
                None => out.push(Tok::Error(format!(
                    "error expected: keyword found '{}'",
                    String::from_utf8_lossy(&b[start..i])
                ))),
            }
        } else {
            let start = i;
            while i < b.len() && !special(b[i]) && !matches!(b[i], b' ' | b'\t' | b'\r' | b'\n') {
                i += 1;
            }
            let word = String::from_utf8_lossy(&b[start..i]).into_owned();
            out.push(match word.as_str() {
                "in" => Tok::In,
                "notin" => Tok::NotIn,
                _ => Tok::Ident(word),
            });
        }
    }
}

const NAME_FMT: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const VALUE_FMT: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const SUBDOMAIN_FMT: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

fn name_chars_ok(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

fn subdomain_ok(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|l| {
            let b = l.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        })
}

/// apimachinery's `IsQualifiedName`: `[prefix/]name`.
fn label_key_errors(k: &str) -> Vec<String> {
    let parts: Vec<&str> = k.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            let mut errs = Vec::new();
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else if !subdomain_ok(prefix) {
                errs.push(format!("prefix part {SUBDOMAIN_FMT}"));
            }
            if !errs.is_empty() {
                return errs;
            }
            name
        }
        _ => {
            return vec![format!(
                "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            )];
        }
    };
    let mut errs = Vec::new();
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        errs.push("name part must be no more than 63 characters".to_string());
    }
    if !name.is_empty() && !name_chars_ok(name) {
        errs.push(NAME_FMT.to_string());
    }
    errs
}

fn label_value_errors(v: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if v.len() > 63 {
        errs.push("must be no more than 63 characters".to_string());
    }
    if !v.is_empty() && !name_chars_ok(v) {
        errs.push(VALUE_FMT.to_string());
    }
    errs
}

/// field.Invalid's text: `PATH: Invalid value: "VALUE": DETAIL` (a selector has no path).
fn invalid(path: &str, value: &str, errs: &[String]) -> String {
    format!("{path}: Invalid value: {value:?}: {}", errs.join("; "))
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Tok {
        self.toks.get(self.pos).cloned().unwrap_or(Tok::End)
    }

    fn next(&mut self) -> Tok {
        let t = self.peek();
        self.pos += 1;
        t
    }

    fn requirement(&mut self) -> Result<LabelReq, String> {
        let mut negated = false;
        let mut t = self.next().into_value();
        if t == Tok::Bang {
            negated = true;
            t = self.next().into_value();
        }
        let Tok::Ident(key) = t else {
            return Err(format!("found '{}', expected: identifier", t.literal()));
        };
        let errs = label_key_errors(&key);
        if !errs.is_empty() {
            return Err(invalid("<nil>", &key, &errs));
        }
        let after = self.peek().into_value();
        if negated || after == Tok::End || after == Tok::Comma {
            if negated {
                return Ok(LabelReq::NotExists(key));
            }
            return Ok(LabelReq::Exists(key));
        }
        let op = self.next();
        match op {
            Tok::In | Tok::NotIn => {
                let values = self.values()?;
                for v in &values {
                    let errs = label_value_errors(v);
                    if !errs.is_empty() {
                        return Err(invalid(&format!("[{key}]"), v, &errs));
                    }
                }
                if values.is_empty() {
                    return Err(invalid(
                        "<nil>",
                        "",
                        &["for 'in', 'notin' operators, values set can't be empty".into()],
                    ));
                }
                Ok(if op == Tok::In {
                    LabelReq::In(key, values)
                } else {
                    LabelReq::NotIn(key, values)
                })
            }
            Tok::Eq | Tok::DoubleEq | Tok::NotEq | Tok::Gt | Tok::Lt => {
                let value = match self.peek().into_value() {
                    Tok::End | Tok::Comma => String::new(),
                    _ => match self.next().into_value() {
                        Tok::Ident(v) => v,
                        t => return Err(format!("found '{}', expected: identifier", t.literal())),
                    },
                };
                if matches!(op, Tok::Gt | Tok::Lt) {
                    let Ok(n) = value.parse::<i64>() else {
                        return Err(invalid(
                            "<nil>",
                            &value,
                            &["for 'Gt', 'Lt' operators, the value must be an integer".into()],
                        ));
                    };
                    return Ok(if op == Tok::Gt {
                        LabelReq::Gt(key, n)
                    } else {
                        LabelReq::Lt(key, n)
                    });
                }
                let errs = label_value_errors(&value);
                if !errs.is_empty() {
                    return Err(invalid(&format!("[{key}]"), &value, &errs));
                }
                Ok(if op == Tok::NotEq {
                    LabelReq::NotEq(key, value)
                } else {
                    LabelReq::Eq(key, value)
                })
            }
            t => Err(format!(
                "found '{}', expected: in, notin, =, ==, !=, gt, lt",
                t.literal()
            )),
        }
    }

    /// `( v, v, ... )`, with apimachinery's handling of empty entries.
    fn values(&mut self) -> Result<Vec<String>, String> {
        let t = self.next().into_value();
        if t != Tok::Open {
            return Err(format!("found '{}' expected: '('", t.literal()));
        }
        let mut set = std::collections::BTreeSet::new();
        match self.peek().into_value() {
            Tok::Close => {
                self.next();
                set.insert(String::new());
                return Ok(set.into_iter().collect());
            }
            Tok::Ident(_) | Tok::Comma => {}
            t => {
                return Err(format!(
                    "found '{}', expected: ',', ')' or identifier",
                    t.literal()
                ));
            }
        }
        loop {
            match self.next().into_value() {
                Tok::Ident(v) => {
                    set.insert(v);
                    match self.peek().into_value() {
                        Tok::Comma => continue,
                        Tok::Close => break,
                        t => return Err(format!("found '{}', expected: ',' or ')'", t.literal())),
                    }
                }
                Tok::Comma => {
                    if set.is_empty() {
                        set.insert(String::new());
                    }
                    match self.peek().into_value() {
                        Tok::Close => {
                            set.insert(String::new());
                            break;
                        }
                        Tok::Comma => {
                            set.insert(String::new());
                        }
                        _ => {}
                    }
                }
                t => {
                    return Err(format!(
                        "found '{}', expected: ',', or identifier",
                        t.literal()
                    ));
                }
            }
        }
        // The closing parenthesis.
        match self.next() {
            Tok::Close => Ok(set.into_iter().collect()),
            t => Err(format!("found '{}', expected: ')'", t.literal())),
        }
    }
}

impl LabelSelector {
    /// apimachinery's `labels.Parse`.
    pub fn parse(s: &str) -> Result<LabelSelector, String> {
        let mut p = Parser {
            toks: lex(s),
            pos: 0,
        };
        let mut reqs = Vec::new();
        loop {
            match p.peek().into_value() {
                Tok::Ident(_) | Tok::Bang => {
                    let r = p
                        .requirement()
                        .map_err(|e| format!("unable to parse requirement: {e}"))?;
                    reqs.push(r);
                    match p.next().into_value() {
                        Tok::End => return Ok(LabelSelector(reqs)),
                        Tok::Comma => match p.peek().into_value() {
                            Tok::Ident(_) | Tok::Bang => {}
                            t => {
                                return Err(format!(
                                    "found '{}', expected: identifier after ','",
                                    t.literal()
                                ));
                            }
                        },
                        t => {
                            return Err(format!(
                                "found '{}', expected: ',' or 'end of string'",
                                t.literal()
                            ));
                        }
                    }
                }
                Tok::End => return Ok(LabelSelector(reqs)),
                t => {
                    return Err(format!(
                        "found '{}', expected: !, identifier, or 'end of string'",
                        t.literal()
                    ));
                }
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn matches(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        let get = |k: &str| labels.and_then(|l| l.get(k)).map(String::as_str);
        self.0.iter().all(|r| match r {
            LabelReq::Eq(k, v) => get(k) == Some(v.as_str()),
            LabelReq::NotEq(k, v) => get(k) != Some(v.as_str()),
            LabelReq::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            LabelReq::NotIn(k, vs) => get(k).is_none_or(|x| !vs.iter().any(|v| v == x)),
            LabelReq::Exists(k) => get(k).is_some(),
            LabelReq::NotExists(k) => get(k).is_none(),
            LabelReq::Gt(k, n) => get(k)
                .and_then(|x| x.parse::<i64>().ok())
                .is_some_and(|x| x > *n),
            LabelReq::Lt(k, n) => get(k)
                .and_then(|x| x.parse::<i64>().ok())
                .is_some_and(|x| x < *n),
        })
    }
}

/// One term of a field selector: `field=value`, `field==value` or `field!=value`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldReq {
    pub field: String,
    pub value: String,
    pub negated: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector(pub Vec<FieldReq>);

/// Splits on commas not escaped with a backslash.
fn split_terms(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            cur.push('\\');
            cur.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    if escaped {
        cur.push('\\');
    }
    out.push(cur);
    out
}

/// fields.UnescapeValue: `\\`, `\,` and `\=` only.
fn unescape(v: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            if c == '=' || c == ',' {
                return Err(format!(
                    "invalid field selector: unescaped character {c:?} in {v:?}"
                ));
            }
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(e @ ('\\' | ',' | '=')) => out.push(e),
            Some(e) => {
                return Err(format!(
                    "invalid field selector: invalid escape sequence '\\{e}' in {v:?}"
                ));
            }
            None => {
                return Err(format!(
                    "invalid field selector: unterminated escape sequence in {v:?}"
                ));
            }
        }
    }
    Ok(out)
}

impl FieldSelector {
    /// apimachinery's `fields.ParseSelector`.
    pub fn parse(s: &str) -> Result<FieldSelector, String> {
        let mut reqs = Vec::new();
        if s.trim().is_empty() {
            return Ok(FieldSelector(reqs));
        }
        for term in split_terms(s) {
            if term.is_empty() {
                continue;
            }
            let found = ["!=", "==", "="]
                .iter()
                .filter_map(|op| term.find(op).map(|i| (i, *op)))
                .min_by_key(|(i, op)| (*i, usize::MAX - op.len()));
            let Some((i, op)) = found else {
                return Err(format!(
                    "invalid selector: '{s}'; can't understand '{term}'"
                ));
            };
            let value = unescape(&term[i + op.len()..])?;
            reqs.push(FieldReq {
                field: term[..i].to_string(),
                value,
                negated: op == "!=",
            });
        }
        Ok(FieldSelector(reqs))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Refuses a field the resource does not select on, with kube-apiserver's words.
    pub fn check(&self, supported: &[&str]) -> Result<(), String> {
        match self
            .0
            .iter()
            .find(|r| !supported.contains(&r.field.as_str()))
        {
            Some(r) => Err(format!("field label not supported: {}", r.field)),
            None => Ok(()),
        }
    }

    /// `get` gives an object's field by name ("" for an unset one).
    pub fn matches(&self, get: impl Fn(&str) -> String) -> bool {
        self.0
            .iter()
            .all(|r| (get(&r.field) == r.value) != r.negated)
    }
}

/// The fields kube-apiserver selects pods on (pkg/registry/core/pod and the v1 conversion).
pub const POD_FIELDS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.podIPs",
    "status.nominatedNodeName",
];

/// A pod's selectable field, as kube-apiserver's `ToSelectableFields` gives it.
pub fn pod_field(p: &k8s_openapi::api::core::v1::Pod, field: &str) -> String {
    let spec = p.spec.as_ref();
    let status = p.status.as_ref();
    let s = |v: Option<&String>| v.cloned().unwrap_or_default();
    match field {
        "metadata.name" => s(p.metadata.name.as_ref()),
        "metadata.namespace" => s(p.metadata.namespace.as_ref()),
        "spec.nodeName" => s(spec.and_then(|x| x.node_name.as_ref())),
        "spec.restartPolicy" => s(spec.and_then(|x| x.restart_policy.as_ref())),
        "spec.schedulerName" => s(spec.and_then(|x| x.scheduler_name.as_ref())),
        "spec.serviceAccountName" => s(spec.and_then(|x| x.service_account_name.as_ref())),
        "spec.hostNetwork" => spec
            .and_then(|x| x.host_network)
            .unwrap_or(false)
            .to_string(),
        "status.phase" => s(status.and_then(|x| x.phase.as_ref())),
        "status.podIP" => s(status.and_then(|x| x.pod_ip.as_ref())),
        // Only the first IP is selectable, as in kube-apiserver.
        "status.podIPs" => s(status
            .and_then(|x| x.pod_ips.as_ref())
            .and_then(|ips| ips.first())
            .map(|ip| &ip.ip)),
        "status.nominatedNodeName" => s(status.and_then(|x| x.nominated_node_name.as_ref())),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn label_selectors_parse_every_operator() {
        let s = LabelSelector::parse("app=web,tier==front,env!=prod,x in (a,b),y notin (c),z,!w")
            .unwrap();
        assert_eq!(
            s.0,
            vec![
                LabelReq::Eq("app".into(), "web".into()),
                LabelReq::Eq("tier".into(), "front".into()),
                LabelReq::NotEq("env".into(), "prod".into()),
                LabelReq::In("x".into(), vec!["a".into(), "b".into()]),
                LabelReq::NotIn("y".into(), vec!["c".into()]),
                LabelReq::Exists("z".into()),
                LabelReq::NotExists("w".into()),
            ]
        );
        assert!(LabelSelector::parse("").unwrap().is_empty());
        assert_eq!(
            LabelSelector::parse(" app = web ").unwrap().0,
            vec![LabelReq::Eq("app".into(), "web".into())]
        );
        // `in` is a value in value position; `x=` is an empty value.
        assert_eq!(
            LabelSelector::parse("x in (in,notin),y=").unwrap().0,
            vec![
                LabelReq::In("x".into(), vec!["in".into(), "notin".into()]),
                LabelReq::Eq("y".into(), "".into()),
            ]
        );
        assert_eq!(
            LabelSelector::parse("example.com/app=web,n>3").unwrap().0,
            vec![
                LabelReq::Eq("example.com/app".into(), "web".into()),
                LabelReq::Gt("n".into(), 3),
            ]
        );
    }

    #[test]
    fn bad_label_selectors_say_what_apimachinery_says() {
        let e = |s: &str| LabelSelector::parse(s).unwrap_err();
        assert_eq!(
            e("app in"),
            "unable to parse requirement: found '' expected: '('"
        );
        assert_eq!(e("app=web,"), "found '', expected: identifier after ','");
        assert_eq!(
            e("app=web x"),
            "found 'x', expected: ',' or 'end of string'"
        );
        assert_eq!(
            e("=web"),
            "found '=', expected: !, identifier, or 'end of string'"
        );
        assert_eq!(
            e("app in (a b)"),
            "unable to parse requirement: found 'b', expected: ',' or ')'"
        );
        assert_eq!(
            e("a b=c"),
            "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"
        );
        assert!(
            e("-bad=x").starts_with("unable to parse requirement: <nil>: Invalid value: \"-bad\": name part must consist of"),
            "{}",
            e("-bad=x")
        );
        assert!(
            e("app=-x").starts_with(
                "unable to parse requirement: [app]: Invalid value: \"-x\": a valid label"
            ),
            "{}",
            e("app=-x")
        );
        assert_eq!(
            e("n>x"),
            "unable to parse requirement: <nil>: Invalid value: \"x\": for 'Gt', 'Lt' operators, the value must be an integer"
        );
        assert_eq!(
            e("a=(b"),
            "unable to parse requirement: found '(', expected: identifier"
        );
    }

    #[test]
    fn label_selectors_match_as_kube_does() {
        let web = labels(&[("app", "web"), ("tier", "front")]);
        let m = |s: &str, l: Option<&BTreeMap<String, String>>| {
            LabelSelector::parse(s).unwrap().matches(l)
        };
        assert!(m("app=web", Some(&web)));
        assert!(!m("app=db", Some(&web)));
        assert!(m("app!=db", Some(&web)));
        assert!(m("app!=db", None), "!= matches a missing label");
        assert!(m("app in (db,web)", Some(&web)));
        assert!(!m("app notin (db,web)", Some(&web)));
        assert!(
            m("env notin (prod)", Some(&web)),
            "notin matches a missing label"
        );
        assert!(m("tier", Some(&web)));
        assert!(!m("!tier", Some(&web)));
        assert!(m("!env", None));
        assert!(m("", None));
        assert!(!m("app=web,env", Some(&web)));
    }

    #[test]
    fn field_selectors_parse_match_and_refuse_unknown_fields() {
        let f = FieldSelector::parse("status.phase=Running,spec.nodeName!=node-b").unwrap();
        assert_eq!(f.0.len(), 2);
        assert!(f.0[1].negated);
        assert!(f.check(POD_FIELDS).is_ok());
        let get = |phase: &'static str, node: &'static str| {
            move |k: &str| match k {
                "status.phase" => phase.to_string(),
                "spec.nodeName" => node.to_string(),
                _ => String::new(),
            }
        };
        assert!(f.matches(get("Running", "node-a")));
        assert!(!f.matches(get("Running", "node-b")));
        assert!(!f.matches(get("Pending", "node-a")));
        let f = FieldSelector::parse("metadata.name==a\\,b").unwrap();
        assert_eq!(f.0[0].value, "a,b");
        assert_eq!(
            FieldSelector::parse("spec.foo=x")
                .unwrap()
                .check(POD_FIELDS),
            Err("field label not supported: spec.foo".to_string())
        );
        assert_eq!(
            FieldSelector::parse("status.phase").unwrap_err(),
            "invalid selector: 'status.phase'; can't understand 'status.phase'"
        );
        assert!(FieldSelector::parse("").unwrap().is_empty());
    }
}
