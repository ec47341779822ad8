//! One loaded policy: checked, compiled once, configured once per instance, and called with a
//! deadline and a memory cap. Every failure of the guest comes back as a `deny` that names the
//! policy and the cause; nothing here returns an error once the policy has loaded.

use crate::action::hex;
use crate::decision::{EffectClass, FailureKind, RiskClass, SuggestionGroup};
use crate::engine::{EPOCH_TICK, HostState, Runtime};
use crate::error::Error;
use crate::interface::{
    Exports, Indices, InterfaceVersion, ManageVerdict, PolicyError, PolicyVerdict, Prepared,
    RawDecision, UnknownActions,
};
use crate::tokens::{Operation, Token};
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime::component::InstancePre;
use wasmtime::{Store, Trap};

/// Largest reason, rule id and suggestion set a decision may carry. A longer reason is cut and
/// an oversized suggestion set dropped (both are display text); a longer rule id is a `deny`.
const MAX_REASON: usize = 4096;
const MAX_RULE_ID: usize = 256;
const MAX_SUGGESTIONS: usize = 256;
const MAX_RULE_TEXT: usize = 1024;

/// How a policy's calls are bounded and its instances reused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock budget of one call into the policy.
    pub deadline: Duration,
    /// Linear memory the policy may grow to, in bytes.
    pub memory_bytes: usize,
    /// Pooled: instances are reused across decisions; per-decision: a fresh instance each time.
    pub isolation: Isolation,
    /// A pooled instance is retired after this many calls, so its memory returns to the system.
    pub max_uses: u32,
    /// Satisfy WASI imports with an empty sandbox (no files, network, environment or
    /// arguments; output captured into the log). Off: a policy importing WASI is refused.
    pub wasi: bool,
    /// What the host answers for the policy on actions its interface version cannot represent.
    pub unknown_actions: UnknownActions,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            deadline: Duration::from_millis(100),
            memory_bytes: 32 << 20,
            isolation: Isolation::Pooled,
            max_uses: 10_000,
            wasi: false,
            unknown_actions: UnknownActions::Deny,
        }
    }
}

/// Whether a policy's instances are reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Isolation {
    /// Reuse healthy instances (configured once) across decisions; the fast default.
    #[default]
    Pooled,
    /// A fresh instance for every decision: no state survives between decisions.
    PerDecision,
}

/// Which world a policy implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum World {
    /// Exports `decide` only.
    DecidePolicy,
    /// Exports `decide` and `manage`.
    Policy,
}

impl World {
    /// The WIT world's name.
    pub fn name(self) -> &'static str {
        match self {
            World::DecidePolicy => "decide-policy",
            World::Policy => "policy",
        }
    }
}

/// What one policy said about one action.
#[derive(Debug, Clone)]
pub(crate) struct PolicyDecision {
    pub(crate) verdict: PolicyVerdict,
    pub(crate) reason: String,
    pub(crate) rule_id: Option<String>,
    pub(crate) suggestions: Vec<SuggestionGroup>,
    pub(crate) effect: Option<EffectClass>,
    pub(crate) risk: Option<RiskClass>,
    pub(crate) approval_timeout_ms: Option<u64>,
    /// The kind of failure (`deadline`, `memory`, `stack`, `trap`, `error`, `oversized`,
    /// `instantiate`) if the policy failed; `reason` then already names the policy.
    pub(crate) failure: Option<FailureKind>,
}

impl PolicyDecision {
    fn failed(kind: FailureKind, reason: String) -> Self {
        Self {
            failure: Some(kind),
            ..Self::plain(PolicyVerdict::Deny, reason)
        }
    }

    /// A verdict and a reason, nothing else.
    fn plain(verdict: PolicyVerdict, reason: String) -> Self {
        Self {
            verdict,
            reason,
            rule_id: None,
            suggestions: Vec::new(),
            effect: None,
            risk: None,
            approval_timeout_ms: None,
            failure: None,
        }
    }
}

/// A live instance with its store and typed exports.
struct Warm {
    store: Store<HostState>,
    exports: Exports,
    uses: u32,
}

/// A policy ready to decide.
pub(crate) struct Policy {
    name: Arc<str>,
    digest: String,
    world: World,
    version: InterfaceVersion,
    config: Arc<str>,
    limits: Limits,
    runtime: Arc<Runtime>,
    pre: InstancePre<HostState>,
    indices: Indices,
    /// Idle configured instances; a decision takes one and gives it back if it stayed healthy.
    pool: Mutex<Vec<Warm>>,
    max_idle: usize,
}

impl Policy {
    /// Check, compile and configure a policy. The first instance is created and its `init` run
    /// here, so a component of the wrong shape or a bad configuration fails now, not later.
    pub(crate) fn load(
        runtime: Arc<Runtime>,
        name: &str,
        bytes: &[u8],
        config: &str,
        limits: Limits,
    ) -> Result<Self, Error> {
        let fail = |message: String| {
            Error::policy(
                name,
                FailureKind::Invalid,
                format!("policy `{name}` {message}"),
            )
        };
        check_header(bytes).map_err(fail)?;
        let digest = hex(&Sha256::digest(bytes));
        let component = runtime
            .compile(bytes, &digest)
            .map_err(|e| fail(format!("is not a valid component: {e:#}")).with_source(e))?;

        let ty = component.component_type();
        // What Gavel provides: `host` of each version (`types` is imported for its type
        // definitions only, as exports `use` them), and WASI when the policy opts in.
        let provided = |import: &str| {
            InterfaceVersion::ALL
                .iter()
                .any(|v| import == v.interface("host") || import == v.interface("types"))
        };
        let imports: Vec<String> = ty
            .imports(&runtime.engine)
            .map(|(n, _)| n.to_owned())
            .collect();
        for import in &imports {
            if import.starts_with("wasi:") && !limits.wasi {
                return Err(fail(format!(
                    "imports `{import}`; set `wasi = true` on this policy to run it in an empty WASI \
                     sandbox (no files, network, environment or arguments)"
                )));
            }
            if !provided(import) && !import.starts_with("wasi:") {
                return Err(fail(format!(
                    "imports `{import}`, which Gavel does not provide; a policy may import only \
                     `{}`",
                    InterfaceVersion::CURRENT.interface("host")
                )));
            }
        }
        let has = |export: &str| ty.exports(&runtime.engine).any(|(n, _)| n == export);
        let Some(version) = InterfaceVersion::ALL
            .into_iter()
            .find(|v| has(&v.interface("decide")))
        else {
            let found: Vec<String> = ty
                .exports(&runtime.engine)
                .map(|(n, _)| format!("`{n}`"))
                .collect();
            let found = if found.is_empty() {
                "nothing".to_owned()
            } else {
                found.join(", ")
            };
            let known: Vec<&str> = InterfaceVersion::ALL.iter().map(|v| v.as_str()).collect();
            return Err(fail(format!(
                "exports neither world `policy` nor `decide-policy` of gavel:policy (versions {}): \
                 it has no `gavel:policy/decide` export (it exports {found})",
                known.join(", ")
            )));
        };
        let suffix = format!("@{}", version.as_str());
        if let Some(other) = imports
            .iter()
            .find(|i| i.starts_with("gavel:policy/") && !i.ends_with(&suffix))
        {
            return Err(fail(format!(
                "exports gavel:policy@{} but imports `{other}`; build it against one version of \
                 the interface",
                version.as_str()
            )));
        }
        let world = if has(&version.interface("manage")) {
            World::Policy
        } else {
            World::DecidePolicy
        };

        let linker = if limits.wasi {
            &runtime.wasi_linker
        } else {
            &runtime.linker
        };
        let pre = linker
            .instantiate_pre(&component)
            .map_err(|e| fail(format!("cannot be linked: {e:#}")))?;
        let indices = Indices::new(&pre, version, world == World::Policy)
            .map_err(|e| fail(format!("{e:#}")))?;

        let policy = Self {
            name: name.into(),
            digest,
            world,
            version,
            config: config.into(),
            limits,
            runtime,
            pre,
            indices,
            pool: Mutex::new(Vec::new()),
            max_idle: std::thread::available_parallelism().map_or(4, |n| n.get() * 2),
        };
        let warm = policy
            .off_runtime(|| policy.instantiate())
            .map_err(|message| Error::policy(name, FailureKind::Instantiate, message))?;
        policy.give_back(warm);
        Ok(policy)
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn name_arc(&self) -> Arc<str> {
        Arc::clone(&self.name)
    }

    /// SHA-256 of the component, lowercase hex.
    pub(crate) fn digest(&self) -> &str {
        &self.digest
    }

    pub(crate) fn world(&self) -> World {
        self.world
    }

    pub(crate) fn version(&self) -> InterfaceVersion {
        self.version
    }

    /// Decide one action. Never fails: a broken policy is a `deny` naming it and the cause. An
    /// action the policy's interface version cannot represent is answered for it, per
    /// `unknown_actions`, without calling it.
    pub(crate) fn decide(&self, action: &Prepared<'_>) -> PolicyDecision {
        if !self.version.represents(action.action()) {
            return self.answer_unknown(action.action().kind());
        }
        self.off_runtime(|| Ok(self.decide_here(action)))
            .unwrap_or_else(|e| PolicyDecision::failed(FailureKind::Trap, e))
    }

    /// The host's answer for this policy on an action kind its interface cannot represent.
    fn answer_unknown(&self, kind: &str) -> PolicyDecision {
        let (name, version) = (&self.name, self.version.as_str());
        match self.limits.unknown_actions {
            UnknownActions::Deny => PolicyDecision::plain(
                PolicyVerdict::Deny,
                format!(
                    "policy `{name}` implements gavel:policy@{version}, which cannot represent \
                     `{kind}` actions, so the host denies on its behalf (rebuild it against a newer \
                     interface, or set `unknown_actions = \"abstain\"` on it to let the rest of the \
                     chain decide)"
                ),
            ),
            UnknownActions::Abstain => PolicyDecision::plain(
                PolicyVerdict::Abstain,
                format!(
                    "policy `{name}` implements gavel:policy@{version}, which cannot represent \
                     `{kind}` actions; it abstains"
                ),
            ),
        }
    }

    /// Run `f` where a WASI policy may run: wasmtime-wasi's synchronous bindings block on a
    /// runtime of their own and must not be called from a tokio worker, so such a policy runs
    /// on a scoped helper thread. Other policies run inline.
    fn off_runtime<T: Send>(
        &self,
        f: impl FnOnce() -> Result<T, String> + Send,
    ) -> Result<T, String> {
        if !self.limits.wasi {
            return f();
        }
        std::thread::scope(|scope| scope.spawn(f).join()).unwrap_or_else(|_| {
            Err(format!(
                "policy `{}` failed: its host thread panicked",
                self.name
            ))
        })
    }

    fn decide_here(&self, action: &Prepared<'_>) -> PolicyDecision {
        let mut warm = match self.take() {
            Ok(warm) => warm,
            Err(reason) => return PolicyDecision::failed(FailureKind::Instantiate, reason),
        };
        self.arm(&mut warm.store);
        let result = warm.exports.decide(&mut warm.store, action);
        warm.store.data_mut().drain_output();
        let Some(result) = result else {
            // `decide` checked `represents` first; answer for the policy all the same.
            self.give_back(warm);
            return self.answer_unknown(action.action().kind());
        };
        match result {
            Ok(Ok(decision)) => {
                self.give_back(warm);
                self.accept(decision)
            }
            Ok(Err(error)) => {
                // The guest answered; its instance is still healthy.
                self.give_back(warm);
                PolicyDecision::failed(
                    FailureKind::Error,
                    format!(
                        "policy `{}` could not decide: {}",
                        self.name,
                        describe_policy_error(&error)
                    ),
                )
            }
            Err(trap) => PolicyDecision::failed(
                failure_kind(&warm.store, &trap),
                self.explain(&warm.store, &trap, "decide"),
            ),
        }
    }

    /// Ask the `manage` hook whether an operator's action may be applied. `Ok(())` permits; a
    /// veto or any failure of the hook is `Err(reason)`. Policies without the hook permit.
    pub(crate) fn manage(
        &self,
        op: Operation,
        token: &Token,
        operator_uid: Option<u32>,
    ) -> Result<(), String> {
        self.off_runtime(|| Ok(self.manage_here(op, token, operator_uid)))?
    }

    fn manage_here(
        &self,
        op: Operation,
        token: &Token,
        operator_uid: Option<u32>,
    ) -> Result<(), String> {
        if self.world != World::Policy {
            return Ok(());
        }
        if !self.version.represents(&token.action) {
            // Revoking only ever tightens; approving what the policy cannot see is refused on
            // its behalf unless it was told to abstain.
            return match (op, self.limits.unknown_actions) {
                (Operation::Approve, UnknownActions::Deny) => Err(format!(
                    "policy `{}` implements gavel:policy@{}, which cannot represent `{}` \
                     requests, so the host refuses approval on its behalf",
                    self.name,
                    self.version.as_str(),
                    token.action.kind()
                )),
                _ => Ok(()),
            };
        }
        let mut warm = self.take()?;
        self.arm(&mut warm.store);
        let result = warm
            .exports
            .manage(&mut warm.store, op, token, operator_uid);
        warm.store.data_mut().drain_output();
        match result {
            None => {
                self.give_back(warm);
                Ok(())
            }
            Some(Ok(ManageVerdict::Permit)) => {
                self.give_back(warm);
                Ok(())
            }
            Some(Ok(ManageVerdict::Veto(why))) => {
                self.give_back(warm);
                Err(format!(
                    "policy `{}` vetoed it: {}",
                    self.name,
                    clip(&why, MAX_REASON)
                ))
            }
            Some(Err(trap)) => Err(self.explain(&warm.store, &trap, "manage")),
        }
    }

    /// A configured instance: an idle one from the pool, or a fresh one.
    fn take(&self) -> Result<Warm, String> {
        if self.limits.isolation == Isolation::Pooled
            && let Some(warm) = self.lock_pool().pop()
        {
            return Ok(warm);
        }
        self.instantiate()
    }

    /// Return an instance after a call that did not trap, unless it has served its time.
    fn give_back(&self, mut warm: Warm) {
        warm.uses += 1;
        if self.limits.isolation == Isolation::PerDecision || warm.uses >= self.limits.max_uses {
            return;
        }
        let mut pool = self.lock_pool();
        if pool.len() < self.max_idle {
            pool.push(warm);
        }
    }

    fn lock_pool(&self) -> std::sync::MutexGuard<'_, Vec<Warm>> {
        // The pool holds whole instances only; a panic elsewhere cannot leave one half-pushed.
        self.pool.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new store and instance, configured by the policy's `init`.
    fn instantiate(&self) -> Result<Warm, String> {
        let state = HostState::new(
            Arc::clone(&self.name),
            Arc::clone(&self.config),
            self.limits.memory_bytes,
        );
        let mut store = Store::new(&self.runtime.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.epoch_deadline_trap();
        self.arm(&mut store);
        let instance = match self.pre.instantiate(&mut store) {
            Ok(i) => i,
            Err(e) => return Err(self.explain(&store, &e, "instantiation")),
        };
        let exports = self.indices.load(&mut store, &instance).map_err(|e| {
            format!(
                "policy `{}` does not match gavel:policy@{}: {e:#}",
                self.name,
                self.version.as_str()
            )
        })?;
        self.arm(&mut store);
        let result = exports.init(&mut store);
        store.data_mut().drain_output();
        match result {
            Ok(Ok(())) => Ok(Warm {
                store,
                exports,
                uses: 0,
            }),
            Ok(Err(error)) => Err(format!(
                "policy `{}` rejected its configuration: {}",
                self.name,
                describe_policy_error(&error)
            )),
            Err(trap) => Err(self.explain(&store, &trap, "init")),
        }
    }

    /// Reset per-call budgets and start the deadline.
    fn arm(&self, store: &mut Store<HostState>) {
        store.data_mut().begin_call();
        let ticks = self
            .limits
            .deadline
            .as_nanos()
            .div_ceil(EPOCH_TICK.as_nanos())
            .max(1);
        store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX));
    }

    /// Say what went wrong in a call that failed, naming the policy.
    fn explain(&self, store: &Store<HostState>, error: &wasmtime::Error, during: &str) -> String {
        let name = &self.name;
        if store.data().limiter.memory_hit {
            return format!(
                "policy `{name}` exceeded its {} MiB memory limit during {during}",
                self.limits.memory_bytes >> 20
            );
        }
        match error.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => format!(
                "policy `{name}` exceeded its {} ms deadline during {during}",
                self.limits.deadline.as_millis()
            ),
            Some(Trap::StackOverflow) => {
                format!("policy `{name}` exhausted its stack during {during}")
            }
            Some(Trap::UnreachableCodeReached) => format!(
                "policy `{name}` trapped during {during}: unreachable code (a panic or abort in \
                 the guest)"
            ),
            Some(trap) => format!("policy `{name}` trapped during {during}: {trap}"),
            None => format!(
                "policy `{name}` failed during {during}: {}",
                clip(&format!("{error:#}"), MAX_REASON)
            ),
        }
    }

    /// Check a decision's size and convert it. The reason and the suggestions are display
    /// text, so their size never changes the verdict: an overlong reason is cut (saying how
    /// much was cut) and an oversized suggestion set is dropped with a log line. A rule id is an
    /// identifier records are keyed on, so an overlong one is a broken policy and a `deny`.
    fn accept(&self, d: RawDecision) -> PolicyDecision {
        let name = &self.name;
        let rule_len = d.rule_id.as_ref().map_or(0, String::len);
        if rule_len > MAX_RULE_ID {
            return PolicyDecision::failed(
                FailureKind::Oversized,
                format!(
                    "policy `{name}` returned an oversized decision: a {rule_len}-byte rule id \
                     (the limit is {MAX_RULE_ID})"
                ),
            );
        }
        let rules: usize = d.suggestions.iter().map(|g| g.rules.len()).sum();
        let too_long = d.suggestions.iter().any(|g| {
            g.subject.len() > MAX_RULE_TEXT
                || g.rules
                    .iter()
                    .any(|r| r.rule.len() > MAX_RULE_TEXT || r.label.len() > MAX_RULE_TEXT)
        });
        let suggestions = if rules > MAX_SUGGESTIONS || too_long {
            tracing::warn!(
                policy = %name,
                suggestions = rules,
                "dropping the policy's suggestions: over {MAX_SUGGESTIONS} rules or a text over \
                 {MAX_RULE_TEXT} bytes"
            );
            Vec::new()
        } else {
            d.suggestions
        };
        PolicyDecision {
            verdict: d.verdict,
            reason: d.reason.map(truncate_reason).unwrap_or_default(),
            rule_id: d.rule_id,
            suggestions,
            effect: d.effect,
            risk: d.risk,
            approval_timeout_ms: d.approval_timeout_ms,
            failure: None,
        }
    }
}

/// A reason cut to [`MAX_REASON`] bytes (at a character boundary) with a marker saying how many
/// bytes were cut; a reason within the limit is returned as it is.
fn truncate_reason(reason: String) -> String {
    if reason.len() <= MAX_REASON {
        return reason;
    }
    let kept = clip(&reason, MAX_REASON);
    format!("{kept} [... {} bytes cut]", reason.len() - kept.len())
}

/// A short name for what went wrong in a failed call, for metrics.
fn failure_kind(store: &Store<HostState>, error: &wasmtime::Error) -> FailureKind {
    if store.data().limiter.memory_hit {
        return FailureKind::Memory;
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => FailureKind::Deadline,
        Some(Trap::StackOverflow) => FailureKind::Stack,
        _ => FailureKind::Trap,
    }
}

/// Refuse what is not a component before handing it to the compiler, with a message that says
/// what the file is instead.
fn check_header(bytes: &[u8]) -> Result<(), String> {
    const COMPONENT: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
    const CORE: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
    match bytes.get(..8) {
        Some(h) if h == COMPONENT => Ok(()),
        Some(h) if h == CORE => Err(
            "is a core WebAssembly module, not a component; turn it into \
                                     a component with wit-component (for example `gavel build`)"
                .into(),
        ),
        _ if bytes.starts_with(b"\0asm") => {
            Err("is WebAssembly of an unknown version; rebuild it as a component".into())
        }
        _ => Err("is not a WebAssembly component (no `\\0asm` header)".into()),
    }
}

fn describe_policy_error(error: &PolicyError) -> String {
    match error {
        PolicyError::InvalidConfig(m) => {
            format!("invalid configuration: {}", clip(m, MAX_REASON))
        }
        PolicyError::UnsupportedAction(m) => {
            format!("unsupported action: {}", clip(m, MAX_REASON))
        }
        PolicyError::Internal(m) => clip(m, MAX_REASON).to_owned(),
    }
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn clip(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{HostConfig, LimitsConfig, PolicySpec};
    use crate::interface::PolicyVerdict;

    fn runtime() -> Arc<Runtime> {
        let config = HostConfig {
            compile_cache: false,
            ..HostConfig::default()
        };
        Arc::new(Runtime::new(&config.engine_options()).unwrap())
    }

    fn load(name: &str, bytes: &[u8], config: &str) -> Result<Policy, Error> {
        let limits = PolicySpec::builtin("default-action").limits(&LimitsConfig::default());
        Policy::load(runtime(), name, bytes, config, limits)
    }

    fn default_action() -> &'static [u8] {
        crate::builtin::lookup("default-action").unwrap()
    }

    #[test]
    fn what_is_not_a_component_is_an_invalid_policy_named_in_the_error() {
        let core = wat::parse_str("(module)").unwrap();
        for bytes in [&b"not wasm at all"[..], &core] {
            let Err(e) = load("bad", bytes, "{}") else {
                panic!("loaded a non-component")
            };
            assert!(
                matches!(&e, Error::Policy { name, kind: FailureKind::Invalid, .. } if name == "bad"),
                "{e:?}"
            );
            assert!(e.to_string().starts_with("policy `bad` "), "{e}");
        }
    }

    #[test]
    fn a_configuration_the_policy_rejects_fails_the_load_as_instantiate() {
        let Err(e) = load("picky", default_action(), r#"{"action":"maybe"}"#) else {
            panic!("loaded a rejected configuration")
        };
        assert!(
            matches!(
                e,
                Error::Policy {
                    kind: FailureKind::Instantiate,
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn a_loaded_policy_decides_with_its_rule_and_identity() {
        let policy = load("p", default_action(), r#"{"action":"deny"}"#).unwrap();
        assert_eq!(policy.name(), "p");
        assert_eq!(policy.version(), InterfaceVersion::CURRENT);
        assert_eq!(policy.digest(), hex(&Sha256::digest(default_action())));
        let action = crate::action::fixtures::exec("ls", &[]);
        // Twice: the second call runs on an instance given back to the pool.
        for _ in 0..2 {
            let d = policy.decide(&Prepared::new(&action));
            assert_eq!(d.verdict, PolicyVerdict::Deny);
            assert_eq!(d.rule_id.as_deref(), Some("default-action"));
            assert_eq!(d.failure, None);
        }
    }
}
