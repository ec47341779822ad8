//! Prometheus metrics: decisions by verdict and policy, decision latency, policy failures,
//! management outcomes, live tokens by state, and reloads.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    /// The wire action: `local.exec`, `tool.call`, `http.request`, `connect`, `upgrade`.
    action: &'static str,
    verdict: &'static str,
    policy: PolicyName,
}

/// A policy's name as a label value, shared rather than copied on every decision.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub(crate) struct PolicyName(pub(crate) std::sync::Arc<str>);

impl prometheus_client::encoding::EncodeLabelValue for PolicyName {
    fn encode(
        &self,
        encoder: &mut prometheus_client::encoding::LabelValueEncoder<'_>,
    ) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, &self.0)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    policy: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    action: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

/// The host's metrics.
pub struct Metrics {
    registry: Registry,
    decisions: Family<DecisionLabels, Counter>,
    latency: Histogram,
    failures: Family<FailureLabels, Counter>,
    management: Family<OutcomeLabels, Counter>,
    tokens: Family<StateLabels, Gauge>,
    reloads: Family<ResultLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("gavel");
        let decisions = Family::<DecisionLabels, Counter>::default();
        registry.register(
            "decisions",
            "Decisions by verdict and deciding policy",
            decisions.clone(),
        );
        // 1 us .. ~16 s in powers of 4.
        let latency = Histogram::new([
            1e-6, 4e-6, 16e-6, 64e-6, 256e-6, 1e-3, 4e-3, 16e-3, 64e-3, 0.256, 1.0, 4.0, 16.0,
        ]);
        registry.register(
            "decision_latency_seconds",
            "Time to answer a governance request",
            latency.clone(),
        );
        let failures = Family::<FailureLabels, Counter>::default();
        registry.register(
            "policy_failures",
            "Policy traps, timeouts, limit hits and errors",
            failures.clone(),
        );
        let management = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "management",
            "Management operations by action and outcome",
            management.clone(),
        );
        let tokens = Family::<StateLabels, Gauge>::default();
        registry.register("tokens", "Live approval tokens by state", tokens.clone());
        let reloads = Family::<ResultLabels, Counter>::default();
        registry.register("reloads", "Policy chain reloads by result", reloads.clone());
        Self {
            registry,
            decisions,
            latency,
            failures,
            management,
            tokens,
            reloads,
        }
    }
}

impl Metrics {
    pub(crate) fn decision(
        &self,
        action: &'static str,
        verdict: &'static str,
        policy: std::sync::Arc<str>,
        seconds: f64,
    ) {
        self.decisions
            .get_or_create(&DecisionLabels {
                action,
                verdict,
                policy: PolicyName(policy),
            })
            .inc();
        self.latency.observe(seconds);
    }

    pub(crate) fn failure(&self, policy: &str, kind: &str) {
        self.failures
            .get_or_create(&FailureLabels {
                policy: policy.into(),
                kind: kind.into(),
            })
            .inc();
    }

    pub(crate) fn management(&self, action: &str, outcome: &str) {
        self.management
            .get_or_create(&OutcomeLabels {
                action: action.into(),
                outcome: outcome.into(),
            })
            .inc();
    }

    pub(crate) fn reload(&self, ok: bool) {
        let result = if ok { "ok" } else { "failed" };
        self.reloads
            .get_or_create(&ResultLabels {
                result: result.into(),
            })
            .inc();
    }

    /// Set the live-token gauges (pending, approved).
    pub fn set_tokens(&self, pending: i64, approved: i64) {
        self.tokens
            .get_or_create(&StateLabels {
                state: "pending".into(),
            })
            .set(pending);
        self.tokens
            .get_or_create(&StateLabels {
                state: "approved".into(),
            })
            .set(approved);
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
