//! One spelling per network request, before any policy sees it: what a policy matches must be
//! what will be contacted. Hosts are lowercased and lose a trailing dot; IP addresses take their
//! canonical form (an IPv4-mapped IPv6 address becomes IPv4); methods are uppercased and
//! protocols lowercased. Anything that cannot be given one spelling is refused, with a message
//! that says what to send instead: numeric hosts that are not dotted quads (`2852039166`,
//! `0xa9fea9fe`, `0251.0.0.1`), credentials, ports or paths in a host, a `?` or `#` in a path,
//! raw spaces, control or non-ASCII characters.
//!
//! The socket (`wire`) and the interceptor API (`intercept`) both run every network action
//! through [`action`].

use crate::action::{Action, Connect, Header, HttpRequest, Upgrade};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Most headers an `http.request` may carry: interceptors select the ones policies need.
pub(crate) const MAX_HEADERS: usize = 64;

/// The one spelling of `action`; process starts and tool calls pass unchanged.
pub(crate) fn action(action: Action) -> Result<Action, String> {
    fields(&action)?;
    Ok(match action {
        Action::HttpRequest(h) => Action::HttpRequest(http_request(h)?),
        Action::Connect(c) => Action::Connect(connect(c)?),
        Action::Upgrade(u) => Action::Upgrade(upgrade(u)?),
        other @ (Action::LocalExec(_) | Action::ToolCall(_)) => other,
    })
}

/// Refuse characters no field may carry. A NUL ends a C string, so a launcher and a policy
/// would read different requests (`["push\0--dry-run"]` runs as `push`), and a NUL moved across
/// an argument boundary would keep the fingerprint. Names and ids (executable, tool, session,
/// sandbox, agent, project, profile, hosts) take no control character at all; arguments, tool
/// input and headers keep tab, newline and CR, since multi-line commands are real and the
/// policies judge them.
pub(crate) fn fields(action: &Action) -> Result<(), String> {
    let named = |what: &str, value: &str| no_control(what, value);
    let text = |what: &str, value: &str| no_nul(what, value);
    let ids = |session: &str, sandbox: &str, agent: Option<&str>| {
        named("session_id", session)?;
        named("sandbox_id", sandbox)?;
        agent.map_or(Ok(()), |a| named("agent_id", a))
    };
    match action {
        Action::LocalExec(e) => {
            named("executable", &e.executable)?;
            e.args.iter().try_for_each(|a| text("args", a))?;
            named("profile", &e.profile)?;
            named("hitl_mode", &e.hitl_mode)?;
            ids(&e.session_id, &e.sandbox_id, e.agent_id.as_deref())
        }
        Action::ToolCall(t) => {
            named("tool", &t.tool)?;
            text("arg", &t.arg)?;
            t.project_id
                .as_deref()
                .map_or(Ok(()), |p| named("project", p))?;
            t.project_root
                .as_deref()
                .map_or(Ok(()), |p| named("project_root", p))?;
            t.cwd.as_deref().map_or(Ok(()), |p| named("cwd", p))?;
            ids(&t.session_id, &t.sandbox_id, t.agent_id.as_deref())
        }
        Action::HttpRequest(h) => {
            for (what, value) in [
                ("method", h.method.as_str()),
                ("scheme", &h.scheme),
                ("host", &h.host),
            ] {
                named(what, value)?;
            }
            text("path", &h.path)?;
            h.query.as_deref().map_or(Ok(()), |q| text("query", q))?;
            for header in &h.headers {
                named("header name", &header.name)?;
                text("header value", &header.value)?;
            }
            ids(&h.session_id, &h.sandbox_id, h.agent_id.as_deref())
        }
        Action::Connect(c) => {
            named("host", &c.host)?;
            ids(&c.session_id, &c.sandbox_id, c.agent_id.as_deref())
        }
        Action::Upgrade(u) => {
            named("host", &u.host)?;
            text("path", &u.path)?;
            named("protocol", &u.protocol)?;
            ids(&u.session_id, &u.sandbox_id, u.agent_id.as_deref())
        }
    }
}

/// A name or id: no control character (C0, DEL or C1) at all.
pub(crate) fn no_control(what: &str, value: &str) -> Result<(), String> {
    match value.chars().find(|c| c.is_control()) {
        Some(c) => Err(format!(
            "`{what}` contains the control character {c:?}; names and ids take none"
        )),
        None => Ok(()),
    }
}

/// Free text: anything but NUL.
fn no_nul(what: &str, value: &str) -> Result<(), String> {
    if value.contains('\0') {
        return Err(format!(
            "`{what}` contains a NUL character, which no request may carry"
        ));
    }
    Ok(())
}

fn http_request(h: HttpRequest) -> Result<HttpRequest, String> {
    let scheme = h.scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(format!(
            "`scheme` is `{}`; it must be `http` or `https`",
            h.scheme
        ));
    }
    if h.headers.len() > MAX_HEADERS {
        return Err(format!(
            "{} headers; select at most {MAX_HEADERS}",
            h.headers.len()
        ));
    }
    let mut headers = Vec::with_capacity(h.headers.len());
    for Header { name, value } in h.headers {
        if !is_token(&name) {
            return Err(format!("header name `{name}` is not an HTTP token"));
        }
        if value.chars().any(|c| c.is_control() && c != '\t') {
            return Err(format!("header `{name}` has a control character"));
        }
        headers.push(Header {
            name: name.to_ascii_lowercase(),
            value,
        });
    }
    if h.path.contains(['?', '#']) {
        return Err(format!(
            "`path` `{}` contains `?` or `#`; send the query in `query`, and no fragment",
            h.path
        ));
    }
    let query = match h.query {
        Some(q) => {
            let q = q.strip_prefix('?').unwrap_or(&q).to_owned();
            uri_part("query", &q)?;
            if q.contains('#') {
                return Err("`query` contains `#`; send no fragment".into());
            }
            Some(q)
        }
        None => None,
    };
    Ok(HttpRequest {
        method: method(&h.method)?,
        scheme,
        host: host(&h.host)?,
        port: port(h.port)?,
        path: path(&h.path)?,
        query,
        headers,
        ..h
    })
}

fn connect(c: Connect) -> Result<Connect, String> {
    Ok(Connect {
        host: host(&c.host)?,
        port: port(c.port)?,
        ..c
    })
}

fn upgrade(u: Upgrade) -> Result<Upgrade, String> {
    let protocol = u.protocol.to_ascii_lowercase();
    if protocol.is_empty() || !protocol.split('/').all(is_token) {
        return Err(format!(
            "`protocol` `{}` is not an HTTP upgrade protocol (for example `websocket`)",
            u.protocol
        ));
    }
    // An upgrade's path is its request target, query included; a fragment is never sent.
    if u.path.contains('#') {
        return Err(format!(
            "`path` `{}` contains `#`; send no fragment",
            u.path
        ));
    }
    Ok(Upgrade {
        host: host(&u.host)?,
        path: path(&u.path)?,
        protocol,
        ..u
    })
}

fn port(port: u16) -> Result<u16, String> {
    if port == 0 {
        return Err("`port` must be between 1 and 65535".into());
    }
    Ok(port)
}

/// An HTTP token (RFC 9110 `tchar`s), as methods, header names and protocols are.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// An HTTP method, uppercased.
fn method(m: &str) -> Result<String, String> {
    if m.len() > 32 || !is_token(m) {
        return Err(format!("`method` `{m}` is not an HTTP method"));
    }
    Ok(m.to_ascii_uppercase())
}

/// A host name or IP address in its one spelling.
pub(crate) fn host(h: &str) -> Result<String, String> {
    let refuse = |why: &str| {
        Err(format!(
            "`host` `{h}` is not a host name or IP address ({why}; give the port in `port`, and \
             no scheme, path or credentials)"
        ))
    };
    let lower = h.to_ascii_lowercase();
    if let Some(inner) = lower.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        let Ok(v6) = inner.parse::<Ipv6Addr>() else {
            return refuse("not an IPv6 address in brackets");
        };
        // An IPv4-mapped address reaches the IPv4 host: spell it so, so rules on it match.
        return Ok(match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => format!("[{v6}]"),
        });
    }
    let name = lower.strip_suffix('.').unwrap_or(&lower);
    if name.is_empty() || name.len() > 253 {
        return refuse("empty or longer than 253 characters");
    }
    let labels: Vec<&str> = name.split('.').collect();
    let valid = labels.iter().all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    if !valid {
        return refuse(
            "a label is empty, too long, or has a character other than a-z, 0-9, - and _",
        );
    }
    // A name whose last label is numeric is an address to the system resolver, which reads
    // `2852039166`, `0xa9fea9fe`, `169.254.43518` and `0251.0.0.1` all as 169.254.169.254.
    // Only the dotted quad is accepted, so rules about an address see it spelled one way.
    let last = labels.last().copied().unwrap_or_default();
    let numeric = last.bytes().all(|b| b.is_ascii_digit())
        || (last.starts_with("0x") && last[2..].bytes().all(|b| b.is_ascii_hexdigit()));
    if numeric {
        return match name.parse::<Ipv4Addr>() {
            Ok(v4) if v4.to_string() == name => Ok(name.to_owned()),
            _ => refuse("a numeric host must be a dotted-quad IPv4 address without leading zeros"),
        };
    }
    Ok(name.to_owned())
}

/// A request path: must start with `/`; kept as sent (policies normalize it themselves).
fn path(p: &str) -> Result<String, String> {
    if !p.starts_with('/') {
        return Err(format!("`path` `{p}` must start with `/`"));
    }
    uri_part("path", p)?;
    Ok(p.to_owned())
}

/// A path or query must be what an HTTP request line can carry: printable ASCII, no spaces.
fn uri_part(what: &str, s: &str) -> Result<(), String> {
    match s.chars().find(|c| !c.is_ascii_graphic()) {
        Some(c) => Err(format!(
            "`{what}` contains {c:?}; percent-encode spaces, control and non-ASCII characters"
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (as sent, its one spelling or `None` for refused)
    const HOSTS: &[(&str, Option<&str>)] = &[
        ("API.GitHub.com.", Some("api.github.com")),
        ("api.github.com", Some("api.github.com")),
        ("under_score.example", Some("under_score.example")),
        ("169.254.169.254", Some("169.254.169.254")),
        ("2852039166", None),
        ("0xa9fea9fe", None),
        ("169.254.43518", None),
        ("0251.0376.0251.0376", None),
        ("169.254.169.0254", None),
        ("1.2.3.4.5", None),
        ("[::1]", Some("[::1]")),
        ("[0:0:0:0:0:0:0:1]", Some("[::1]")),
        ("[::ffff:169.254.169.254]", Some("169.254.169.254")),
        ("[::FFFF:A9FE:A9FE]", Some("169.254.169.254")),
        ("[1.2.3.4]", None),
        ("[]", None),
        ("[::1", None),
        ("user:pw@evil.com", None),
        ("evil.com:443", None),
        ("evil.com/path", None),
        ("a..b", None),
        ("", None),
        (".", None),
        ("ex ample.com", None),
        ("exämple.com", None),
        ("%65vil.com", None),
    ];

    #[test]
    fn hosts_have_one_spelling() {
        for (sent, want) in HOSTS {
            let got = host(sent).ok();
            assert_eq!(got.as_deref(), *want, "{sent}");
        }
    }

    fn http(path: &str, query: Option<&str>) -> Action {
        Action::HttpRequest(HttpRequest {
            method: "get".into(),
            scheme: "HTTPS".into(),
            host: "Example.COM".into(),
            port: 443,
            path: path.into(),
            query: query.map(Into::into),
            headers: vec![Header {
                name: "X-Thing".into(),
                value: "v".into(),
            }],
            body_size: None,
            session_id: "s".into(),
            sandbox_id: "b".into(),
            agent_id: None,
        })
    }

    #[test]
    fn a_request_is_normalized_or_refused() {
        let Ok(Action::HttpRequest(h)) = action(http("/a", Some("?x=1"))) else {
            panic!("a plain request normalizes")
        };
        assert_eq!(
            (
                h.method.as_str(),
                h.scheme.as_str(),
                h.host.as_str(),
                h.query.as_deref()
            ),
            ("GET", "https", "example.com", Some("x=1"))
        );
        assert_eq!(h.headers[0].name, "x-thing");
        for (path, query) in [
            ("/admin?/../public", None),
            ("/admin#/../public", None),
            ("relative", None),
            ("/a b", None),
            ("/a", Some("x=1#frag")),
        ] {
            assert!(action(http(path, query)).is_err(), "{path} {query:?}");
        }
    }
}
