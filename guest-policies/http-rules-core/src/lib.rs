//! The http-rules policy's logic, as a plain library: the `http-rules` guest
//! (`builtin:http-rules`) wraps it, and its tests run natively.
//!
//! Rules allow, ask about or deny HTTP requests, CONNECT tunnels and protocol upgrades by
//! method, scheme, host, port, path and protocol. Among the rules that match, `deny` beats
//! `ask` beats `allow`; a path that two servers could read differently is never allowed.
//! `docs/http-rules.md` describes the format and the semantics.
//!
//! ```
//! use http_rules_core::{HttpRequest, Policy, Request, Verdict};
//!
//! let policy = Policy::from_json(r#"{
//!     "requests": [
//!         {"id": "gh-read", "verdict": "allow", "methods": ["GET"], "hosts": ["api.github.com"],
//!          "paths": ["/repos/**"]},
//!         {"id": "no-admin", "verdict": "deny", "paths": ["/admin/**"]}
//!     ]
//! }"#).unwrap();
//! let get = |path| Request::Http(HttpRequest {
//!     method: "GET", scheme: "https", host: "api.github.com", port: 443, path,
//! });
//! let e = policy.evaluate(&get("/repos/a/b"));
//! assert_eq!((e.verdict, e.rule.as_str()), (Verdict::Allow, "gh-read"));
//! let e = policy.evaluate(&get("/repos/../admin/users"));
//! assert_eq!((e.verdict, e.rule.as_str()), (Verdict::Deny, "no-admin"));
//! let e = policy.evaluate(&get("/repos/a%2Fb"));
//! assert_eq!((e.verdict, e.rule.as_str()), (Verdict::Deny, "ambiguous-path"));
//! ```

mod host;
mod path;

pub use host::HostPattern;
pub use path::{Ambiguity, How, NormalizedPath, PathGlob, Reading, normalize};

use host::canonical_host;
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashSet;
use std::fmt::{self, Write as _};

/// The rule id of a decision no rule made (the configured `default`).
pub const DEFAULT_RULE: &str = "default";
/// The rule id of the `deny` for an ambiguous path that no `deny` or `ask` rule matched.
pub const AMBIGUOUS_PATH_RULE: &str = "ambiguous-path";

/// What a rule (or the default) concludes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Let it through.
    Allow,
    /// A human must approve it.
    Ask,
    /// Do not let it through.
    Deny,
}

impl Verdict {
    /// Precedence among matching rules: deny > ask > allow.
    fn rank(self) -> u8 {
        match self {
            Verdict::Allow => 0,
            Verdict::Ask => 1,
            Verdict::Deny => 2,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Allow => "allow",
            Verdict::Ask => "ask",
            Verdict::Deny => "deny",
        })
    }
}

/// What an action does to the world (the WIT `effect-class`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Reads or lists; changes nothing.
    Read,
    /// Creates or changes state that can be changed back.
    Write,
    /// Runs code.
    Execute,
    /// Opens a channel to another system.
    Network,
    /// Deletes or changes state that cannot be changed back.
    Destructive,
}

/// How much harm the action could do (the WIT `risk-class`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Risk {
    /// Little.
    Low,
    /// Some.
    Medium,
    /// Much.
    High,
    /// The worst.
    Critical,
}

/// The policy's configuration (its `config()` JSON), as written. Rules stay JSON values here so
/// that [`Policy::new`] can report a bad rule by its index and id.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The verdict when no rule matches; `deny` when absent.
    #[serde(default)]
    pub default: Option<Verdict>,
    /// Rules for `http.request` actions ([`RequestRule`]).
    #[serde(default)]
    pub requests: Vec<Value>,
    /// Rules for `connect` actions ([`ConnectRule`]).
    #[serde(default)]
    pub connect: Vec<Value>,
    /// Rules for `upgrade` actions ([`UpgradeRule`]).
    #[serde(default)]
    pub upgrade: Vec<Value>,
}

/// A rule in `requests`, as written. Every matcher is optional (absent matches anything) and,
/// when present, a non-empty list of which any entry may match.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestRule {
    /// The rule's id; `requests[N]` when absent.
    pub id: Option<String>,
    /// What the rule concludes.
    pub verdict: Verdict,
    /// Uppercase method names, or `*`.
    pub methods: Option<Vec<String>>,
    /// `http` and/or `https`.
    pub schemes: Option<Vec<String>>,
    /// Host patterns ([`HostPattern`]).
    pub hosts: Option<Vec<String>>,
    /// Ports, 1 to 65535.
    pub ports: Option<Vec<u64>>,
    /// Path globs ([`PathGlob`]), matched against the normalized path.
    pub paths: Option<Vec<String>>,
    /// The effect to report; derived from the method when absent.
    pub effect: Option<Effect>,
    /// The risk to report; left to the host when absent.
    pub risk: Option<Risk>,
    /// For an `ask` rule: how long a human has to approve.
    pub approval_timeout_ms: Option<u64>,
    /// Text appended to the decision's reason.
    pub reason: Option<String>,
}

/// A rule in `connect`, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectRule {
    /// The rule's id; `connect[N]` when absent.
    pub id: Option<String>,
    /// What the rule concludes.
    pub verdict: Verdict,
    /// Host patterns ([`HostPattern`]).
    pub hosts: Option<Vec<String>>,
    /// Ports, 1 to 65535.
    pub ports: Option<Vec<u64>>,
    /// The effect to report; `network` when absent.
    pub effect: Option<Effect>,
    /// The risk to report; left to the host when absent.
    pub risk: Option<Risk>,
    /// For an `ask` rule: how long a human has to approve.
    pub approval_timeout_ms: Option<u64>,
    /// Text appended to the decision's reason.
    pub reason: Option<String>,
}

/// A rule in `upgrade`, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpgradeRule {
    /// The rule's id; `upgrade[N]` when absent.
    pub id: Option<String>,
    /// What the rule concludes.
    pub verdict: Verdict,
    /// Host patterns ([`HostPattern`]).
    pub hosts: Option<Vec<String>>,
    /// Path globs ([`PathGlob`]), matched against the normalized path.
    pub paths: Option<Vec<String>>,
    /// Upgrade protocols (the `Upgrade` header's token), compared case-insensitively.
    pub protocols: Option<Vec<String>>,
    /// The effect to report; `network` when absent.
    pub effect: Option<Effect>,
    /// The risk to report; left to the host when absent.
    pub risk: Option<Risk>,
    /// For an `ask` rule: how long a human has to approve.
    pub approval_timeout_ms: Option<u64>,
    /// Text appended to the decision's reason.
    pub reason: Option<String>,
}

/// A rule, checked and compiled; matchers that are `None` match anything.
#[derive(Debug, Clone)]
struct Rule {
    id: String,
    verdict: Verdict,
    /// `None` also when the list holds `*`.
    methods: Option<Vec<String>>,
    schemes: Option<Vec<String>>,
    hosts: Option<Vec<HostPattern>>,
    ports: Option<Vec<u16>>,
    paths: Option<Vec<PathGlob>>,
    protocols: Option<Vec<String>>,
    effect: Option<Effect>,
    risk: Option<Risk>,
    approval_timeout_ms: Option<u64>,
    reason: Option<String>,
}

/// An `http.request` to decide. The host has uppercased the method, lowercased the host and
/// scheme, and defaulted the port; the path is as sent (percent-encoding not decoded), without
/// the query.
#[derive(Debug, Clone, Copy)]
pub struct HttpRequest<'a> {
    /// For example `GET`.
    pub method: &'a str,
    /// `http` or `https`.
    pub scheme: &'a str,
    /// A name or an IP address.
    pub host: &'a str,
    /// The port.
    pub port: u16,
    /// The path as sent.
    pub path: &'a str,
}

/// A CONNECT tunnel to decide.
#[derive(Debug, Clone, Copy)]
pub struct Connect<'a> {
    /// A name or an IP address.
    pub host: &'a str,
    /// The port.
    pub port: u16,
}

/// A protocol upgrade (for example to a WebSocket) to decide.
#[derive(Debug, Clone, Copy)]
pub struct Upgrade<'a> {
    /// A name or an IP address.
    pub host: &'a str,
    /// The path as sent.
    pub path: &'a str,
    /// The `Upgrade` header's protocol, for example `websocket`.
    pub protocol: &'a str,
}

/// Something the policy decides.
#[derive(Debug, Clone, Copy)]
pub enum Request<'a> {
    /// An HTTP request.
    Http(HttpRequest<'a>),
    /// A CONNECT tunnel.
    Connect(Connect<'a>),
    /// A protocol upgrade.
    Upgrade(Upgrade<'a>),
}

/// The policy's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// The verdict.
    pub verdict: Verdict,
    /// The id of the deciding rule; [`DEFAULT_RULE`] or [`AMBIGUOUS_PATH_RULE`] when no rule
    /// decided.
    pub rule: String,
    /// Why: the request, the rule's id and verdict, and the rule's own reason if it has one.
    pub reason: String,
    /// What the action does: the rule's `effect`, or one derived from the action.
    pub effect: Effect,
    /// The rule's `risk`, if it sets one.
    pub risk: Option<Risk>,
    /// For an `ask`: the rule's `approval_timeout_ms`, if it sets one.
    pub approval_timeout_ms: Option<u64>,
}

/// A checked rule set.
#[derive(Debug, Clone)]
pub struct Policy {
    default: Verdict,
    requests: Vec<Rule>,
    connect: Vec<Rule>,
    upgrade: Vec<Rule>,
}

/// Which list a rule is in (for default ids and error messages).
#[derive(Clone, Copy)]
enum Kind {
    Requests,
    Connect,
    Upgrade,
}

impl Kind {
    fn list(self) -> &'static str {
        match self {
            Kind::Requests => "requests",
            Kind::Connect => "connect",
            Kind::Upgrade => "upgrade",
        }
    }
}

/// A rule's fields common to every kind, before checking.
struct Common {
    id: Option<String>,
    verdict: Verdict,
    hosts: Option<Vec<String>>,
    effect: Option<Effect>,
    risk: Option<Risk>,
    approval_timeout_ms: Option<u64>,
    reason: Option<String>,
}

/// The kind-specific matchers, before checking.
#[derive(Default)]
struct Specific {
    methods: Option<Vec<String>>,
    schemes: Option<Vec<String>>,
    ports: Option<Vec<u64>>,
    paths: Option<Vec<String>>,
    protocols: Option<Vec<String>>,
}

fn non_empty<T>(field: &str, what: &str, list: Option<Vec<T>>) -> Result<Option<Vec<T>>, String> {
    match list {
        Some(l) if l.is_empty() => Err(format!(
            "`{field}` is empty; leave it out to match any {what}"
        )),
        other => Ok(other),
    }
}

fn check_list<T, U>(
    field: &str,
    what: &str,
    list: Option<Vec<T>>,
    check: impl Fn(T) -> Result<U, String>,
) -> Result<Option<Vec<U>>, String> {
    non_empty(field, what, list)?
        .map(|l| l.into_iter().map(check).collect())
        .transpose()
}

fn check_method(m: String) -> Result<String, String> {
    if m == "*" || (!m.is_empty() && m.chars().all(|c| c.is_ascii_uppercase() || c == '-')) {
        Ok(m)
    } else if !m.is_empty() && m.chars().all(|c| c.is_ascii_alphabetic() || c == '-') {
        Err(format!(
            "method `{m}` must be uppercase (`{}`)",
            m.to_ascii_uppercase()
        ))
    } else {
        Err(format!(
            "method `{}` is not a method name (uppercase letters and `-`) or `*`",
            m.escape_debug()
        ))
    }
}

fn check_scheme(s: String) -> Result<String, String> {
    let lower = s.to_ascii_lowercase();
    if lower == "http" || lower == "https" {
        Ok(lower)
    } else {
        Err(format!(
            "scheme `{}` is not `http` or `https`",
            s.escape_debug()
        ))
    }
}

fn check_port(p: u64) -> Result<u16, String> {
    u16::try_from(p)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("port {p} is not between 1 and 65535"))
}

fn check_protocol(p: String) -> Result<String, String> {
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~/".contains(c);
    if !p.is_empty() && p.chars().all(token) {
        Ok(p.to_ascii_lowercase())
    } else {
        Err(format!(
            "protocol `{}` is not an upgrade protocol token (for example `websocket`)",
            p.escape_debug()
        ))
    }
}

fn compile(kind: Kind, index: usize, common: Common, specific: Specific) -> Result<Rule, String> {
    let id = match common.id {
        Some(id) => {
            if id.is_empty() {
                return Err("`id` is empty; leave it out for the default id".into());
            }
            if id.chars().any(char::is_control) {
                return Err(format!(
                    "`id` `{}` contains a control character",
                    id.escape_debug()
                ));
            }
            if id == DEFAULT_RULE || id == AMBIGUOUS_PATH_RULE {
                return Err(format!(
                    "`id` `{id}` is reserved for decisions no rule makes"
                ));
            }
            id
        }
        None => format!("{}[{index}]", kind.list()),
    };
    match (common.approval_timeout_ms, common.verdict) {
        (Some(0), _) => return Err("`approval_timeout_ms` must be more than 0".into()),
        (Some(_), Verdict::Allow | Verdict::Deny) => {
            return Err(format!(
                "`approval_timeout_ms` applies to `ask` rules only, and this rule's verdict is `{}`",
                common.verdict
            ));
        }
        _ => {}
    }
    let methods = check_list("methods", "method", specific.methods, check_method)?
        .filter(|m| !m.iter().any(|m| m == "*"));
    Ok(Rule {
        id,
        verdict: common.verdict,
        methods,
        schemes: check_list("schemes", "scheme", specific.schemes, check_scheme)?,
        hosts: check_list("hosts", "host", common.hosts, |h| HostPattern::parse(&h))?,
        ports: check_list("ports", "port", specific.ports, check_port)?,
        paths: check_list("paths", "path", specific.paths, |p| PathGlob::parse(&p))?,
        protocols: check_list("protocols", "protocol", specific.protocols, check_protocol)?,
        effect: common.effect,
        risk: common.risk,
        approval_timeout_ms: common.approval_timeout_ms,
        reason: common.reason,
    })
}

/// Parse and check one rule of `kind`; errors name the rule.
fn parse_rule(kind: Kind, index: usize, value: &Value) -> Result<Rule, String> {
    let label = match value.get("id").and_then(Value::as_str) {
        Some(id) => format!("{}[{index}] (`{}`)", kind.list(), id.escape_debug()),
        None => format!("{}[{index}]", kind.list()),
    };
    if !value.is_object() {
        return Err(format!("{label}: a rule must be a JSON object"));
    }
    let parsed = match kind {
        Kind::Requests => serde_json::from_value::<RequestRule>(value.clone()).map(|r| {
            (
                Common {
                    id: r.id,
                    verdict: r.verdict,
                    hosts: r.hosts,
                    effect: r.effect,
                    risk: r.risk,
                    approval_timeout_ms: r.approval_timeout_ms,
                    reason: r.reason,
                },
                Specific {
                    methods: r.methods,
                    schemes: r.schemes,
                    ports: r.ports,
                    paths: r.paths,
                    protocols: None,
                },
            )
        }),
        Kind::Connect => serde_json::from_value::<ConnectRule>(value.clone()).map(|r| {
            (
                Common {
                    id: r.id,
                    verdict: r.verdict,
                    hosts: r.hosts,
                    effect: r.effect,
                    risk: r.risk,
                    approval_timeout_ms: r.approval_timeout_ms,
                    reason: r.reason,
                },
                Specific {
                    ports: r.ports,
                    ..Specific::default()
                },
            )
        }),
        Kind::Upgrade => serde_json::from_value::<UpgradeRule>(value.clone()).map(|r| {
            (
                Common {
                    id: r.id,
                    verdict: r.verdict,
                    hosts: r.hosts,
                    effect: r.effect,
                    risk: r.risk,
                    approval_timeout_ms: r.approval_timeout_ms,
                    reason: r.reason,
                },
                Specific {
                    paths: r.paths,
                    protocols: r.protocols,
                    ..Specific::default()
                },
            )
        }),
    };
    let (common, specific) = parsed.map_err(|e| format!("{label}: {e}"))?;
    compile(kind, index, common, specific).map_err(|e| format!("{label}: {e}"))
}

/// Show untrusted text in a reason: control and non-ASCII characters escaped.
fn shown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() && !c.is_ascii_control() {
            out.push(c);
        } else {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
    }
    out
}

/// The effect of an HTTP method: reads, deletes, or writes.
fn method_effect(method: &str) -> Effect {
    const READS: [&str; 4] = ["GET", "HEAD", "OPTIONS", "TRACE"];
    if READS.iter().any(|m| m.eq_ignore_ascii_case(method)) {
        Effect::Read
    } else if method.eq_ignore_ascii_case("DELETE") {
        Effect::Destructive
    } else {
        Effect::Write
    }
}

/// What is being decided, prepared once for every rule.
struct Subject<'a> {
    /// How the reason names the request.
    description: String,
    effect: Effect,
    host: String,
    port: Option<u16>,
    method: Option<&'a str>,
    scheme: Option<String>,
    protocol: Option<String>,
    path: Option<NormalizedPath>,
}

impl Subject<'_> {
    fn ambiguity(&self) -> Option<Ambiguity> {
        self.path.as_ref().and_then(|p| p.ambiguity)
    }

    /// Whether the rule's matchers other than `paths` match.
    fn matches_fields(&self, rule: &Rule) -> bool {
        // Cheapest tests first, each returning early: most rules of a large set fail on the
        // method, port or host, and never pay for the path globs.
        let methods = match (&rule.methods, self.method) {
            (None, _) => true,
            (Some(ms), Some(m)) => ms.iter().any(|x| x.eq_ignore_ascii_case(m)),
            (Some(_), None) => false,
        };
        let ports = match (&rule.ports, self.port) {
            (None, _) => true,
            (Some(ps), Some(p)) => ps.contains(&p),
            (Some(_), None) => false,
        };
        if !methods || !ports {
            return false;
        }
        let schemes = match (&rule.schemes, &self.scheme) {
            (None, _) => true,
            (Some(ss), Some(s)) => ss.contains(s),
            (Some(_), None) => false,
        };
        let protocols = match (&rule.protocols, &self.protocol) {
            (None, _) => true,
            (Some(ps), Some(p)) => ps.contains(p),
            (Some(_), None) => false,
        };
        if !schemes || !protocols {
            return false;
        }
        rule.hosts
            .as_ref()
            .is_none_or(|hs| hs.iter().any(|h| h.matches(&self.host)))
    }

    /// For a `deny` or `ask` rule: which reading its paths match (ignoring case, and with a
    /// trailing `/` or without, as routers that are neither strict nor case-sensitive read
    /// them); `Some(None)` for a rule without `paths`.
    fn deny_match(&self, rule: &Rule) -> Option<Option<usize>> {
        match (&rule.paths, &self.path) {
            (None, _) => Some(None),
            (Some(globs), Some(path)) => path
                .readings
                .iter()
                .position(|r| globs.iter().any(|g| loose_match(g, r)))
                .map(Some),
            (Some(_), None) => None,
        }
    }
}

/// A `deny` or `ask` glob against a reading: case-insensitive, either spelling of the
/// pattern's escapes, and a trailing `/` optional.
fn loose_match(glob: &PathGlob, reading: &Reading) -> bool {
    let path = reading.path.as_str();
    glob.matches_loosely(path)
        || path
            .strip_suffix('/')
            .is_some_and(|trimmed| !trimmed.is_empty() && glob.matches_loosely(trimmed))
}

/// Whether an `allow` rule's paths match one reading (exactly, case-sensitive).
fn allow_match(rule: &Rule, reading: &Reading) -> bool {
    rule.paths
        .as_ref()
        .is_none_or(|globs| globs.iter().any(|g| g.matches_reading(reading, false)))
}

impl Policy {
    /// Check a configuration and build the policy; the error names the rule and what is wrong.
    pub fn new(config: Config) -> Result<Self, String> {
        let mut ids = HashSet::new();
        let mut lists = Vec::with_capacity(3);
        for (kind, values) in [
            (Kind::Requests, &config.requests),
            (Kind::Connect, &config.connect),
            (Kind::Upgrade, &config.upgrade),
        ] {
            let mut rules = Vec::with_capacity(values.len());
            for (index, value) in values.iter().enumerate() {
                let rule = parse_rule(kind, index, value)?;
                if !ids.insert(rule.id.clone()) {
                    return Err(format!(
                        "{}[{index}]: the id `{}` is used by another rule; rule ids must be unique",
                        kind.list(),
                        rule.id.escape_debug()
                    ));
                }
                rules.push(rule);
            }
            lists.push(rules);
        }
        let mut lists = lists.into_iter();
        Ok(Self {
            default: config.default.unwrap_or(Verdict::Deny),
            requests: lists.next().unwrap_or_default(),
            connect: lists.next().unwrap_or_default(),
            upgrade: lists.next().unwrap_or_default(),
        })
    }

    /// Parse a JSON configuration and build the policy.
    pub fn from_json(json: &str) -> Result<Self, String> {
        let config: Config = serde_json::from_str(json)
            .map_err(|e| format!("the http-rules configuration is not valid: {e}"))?;
        Self::new(config)
    }

    /// The verdict when no rule matches.
    pub fn default_verdict(&self) -> Verdict {
        self.default
    }

    /// Decide one request.
    pub fn evaluate(&self, request: &Request<'_>) -> Evaluation {
        let (rules, subject) = match request {
            Request::Http(r) => {
                let host = canonical_host(r.host);
                let path = normalize(r.path);
                let default_port = match r.scheme.to_ascii_lowercase().as_str() {
                    "http" => Some(80),
                    "https" => Some(443),
                    _ => None,
                };
                let mut description = format!(
                    "{} {}://{}",
                    shown(r.method),
                    shown(r.scheme),
                    shown_host(&host)
                );
                if default_port != Some(r.port) {
                    let _ = write!(description, ":{}", r.port);
                }
                describe_path(&mut description, r.path, &path);
                (
                    &self.requests,
                    Subject {
                        description,
                        effect: method_effect(r.method),
                        host,
                        port: Some(r.port),
                        method: Some(r.method),
                        scheme: Some(r.scheme.to_ascii_lowercase()),
                        protocol: None,
                        path: Some(path),
                    },
                )
            }
            Request::Connect(c) => {
                let host = canonical_host(c.host);
                (
                    &self.connect,
                    Subject {
                        description: format!("CONNECT {}:{}", shown_host(&host), c.port),
                        effect: Effect::Network,
                        host,
                        port: Some(c.port),
                        method: None,
                        scheme: None,
                        protocol: None,
                        path: None,
                    },
                )
            }
            Request::Upgrade(u) => {
                let host = canonical_host(u.host);
                let path = normalize(u.path);
                let mut description = format!(
                    "upgrade to `{}` at {}",
                    shown(u.protocol),
                    shown_host(&host)
                );
                describe_path(&mut description, u.path, &path);
                (
                    &self.upgrade,
                    Subject {
                        description,
                        effect: Effect::Network,
                        host,
                        port: None,
                        method: None,
                        scheme: None,
                        protocol: Some(u.protocol.to_ascii_lowercase()),
                        path: Some(path),
                    },
                )
            }
        };
        self.decide(rules, &subject)
    }

    fn decide(&self, rules: &[Rule], subject: &Subject<'_>) -> Evaluation {
        // `deny` and `ask` rules: a match on any reading applies, the highest verdict first,
        // then the first listed.
        let mut best: Option<(&Rule, Option<usize>)> = None;
        for rule in rules.iter().filter(|r| r.verdict != Verdict::Allow) {
            if best.is_some_and(|(b, _)| b.verdict.rank() >= rule.verdict.rank()) {
                continue;
            }
            if !subject.matches_fields(rule) {
                continue;
            }
            if let Some(reading) = subject.deny_match(rule) {
                best = Some((rule, reading));
            }
        }
        let ambiguity = subject.ambiguity();
        if let Some((rule, reading)) = best {
            let mut reason = format!(
                "{} matches {} rule `{}`",
                subject.description,
                rule.verdict,
                shown(&rule.id)
            );
            if let (Some(i), Some(path)) = (reading, &subject.path) {
                describe_reading(&mut reason, rule, path, i);
            }
            if let Some(why) = ambiguity {
                let _ = write!(reason, " (the path is ambiguous: {why})");
            }
            return self.by_rule(rule, reason, subject);
        }
        // `allow` rules: every reading must be allowed (by the first allow rule that matches it)
        // and the path must not be ambiguous.
        let mut partial: Option<(&Rule, usize, usize)> = None;
        if ambiguity.is_none() {
            let allows: Vec<&Rule> = rules
                .iter()
                .filter(|r| r.verdict == Verdict::Allow && subject.matches_fields(r))
                .collect();
            match &subject.path {
                None => {
                    if let Some(rule) = allows.first() {
                        let reason = format!(
                            "{} matches allow rule `{}`",
                            subject.description,
                            shown(&rule.id)
                        );
                        return self.by_rule(rule, reason, subject);
                    }
                }
                Some(path) if !allows.is_empty() => {
                    let mut matched: Option<(&Rule, usize)> = None;
                    let mut unmatched: Option<usize> = None;
                    for (i, reading) in path.readings.iter().enumerate() {
                        match allows.iter().find(|r| allow_match(r, reading)) {
                            Some(rule) => {
                                matched.get_or_insert((rule, i));
                            }
                            None => {
                                unmatched.get_or_insert(i);
                            }
                        }
                    }
                    match (matched, unmatched) {
                        // Every reading is allowed (those no rule allows by an `allow`
                        // default); the rule that allows the normal form decides.
                        (Some((rule, 0)), None) | (Some((rule, 0)), Some(_))
                            if unmatched.is_none() || self.default == Verdict::Allow =>
                        {
                            let reason = format!(
                                "{} matches allow rule `{}`",
                                subject.description,
                                shown(&rule.id)
                            );
                            return self.by_rule(rule, reason, subject);
                        }
                        // The normal form is allowed but another reading is not: the
                        // readings disagree. (When the normal form is not allowed, the
                        // default decides as for any path no rule allows.)
                        (Some((rule, 0)), Some(missed)) => partial = Some((rule, 0, missed)),
                        _ => {}
                    }
                }
                Some(_) => {}
            }
        }
        let (verdict, rule, reason) = match (ambiguity, partial) {
            (Some(why), _) => (
                Verdict::Deny,
                AMBIGUOUS_PATH_RULE,
                format!(
                    "{} is denied: the path is ambiguous ({why}), so no allow rule applies to it and no deny or ask rule matched",
                    subject.description
                ),
            ),
            (None, Some((rule, at, missed))) if self.default != Verdict::Allow => {
                let mut reason = format!(
                    "{} is denied: servers read its path differently, and not every reading is allowed:",
                    subject.description
                );
                if let Some(path) = &subject.path {
                    if let Some(r) = path.readings.get(at) {
                        let _ = write!(
                            reason,
                            " `{}` ({}) matches allow rule `{}`, but",
                            elide(&r.path),
                            r.how,
                            shown(&rule.id)
                        );
                    }
                    if let Some(r) = path.readings.get(missed) {
                        let _ = write!(
                            reason,
                            " `{}` ({}) matches no allow rule",
                            elide(&r.path),
                            r.how
                        );
                    }
                }
                (Verdict::Deny, AMBIGUOUS_PATH_RULE, reason)
            }
            _ => (
                self.default,
                DEFAULT_RULE,
                format!(
                    "{} matches no rule; the default is {}",
                    subject.description, self.default
                ),
            ),
        };
        Evaluation {
            verdict,
            rule: rule.to_owned(),
            reason,
            effect: subject.effect,
            risk: None,
            approval_timeout_ms: None,
        }
    }

    /// The decision of a rule, with the rule's own reason appended.
    fn by_rule(&self, rule: &Rule, mut reason: String, subject: &Subject<'_>) -> Evaluation {
        if let Some(text) = &rule.reason {
            let _ = write!(reason, ": {}", shown(text));
        }
        Evaluation {
            verdict: rule.verdict,
            rule: rule.id.clone(),
            reason,
            effect: rule.effect.unwrap_or(subject.effect),
            risk: rule.risk,
            approval_timeout_ms: match rule.verdict {
                Verdict::Ask => rule.approval_timeout_ms,
                Verdict::Allow | Verdict::Deny => None,
            },
        }
    }
}

/// For a `deny` or `ask` rule that matched reading `i`: say which reading, unless it is the
/// normal form matched as written.
fn describe_reading(out: &mut String, rule: &Rule, path: &NormalizedPath, i: usize) {
    let Some(reading) = path.readings.get(i) else {
        return;
    };
    let exact = rule
        .paths
        .as_ref()
        .is_some_and(|gs| gs.iter().any(|g| g.matches_reading(reading, false)));
    if i == 0 && exact {
        return;
    }
    if i == 0 {
        let _ = write!(
            out,
            " ignoring case, as case-insensitive routers such as Express do"
        );
        return;
    }
    let _ = write!(
        out,
        " when read as `{}` ({}",
        elide(&reading.path),
        reading.how
    );
    if !exact {
        out.push_str(", ignoring case");
    }
    out.push(')');
}

/// A host for a reason: IPv6 addresses in brackets.
fn shown_host(host: &str) -> String {
    if host.contains(':') {
        format!("[{}]", shown(host))
    } else {
        shown(host)
    }
}

/// Append the path as sent, and its normal form when that differs; long paths elided.
fn describe_path(out: &mut String, raw: &str, normalized: &NormalizedPath) {
    out.push_str(&elide(&shown(raw)));
    if normalized.path != raw {
        let _ = write!(out, " (normalized to `{}`)", elide(&normalized.path));
    }
}

/// How much of a long path a reason shows: the first [`SHOWN_HEAD`] and the last
/// [`SHOWN_TAIL`] bytes. Reasons are read by people and the host caps their size, so a long
/// path (up to the request line's limit) must not be repeated whole.
const SHOWN_HEAD: usize = 120;
/// See [`SHOWN_HEAD`].
const SHOWN_TAIL: usize = 60;

/// An ASCII text (as [`shown`] or normalization produce), its middle cut when it is long.
fn elide(text: &str) -> String {
    let len = text.len();
    if len <= SHOWN_HEAD + SHOWN_TAIL + 40 || !text.is_ascii() {
        if text.is_ascii() {
            return text.to_owned();
        }
        return elide(&shown(text));
    }
    let head = text.get(..SHOWN_HEAD).unwrap_or_default();
    let tail = text.get(len - SHOWN_TAIL..).unwrap_or_default();
    format!(
        "{head}[...{} bytes cut...]{tail}",
        len - SHOWN_HEAD - SHOWN_TAIL
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(config: Value) -> Policy {
        Policy::from_json(&config.to_string()).unwrap()
    }

    fn error(config: Value) -> String {
        Policy::from_json(&config.to_string()).unwrap_err()
    }

    fn get(p: &Policy, host: &str, path: &str) -> Evaluation {
        p.evaluate(&Request::Http(HttpRequest {
            method: "GET",
            scheme: "https",
            host,
            port: 443,
            path,
        }))
    }

    #[test]
    fn an_empty_configuration_denies_everything_by_default() {
        let p = policy(json!({}));
        let e = get(&p, "example.com", "/");
        assert_eq!(e.verdict, Verdict::Deny);
        assert_eq!(e.rule, DEFAULT_RULE);
        assert_eq!(e.effect, Effect::Read);
        assert!(
            e.reason.contains("matches no rule; the default is deny"),
            "{}",
            e.reason
        );
    }

    #[test]
    fn default_ids_name_the_list_and_index() {
        let p = policy(
            json!({"requests": [{"verdict": "deny", "hosts": ["a.com"]}, {"verdict": "allow"}],
                              "connect": [{"verdict": "allow"}]}),
        );
        assert_eq!(get(&p, "a.com", "/").rule, "requests[0]");
        assert_eq!(get(&p, "b.com", "/").rule, "requests[1]");
        let e = p.evaluate(&Request::Connect(Connect { host: "x", port: 1 }));
        assert_eq!(e.rule, "connect[0]");
    }

    #[test]
    fn errors_name_the_rule_and_the_problem() {
        let cases = [
            (
                json!({"requests": [{"verdict": "allow", "hosts": []}]}),
                "requests[0]: `hosts` is empty",
            ),
            (
                json!({"requests": [{"id": "x", "verdict": "allow", "method": ["GET"]}]}),
                "requests[0] (`x`): unknown field `method`",
            ),
            (
                json!({"requests": [{"id": "x"}]}),
                "requests[0] (`x`): missing field `verdict`",
            ),
            (
                json!({"requests": [{"verdict": "maybe"}]}),
                "unknown variant `maybe`",
            ),
            (
                json!({"requests": [{"verdict": "allow", "methods": ["get"]}]}),
                "method `get` must be uppercase (`GET`)",
            ),
            (
                json!({"requests": [{"verdict": "allow", "methods": ["G T"]}]}),
                "is not a method name",
            ),
            (
                json!({"requests": [{"verdict": "allow", "schemes": ["ftp"]}]}),
                "scheme `ftp` is not",
            ),
            (
                json!({"requests": [{"verdict": "allow", "ports": [0]}]}),
                "port 0 is not between 1 and 65535",
            ),
            (
                json!({"requests": [{"verdict": "allow", "ports": [65536]}]}),
                "port 65536",
            ),
            (
                json!({"requests": [{"verdict": "allow", "paths": ["repos/*"]}]}),
                "must start with `/`",
            ),
            (
                json!({"requests": [{"verdict": "allow", "paths": ["/a/../b"]}]}),
                "`..` segment",
            ),
            (
                json!({"requests": [{"verdict": "allow", "hosts": ["api.*.com"]}]}),
                "host pattern `api.*.com`",
            ),
            (
                json!({"requests": [{"verdict": "allow", "approval_timeout_ms": 5}]}),
                "applies to `ask` rules only",
            ),
            (
                json!({"requests": [{"verdict": "ask", "approval_timeout_ms": 0}]}),
                "more than 0",
            ),
            (
                json!({"requests": [{"verdict": "ask", "effect": "explode"}]}),
                "unknown variant `explode`",
            ),
            (
                json!({"requests": [{"verdict": "ask", "id": "default"}]}),
                "reserved",
            ),
            (
                json!({"requests": [{"verdict": "ask", "id": ""}]}),
                "`id` is empty",
            ),
            (
                json!({"requests": ["allow"]}),
                "requests[0]: a rule must be a JSON object",
            ),
            (
                json!({"requests": [{"id": "a", "verdict": "ask"}], "upgrade": [{"id": "a", "verdict": "ask"}]}),
                "upgrade[0]: the id `a` is used by another rule",
            ),
            (
                json!({"requests": [{"verdict": "ask"}, {"id": "requests[0]", "verdict": "ask"}]}),
                "requests[1]: the id `requests[0]`",
            ),
            (
                json!({"connect": [{"verdict": "allow", "paths": ["/"]}]}),
                "connect[0]: unknown field `paths`",
            ),
            (
                json!({"connect": [{"verdict": "allow", "ports": [-1]}]}),
                "connect[0]",
            ),
            (
                json!({"upgrade": [{"verdict": "allow", "methods": ["GET"]}]}),
                "upgrade[0]: unknown field `methods`",
            ),
            (
                json!({"upgrade": [{"verdict": "allow", "protocols": ["web socket"]}]}),
                "protocol `web socket`",
            ),
            (
                json!({"upgrade": [{"verdict": "allow", "protocols": []}]}),
                "`protocols` is empty",
            ),
            (json!({"default": "maybe"}), "unknown variant `maybe`"),
            (json!({"rules": []}), "unknown field `rules`"),
        ];
        for (config, want) in cases {
            let err = error(config.clone());
            assert!(err.contains(want), "{config}: {err}");
        }
    }

    #[test]
    fn deny_beats_ask_beats_allow_whatever_the_order() {
        let p = policy(json!({"requests": [
            {"id": "a", "verdict": "allow"},
            {"id": "b", "verdict": "ask", "paths": ["/x/**"]},
            {"id": "c", "verdict": "deny", "paths": ["/x/secret"]},
            {"id": "d", "verdict": "deny", "paths": ["/x/**"]},
        ]}));
        assert_eq!(get(&p, "h", "/y").rule, "a");
        assert_eq!(get(&p, "h", "/x/1").rule, "d");
        let e = get(&p, "h", "/x/secret");
        assert_eq!(
            (e.verdict, e.rule.as_str()),
            (Verdict::Deny, "c"),
            "the first deny listed"
        );
    }

    #[test]
    fn method_effects_are_derived_unless_the_rule_sets_one() {
        let p = policy(json!({"default": "allow", "requests": [
            {"id": "x", "verdict": "ask", "paths": ["/x"], "effect": "execute", "risk": "high", "approval_timeout_ms": 1000}
        ]}));
        for (method, effect) in [
            ("GET", Effect::Read),
            ("HEAD", Effect::Read),
            ("OPTIONS", Effect::Read),
            ("TRACE", Effect::Read),
            ("DELETE", Effect::Destructive),
            ("POST", Effect::Write),
            ("PUT", Effect::Write),
            ("PATCH", Effect::Write),
        ] {
            let e = p.evaluate(&Request::Http(HttpRequest {
                method,
                scheme: "https",
                host: "h",
                port: 443,
                path: "/",
            }));
            assert_eq!(
                (e.effect, e.risk, e.approval_timeout_ms),
                (effect, None, None),
                "{method}"
            );
        }
        let e = get(&p, "h", "/x");
        assert_eq!(
            (e.verdict, e.effect, e.risk, e.approval_timeout_ms),
            (Verdict::Ask, Effect::Execute, Some(Risk::High), Some(1000))
        );
        let e = p.evaluate(&Request::Connect(Connect {
            host: "h",
            port: 22,
        }));
        assert_eq!(e.effect, Effect::Network);
        let e = p.evaluate(&Request::Upgrade(Upgrade {
            host: "h",
            path: "/",
            protocol: "websocket",
        }));
        assert_eq!(e.effect, Effect::Network);
    }

    #[test]
    fn a_star_method_matches_every_method() {
        let p = policy(json!({"requests": [{"verdict": "allow", "methods": ["GET", "*"]}]}));
        let e = p.evaluate(&Request::Http(HttpRequest {
            method: "PROPFIND",
            scheme: "http",
            host: "h",
            port: 80,
            path: "/",
        }));
        assert_eq!(e.verdict, Verdict::Allow);
    }

    #[test]
    fn ambiguous_paths_are_never_allowed_even_by_pathless_rules() {
        let p =
            policy(json!({"default": "allow", "requests": [{"id": "all", "verdict": "allow"}]}));
        for path in [
            "/a%2fb", "/a\\b", "/..", "/a%zz", "/a%00", "/é", "/a/..;/b", "/a%252e", "x",
        ] {
            let e = get(&p, "h", path);
            assert_eq!(
                (e.verdict, e.rule.as_str()),
                (Verdict::Deny, AMBIGUOUS_PATH_RULE),
                "{path:?}"
            );
            assert!(e.reason.contains("the path is ambiguous"), "{}", e.reason);
        }
    }

    #[test]
    fn deny_and_ask_rules_see_every_reading_of_an_ambiguous_path() {
        let p = policy(json!({"requests": [
            {"id": "ok", "verdict": "allow", "paths": ["/**"]},
            {"id": "review", "verdict": "ask", "paths": ["/**"]},
            {"id": "no-admin", "verdict": "deny", "paths": ["/admin/**"]},
        ]}));
        for path in [
            "/admin%2Fusers",
            "/x/..%2F..%2Fadmin",
            "/x\\..\\admin\\y",
            "/x/%252e%252e/admin",
            "/../admin",
        ] {
            let e = get(&p, "h", path);
            assert_eq!(e.rule, "no-admin", "{path}: {}", e.reason);
            assert!(e.reason.contains("ambiguous"), "{}", e.reason);
        }
        let e = get(&p, "h", "/docs%2Findex");
        assert_eq!(e.rule, "review");
    }

    #[test]
    fn reasons_escape_control_characters() {
        let p = policy(json!({}));
        let e = get(&p, "h", "/a\nINJECTED");
        assert!(!e.reason.contains('\n'));
        assert!(e.reason.contains("\\u{a}INJECTED"), "{}", e.reason);
    }

    #[test]
    fn reasons_show_non_default_ports_and_normalized_paths() {
        let p = policy(json!({"requests": [{"id": "r", "verdict": "deny", "paths": ["/b/**"]}]}));
        let e = p.evaluate(&Request::Http(HttpRequest {
            method: "GET",
            scheme: "http",
            host: "h",
            port: 8080,
            path: "/b/../a",
        }));
        assert_eq!(
            e.reason,
            "GET http://h:8080/b/../a (normalized to `/a`) matches deny rule `r` when read as \
             `/b/../a` (as sent, the way routers that match it without resolving dot segments read it)"
        );
    }

    #[test]
    fn reasons_never_repeat_a_long_path_whole() {
        let p = policy(json!({"requests": [
            {"id": "pub", "verdict": "allow", "paths": ["/public/**"]},
            {"id": "adm", "verdict": "deny", "paths": ["/admin/**"]},
        ]}));
        let long = "/public/".to_owned() + &"abcdefgh/".repeat(60 * 1024 / 9);
        let cases = [
            (long.clone(), Verdict::Allow, "pub"),
            (format!("/admin/..{long}"), Verdict::Deny, "adm"),
            (format!("/x{long}"), Verdict::Deny, DEFAULT_RULE),
            (format!("{long}%2F"), Verdict::Deny, AMBIGUOUS_PATH_RULE),
            (format!("/x/..{long}"), Verdict::Deny, AMBIGUOUS_PATH_RULE),
        ];
        for (path, verdict, rule) in cases {
            let e = get(&p, "h", &path);
            assert_eq!(
                (e.verdict, e.rule.as_str()),
                (verdict, rule),
                "{}",
                e.reason
            );
            assert!(
                e.reason.len() < 2048,
                "{} bytes: {}",
                e.reason.len(),
                e.reason
            );
            assert!(e.reason.contains("bytes cut...]"), "{}", e.reason);
        }
        let e = get(&p, "h", "/public/short");
        assert!(!e.reason.contains("cut"), "{}", e.reason);
    }

    #[test]
    fn readings_that_disagree_across_allow_and_deny_are_denied() {
        for default in ["deny", "ask"] {
            let p = policy(json!({"default": default, "requests": [
                {"id": "pub", "verdict": "allow", "paths": ["/public/**"]},
            ]}));
            let e = get(&p, "h", "/x/../public/y");
            assert_eq!(
                (e.verdict, e.rule.as_str()),
                (Verdict::Deny, AMBIGUOUS_PATH_RULE),
                "{default}"
            );
            assert!(
                e.reason.contains("servers read its path differently")
                    && e.reason
                        .contains("`/public/y` (normalized) matches allow rule `pub`")
                    && e.reason.contains("`/x/../public/y` (as sent"),
                "{}",
                e.reason
            );
        }
        // With `allow` as the default, every reading is allowed one way or another.
        let p = policy(json!({"default": "allow", "requests": [
            {"id": "pub", "verdict": "allow", "paths": ["/public/**"]},
        ]}));
        let e = get(&p, "h", "/x/../public/y");
        assert_eq!(
            (e.verdict, e.rule.as_str()),
            (Verdict::Allow, "pub"),
            "{}",
            e.reason
        );
    }

    #[test]
    fn each_reading_may_be_allowed_by_a_different_rule() {
        let p = policy(json!({"requests": [
            {"id": "docs", "verdict": "allow", "paths": ["/docs/**"]},
            {"id": "pub", "verdict": "allow", "paths": ["/public/**"]},
        ]}));
        let e = get(&p, "h", "/docs/a/../../public/y");
        assert_eq!(
            (e.verdict, e.rule.as_str()),
            (Verdict::Allow, "pub"),
            "{}",
            e.reason
        );
    }

    #[test]
    fn deny_rules_ignore_case_and_a_trailing_slash_allow_rules_do_not() {
        let p = policy(json!({"default": "allow", "requests": [
            {"id": "adm", "verdict": "deny", "paths": ["/admin", "/Secret/**"]},
        ]}));
        for path in ["/ADMIN", "/admin/", "/Admin/", "/secret/x", "/SECRET"] {
            assert_eq!(get(&p, "h", path).rule, "adm", "{path}");
        }
        assert_eq!(get(&p, "h", "/administrator").rule, DEFAULT_RULE);
        let p = policy(
            json!({"requests": [{"id": "pub", "verdict": "allow", "paths": ["/public/**"]}]}),
        );
        assert_eq!(get(&p, "h", "/Public/x").verdict, Verdict::Deny);
    }

    #[test]
    fn escaped_characters_in_deny_patterns_match_their_decoded_spelling() {
        let p = policy(json!({"default": "allow", "requests": [
            {"id": "comma", "verdict": "deny", "paths": ["/a%2Cb/**"]},
        ]}));
        for path in ["/a%2cb/x", "/a,b/x"] {
            assert_eq!(get(&p, "h", path).rule, "comma", "{path}");
        }
    }

    #[test]
    fn upgrades_are_judged_on_every_reading_too() {
        let p = policy(json!({"upgrade": [
            {"id": "ws", "verdict": "allow", "paths": ["/ws/**"]},
            {"id": "no-admin", "verdict": "deny", "paths": ["/admin/**"]},
        ]}));
        let up = |path| {
            p.evaluate(&Request::Upgrade(Upgrade {
                host: "h",
                path,
                protocol: "websocket",
            }))
        };
        assert_eq!(up("/admin/../ws/x").rule, "no-admin");
        assert_eq!(up("//ws/admin/x").rule, "no-admin");
        assert_eq!(up("/ws/room?x=/../../admin").rule, "ws");
    }
}
