//! The `gavel:policy` interface versions a policy may be built against, and the conversions
//! between Gavel's own types and each version's generated bindings.
//!
//! A policy is called through the version it exports. An action its version cannot represent
//! (an HTTP request, a CONNECT or an upgrade, shown to a 0.1.0 policy) never reaches it: the
//! host answers for the policy per its `unknown_actions` setting, `deny` by default.

use crate::action::Action;
use crate::bindings::{v0_1, v0_2};
use crate::decision::{EffectClass, RiskClass, Suggestion, SuggestionGroup};
use crate::engine::HostState;
use crate::tokens::{Operation, Token, TokenState};
use std::sync::OnceLock;
use wasmtime::Store;
use wasmtime::component::{Instance, InstancePre};

/// A version of the `gavel:policy` package the host loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum InterfaceVersion {
    /// `gavel:policy@0.1.0`: local-exec and tool-call actions.
    V0_1,
    /// `gavel:policy@0.2.0`: adds HTTP, CONNECT and upgrade actions.
    V0_2,
}

impl InterfaceVersion {
    /// Every version the host loads, newest first.
    pub const ALL: [InterfaceVersion; 2] = [InterfaceVersion::V0_2, InterfaceVersion::V0_1];

    /// The newest version: what `gavel new` and the SDK build against.
    pub const CURRENT: InterfaceVersion = InterfaceVersion::V0_2;

    /// The semantic version, for example `0.2.0`.
    pub fn as_str(self) -> &'static str {
        match self {
            InterfaceVersion::V0_1 => "0.1.0",
            InterfaceVersion::V0_2 => "0.2.0",
        }
    }

    /// The fully qualified name of an interface of this version, for example
    /// `gavel:policy/decide@0.2.0`.
    pub(crate) fn interface(self, name: &str) -> String {
        format!("gavel:policy/{name}@{}", self.as_str())
    }

    /// Whether a policy of this version can be shown `action`.
    pub(crate) fn represents(self, action: &Action) -> bool {
        match self {
            InterfaceVersion::V0_2 => true,
            InterfaceVersion::V0_1 => matches!(action, Action::LocalExec(_) | Action::ToolCall(_)),
        }
    }
}

/// What the host answers for a policy whose interface version cannot represent an action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownActions {
    /// Deny on the policy's behalf (fail closed): a policy written before HTTP existed never
    /// lets HTTP through by silence.
    #[default]
    Deny,
    /// Abstain on the policy's behalf: the rest of the chain decides, and a chain in which
    /// every policy abstains still denies.
    Abstain,
}

/// A verdict as a policy gives it; `Abstain` never leaves the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PolicyVerdict {
    Allow,
    Deny,
    Ask,
    Abstain,
}

/// A decision as a policy returned it, before the host checks its size.
#[derive(Debug, Clone)]
pub(crate) struct RawDecision {
    pub(crate) verdict: PolicyVerdict,
    pub(crate) reason: Option<String>,
    pub(crate) rule_id: Option<String>,
    pub(crate) suggestions: Vec<SuggestionGroup>,
    pub(crate) effect: Option<EffectClass>,
    pub(crate) risk: Option<RiskClass>,
    pub(crate) approval_timeout_ms: Option<u64>,
}

/// A policy's own error (it answered, it did not trap).
#[derive(Debug, Clone)]
pub(crate) enum PolicyError {
    InvalidConfig(String),
    UnsupportedAction(String),
    Internal(String),
}

/// An action converted once per version and shared by every policy of a chain decision.
pub(crate) struct Prepared<'a> {
    action: &'a Action,
    v0_1: OnceLock<Option<v0_1::gavel::policy::types::Action>>,
    v0_2: OnceLock<v0_2::gavel::policy::types::Action>,
}

impl<'a> Prepared<'a> {
    pub(crate) fn new(action: &'a Action) -> Self {
        Self {
            action,
            v0_1: OnceLock::new(),
            v0_2: OnceLock::new(),
        }
    }

    pub(crate) fn action(&self) -> &'a Action {
        self.action
    }
}

/// Where a version's exports live in a component, found once when the policy loads.
pub(crate) enum Indices {
    V0_1 {
        decide: v0_1::exports::gavel::policy::decide::GuestIndices,
        manage: Option<v0_1::exports::gavel::policy::manage::GuestIndices>,
    },
    V0_2 {
        decide: v0_2::exports::gavel::policy::decide::GuestIndices,
        manage: Option<v0_2::exports::gavel::policy::manage::GuestIndices>,
    },
}

/// A live instance's typed exports.
pub(crate) enum Exports {
    V0_1 {
        decide: v0_1::exports::gavel::policy::decide::Guest,
        manage: Option<v0_1::exports::gavel::policy::manage::Guest>,
    },
    V0_2 {
        decide: v0_2::exports::gavel::policy::decide::Guest,
        manage: Option<v0_2::exports::gavel::policy::manage::Guest>,
    },
}

impl Indices {
    pub(crate) fn new(
        pre: &InstancePre<HostState>,
        version: InterfaceVersion,
        with_manage: bool,
    ) -> wasmtime::Result<Self> {
        Ok(match version {
            InterfaceVersion::V0_1 => {
                use v0_1::exports::gavel::policy::{decide, manage};
                Indices::V0_1 {
                    decide: decide::GuestIndices::new(pre)?,
                    manage: with_manage
                        .then(|| manage::GuestIndices::new(pre))
                        .transpose()?,
                }
            }
            InterfaceVersion::V0_2 => {
                use v0_2::exports::gavel::policy::{decide, manage};
                Indices::V0_2 {
                    decide: decide::GuestIndices::new(pre)?,
                    manage: with_manage
                        .then(|| manage::GuestIndices::new(pre))
                        .transpose()?,
                }
            }
        })
    }

    pub(crate) fn load(
        &self,
        store: &mut Store<HostState>,
        instance: &Instance,
    ) -> wasmtime::Result<Exports> {
        Ok(match self {
            Indices::V0_1 { decide, manage } => Exports::V0_1 {
                decide: decide.load(&mut *store, instance)?,
                manage: manage
                    .as_ref()
                    .map(|m| m.load(&mut *store, instance))
                    .transpose()?,
            },
            Indices::V0_2 { decide, manage } => Exports::V0_2 {
                decide: decide.load(&mut *store, instance)?,
                manage: manage
                    .as_ref()
                    .map(|m| m.load(&mut *store, instance))
                    .transpose()?,
            },
        })
    }
}

/// What a `manage` hook said.
pub(crate) enum ManageVerdict {
    Permit,
    Veto(String),
}

impl Exports {
    pub(crate) fn init(
        &self,
        store: &mut Store<HostState>,
    ) -> wasmtime::Result<Result<(), PolicyError>> {
        Ok(match self {
            Exports::V0_1 { decide, .. } => decide.call_init(store)?.map_err(v0_1_error),
            Exports::V0_2 { decide, .. } => decide.call_init(store)?.map_err(v0_2_error),
        })
    }

    /// Call `decide`; `None` when this version cannot represent the action (the caller answers
    /// for the policy).
    pub(crate) fn decide(
        &self,
        store: &mut Store<HostState>,
        action: &Prepared<'_>,
    ) -> Option<wasmtime::Result<Result<RawDecision, PolicyError>>> {
        match self {
            Exports::V0_1 { decide, .. } => {
                let wit = action
                    .v0_1
                    .get_or_init(|| to_v0_1(action.action))
                    .as_ref()?;
                Some(
                    decide
                        .call_decide(store, wit)
                        .map(|r| r.map(from_v0_1).map_err(v0_1_error)),
                )
            }
            Exports::V0_2 { decide, .. } => {
                let wit = action.v0_2.get_or_init(|| to_v0_2(action.action));
                Some(
                    decide
                        .call_decide(store, wit)
                        .map(|r| r.map(from_v0_2).map_err(v0_2_error)),
                )
            }
        }
    }

    /// Call `manage`; `None` when there is no hook or this version cannot represent the
    /// token's request.
    pub(crate) fn manage(
        &self,
        store: &mut Store<HostState>,
        op: Operation,
        token: &Token,
        operator_uid: Option<u32>,
    ) -> Option<wasmtime::Result<ManageVerdict>> {
        match self {
            Exports::V0_1 { manage, .. } => {
                let request = to_v0_1(&token.action)?;
                call_manage!(
                    v0_1,
                    manage.as_ref()?,
                    store,
                    op,
                    token,
                    request,
                    operator_uid
                )
            }
            Exports::V0_2 { manage, .. } => {
                let request = to_v0_2(&token.action);
                call_manage!(
                    v0_2,
                    manage.as_ref()?,
                    store,
                    op,
                    token,
                    request,
                    operator_uid
                )
            }
        }
    }
}

/// The management request and verdict are the same shape in every version: build one for
/// `$version`'s bindings, call the hook, and read its verdict.
macro_rules! call_manage {
    ($version:ident, $hook:expr, $store:expr, $op:expr, $token:expr, $request:expr, $uid:expr) => {{
        use $version::gavel::policy::types as w;
        let request = w::ManagementRequest {
            action: match $op {
                Operation::Approve => w::ManagementAction::Approve,
                Operation::Revoke => w::ManagementAction::Revoke,
            },
            token: w::TokenInfo {
                id: $token.id.clone(),
                state: match $token.state {
                    TokenState::Pending => w::TokenState::Pending,
                    TokenState::Approved => w::TokenState::Approved,
                    TokenState::Consumed => w::TokenState::Consumed,
                    TokenState::Revoked => w::TokenState::Revoked,
                    TokenState::Expired => w::TokenState::Expired,
                },
                request: $request,
                fingerprint: $token.fingerprint.clone(),
                created_at_ms: $token.created_at_ms,
                expires_at_ms: $token.expires_at_ms,
            },
            operator_uid: $uid,
        };
        Some($hook.call_manage($store, &request).map(|v| match v {
            w::ManagementVerdict::Permit => ManageVerdict::Permit,
            w::ManagementVerdict::Veto(why) => ManageVerdict::Veto(why),
        }))
    }};
}
use call_manage;

/// `local-exec` and `tool-call` are the same in every version: a `match` on an action that
/// converts those two into `$w`'s types, followed by the version's own `$arms`.
macro_rules! convert_action {
    ($w:ident, $action:expr, { $($arms:tt)* }) => {
        match $action {
            Action::LocalExec(e) => $w::Action::LocalExec($w::LocalExec {
                executable: e.executable.clone(),
                args: e.args.clone(),
                session_id: e.session_id.clone(),
                sandbox_id: e.sandbox_id.clone(),
                agent_id: e.agent_id.clone(),
                profile: e.profile.clone(),
                hitl_mode: e.hitl_mode.clone(),
            }),
            Action::ToolCall(t) => $w::Action::ToolCall($w::ToolCall {
                tool: t.tool.clone(),
                arg: t.arg.clone(),
                session_id: t.session_id.clone(),
                sandbox_id: t.sandbox_id.clone(),
                agent_id: t.agent_id.clone(),
                project_id: t.project_id.clone(),
                project_root: t.project_root.clone(),
                cwd: t.cwd.clone(),
            }),
            $($arms)*
        }
    };
}

/// The 0.1.0 form of an action; `None` for the actions 0.1.0 has no case for.
fn to_v0_1(action: &Action) -> Option<v0_1::gavel::policy::types::Action> {
    use v0_1::gavel::policy::types as w;
    Some(convert_action!(w, action, {
        Action::HttpRequest(_) | Action::Connect(_) | Action::Upgrade(_) => return None,
    }))
}

fn to_v0_2(action: &Action) -> v0_2::gavel::policy::types::Action {
    use v0_2::gavel::policy::types as w;
    convert_action!(w, action, {
        Action::HttpRequest(h) => w::Action::HttpRequest(w::HttpRequest {
            method: h.method.clone(),
            scheme: h.scheme.clone(),
            host: h.host.clone(),
            port: h.port,
            path: h.path.clone(),
            query: h.query.clone(),
            headers: h
                .headers
                .iter()
                .map(|x| w::HttpHeader {
                    name: x.name.clone(),
                    value: x.value.clone(),
                })
                .collect(),
            body_size: h.body_size,
            session_id: h.session_id.clone(),
            sandbox_id: h.sandbox_id.clone(),
            agent_id: h.agent_id.clone(),
        }),
        Action::Connect(c) => w::Action::Connect(w::Connect {
            host: c.host.clone(),
            port: c.port,
            session_id: c.session_id.clone(),
            sandbox_id: c.sandbox_id.clone(),
            agent_id: c.agent_id.clone(),
        }),
        Action::Upgrade(u) => w::Action::Upgrade(w::Upgrade {
            host: u.host.clone(),
            path: u.path.clone(),
            protocol: u.protocol.clone(),
            session_id: u.session_id.clone(),
            sandbox_id: u.sandbox_id.clone(),
            agent_id: u.agent_id.clone(),
        }),
    })
}

/// Suggestions are the same shape in every version; convert any version's.
macro_rules! suggestions {
    ($groups:expr) => {
        $groups
            .into_iter()
            .map(|g| SuggestionGroup {
                subject: g.subject,
                rules: g
                    .rules
                    .into_iter()
                    .map(|r| Suggestion {
                        rule: r.rule,
                        label: r.label,
                    })
                    .collect(),
            })
            .collect()
    };
}

fn from_v0_1(d: v0_1::gavel::policy::types::Decision) -> RawDecision {
    use v0_1::gavel::policy::types as w;
    RawDecision {
        verdict: match d.verdict {
            w::Verdict::Allow => PolicyVerdict::Allow,
            w::Verdict::Deny => PolicyVerdict::Deny,
            w::Verdict::Ask => PolicyVerdict::Ask,
        },
        reason: d.reason,
        rule_id: d.rule_id,
        suggestions: suggestions!(d.suggestions),
        effect: None,
        risk: None,
        approval_timeout_ms: None,
    }
}

fn from_v0_2(d: v0_2::gavel::policy::types::Decision) -> RawDecision {
    use v0_2::gavel::policy::types as w;
    RawDecision {
        verdict: match d.verdict {
            w::Verdict::Allow => PolicyVerdict::Allow,
            w::Verdict::Deny => PolicyVerdict::Deny,
            w::Verdict::Ask => PolicyVerdict::Ask,
            w::Verdict::Abstain => PolicyVerdict::Abstain,
        },
        reason: d.reason,
        rule_id: d.rule_id,
        suggestions: suggestions!(d.suggestions),
        effect: d.effect.map(|e| match e {
            w::EffectClass::Read => EffectClass::Read,
            w::EffectClass::Write => EffectClass::Write,
            w::EffectClass::Execute => EffectClass::Execute,
            w::EffectClass::Network => EffectClass::Network,
            w::EffectClass::Destructive => EffectClass::Destructive,
        }),
        risk: d.risk.map(|r| match r {
            w::RiskClass::Low => RiskClass::Low,
            w::RiskClass::Medium => RiskClass::Medium,
            w::RiskClass::High => RiskClass::High,
            w::RiskClass::Critical => RiskClass::Critical,
        }),
        approval_timeout_ms: d.approval_timeout_ms,
    }
}

fn v0_1_error(e: v0_1::gavel::policy::types::PolicyError) -> PolicyError {
    use v0_1::gavel::policy::types::PolicyError as E;
    match e {
        E::InvalidConfig(m) => PolicyError::InvalidConfig(m),
        E::UnsupportedAction(m) => PolicyError::UnsupportedAction(m),
        E::Internal(m) => PolicyError::Internal(m),
    }
}

fn v0_2_error(e: v0_2::gavel::policy::types::PolicyError) -> PolicyError {
    use v0_2::gavel::policy::types::PolicyError as E;
    match e {
        E::InvalidConfig(m) => PolicyError::InvalidConfig(m),
        E::UnsupportedAction(m) => PolicyError::UnsupportedAction(m),
        E::Internal(m) => PolicyError::Internal(m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::fixtures;
    use crate::action::{Action, Connect};

    #[test]
    fn versions_name_their_interfaces_and_current_is_the_newest() {
        assert_eq!(InterfaceVersion::ALL[0], InterfaceVersion::CURRENT);
        assert!(InterfaceVersion::ALL.windows(2).all(|w| w[0] > w[1]));
        assert_eq!(
            InterfaceVersion::V0_1.interface("decide"),
            "gavel:policy/decide@0.1.0"
        );
    }

    #[test]
    fn a_0_1_policy_is_never_shown_a_network_action() {
        let connect = Action::Connect(Connect {
            host: "example.com".into(),
            port: 443,
            session_id: "s".into(),
            sandbox_id: "sbx".into(),
            agent_id: None,
        });
        for action in [fixtures::exec("ls", &[]), fixtures::tool("read_file")] {
            assert!(InterfaceVersion::V0_1.represents(&action));
        }
        assert!(!InterfaceVersion::V0_1.represents(&connect));
        assert!(InterfaceVersion::V0_2.represents(&connect));
        assert_eq!(UnknownActions::default(), UnknownActions::Deny);
    }
}
