//! Host patterns: exact names, `*.suffix` wildcards, `*`, and IP literals.

use std::net::{Ipv4Addr, Ipv6Addr};

/// One entry of a rule's `hosts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// `*`: every host.
    Any,
    /// A name or IPv4 address, lowercase, without a trailing dot.
    Exact(String),
    /// An IPv6 address (written `[::1]` or `::1`), compared as an address.
    Ipv6(Ipv6Addr),
    /// `*.example.com`: any name ending in `.example.com` (any depth), stored as the suffix
    /// with its leading dot. Not `example.com` itself.
    Subdomains(String),
}

/// A host as the rules compare it: lowercase, no trailing dot, IPv6 brackets removed.
pub(crate) fn canonical_host(host: &str) -> String {
    let lower = host.to_ascii_lowercase();
    let trimmed = lower.strip_suffix('.').unwrap_or(&lower);
    let unbracketed = trimmed
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(trimmed);
    unbracketed.to_owned()
}

fn valid_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("is empty".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '.' || *c == '-'))
    {
        return Err(if c == '*' {
            "has `*` somewhere other than a leading `*.` (or the whole pattern `*`)".into()
        } else if c == ':' {
            "has a `:` but is not an IPv6 address; a host pattern takes no port (use `ports`)"
                .into()
        } else if c == '/' {
            "has a `/`; a host pattern is a host name only (use `paths` and `schemes`)".into()
        } else {
            format!("has the character {c:?}; host names are letters, digits, `.` and `-`")
        });
    }
    if name.split('.').any(str::is_empty) {
        return Err("has an empty label (`..`, or a leading or doubled `.`)".into());
    }
    Ok(())
}

impl HostPattern {
    /// Parse a host pattern (case-insensitive; one trailing dot is ignored).
    pub fn parse(pattern: &str) -> Result<Self, String> {
        let complain = |why: String| format!("host pattern `{}` {why}", pattern.escape_debug());
        let lower = pattern.to_ascii_lowercase();
        if lower == "*" {
            return Ok(Self::Any);
        }
        if let Some(inner) = lower.strip_prefix('[') {
            let Some(address) = inner.strip_suffix(']') else {
                return Err(complain(
                    "opens `[` without closing it with `]` at the end".into(),
                ));
            };
            return address
                .parse::<Ipv6Addr>()
                .map(Self::ipv6)
                .map_err(|_| complain("is not an IPv6 address in brackets".into()));
        }
        if lower.contains(':') {
            return match lower.parse::<Ipv6Addr>() {
                Ok(address) => Ok(Self::ipv6(address)),
                Err(_) if lower.chars().filter(|c| *c == ':').count() == 1 => Err(complain(
                    "has a `:` but is not an IPv6 address; a host pattern takes no port (use `ports`)".into(),
                )),
                Err(_) => Err(complain("is not a valid IPv6 address".into())),
            };
        }
        if lower.contains(['[', ']']) {
            return Err(complain(
                "has `[` or `]` outside an IPv6 literal `[...]`".into(),
            ));
        }
        if let Some(suffix) = lower.strip_prefix("*.") {
            let suffix = suffix.strip_suffix('.').unwrap_or(suffix);
            valid_name(suffix).map_err(complain)?;
            return Ok(Self::Subdomains(format!(".{suffix}")));
        }
        let name = lower.strip_suffix('.').unwrap_or(&lower);
        valid_name(name).map_err(complain)?;
        // The host refuses numeric hosts other than dotted quads (the resolver reads
        // `2852039166` and `0251.0.0.1` as addresses), so such a pattern could never match.
        let last = name.rsplit('.').next().unwrap_or_default();
        if last.bytes().all(|b| b.is_ascii_digit())
            && !name
                .parse::<Ipv4Addr>()
                .is_ok_and(|a| a.to_string() == name)
        {
            return Err(complain(
                "is numeric but not a dotted-quad IPv4 address without leading zeros (the host \
                 refuses other spellings of addresses, so it could never match)"
                    .into(),
            ));
        }
        Ok(Self::Exact(name.to_owned()))
    }

    /// An IPv6 pattern; an IPv4-mapped address is the IPv4 address it reaches, which is how
    /// the host spells such a request.
    fn ipv6(address: Ipv6Addr) -> Self {
        match address.to_ipv4_mapped() {
            Some(v4) => Self::Exact(v4.to_string()),
            None => Self::Ipv6(address),
        }
    }

    /// Whether the host (already in [`canonical_host`] form) matches.
    pub(crate) fn matches(&self, host: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Exact(name) => host == name,
            Self::Ipv6(address) => host.parse::<Ipv6Addr>().is_ok_and(|a| a == *address),
            Self::Subdomains(suffix) => host
                .strip_suffix(suffix.as_str())
                .is_some_and(|sub| !sub.is_empty() && !sub.ends_with('.')),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_and_numeric_patterns_match_the_host_spelling() {
        assert!(matches("[::ffff:169.254.169.254]", "169.254.169.254"));
        assert!(matches("::ffff:a9fe:a9fe", "169.254.169.254"));
        assert!(matches("169.254.169.254", "169.254.169.254"));
        for numeric in ["2852039166", "0251.0.0.1", "169.254.43518", "1.2.3.4.5"] {
            assert!(HostPattern::parse(numeric).is_err(), "{numeric}");
        }
    }

    fn matches(pattern: &str, host: &str) -> bool {
        HostPattern::parse(pattern)
            .unwrap()
            .matches(&canonical_host(host))
    }

    #[test]
    fn exact_names_ignore_case_and_a_trailing_dot() {
        assert!(matches("api.github.com", "api.github.com"));
        assert!(matches("API.GitHub.com", "api.github.com"));
        assert!(matches("api.github.com.", "API.GITHUB.COM."));
        assert!(!matches("api.github.com", "github.com"));
        assert!(!matches("api.github.com", "api.github.com.evil.com"));
        assert!(!matches("github.com", "evilgithub.com"));
    }

    #[test]
    fn wildcards_match_subdomains_at_any_depth_but_not_the_domain() {
        assert!(matches("*.github.com", "api.github.com"));
        assert!(matches("*.github.com", "a.b.c.github.com"));
        assert!(matches("*.GITHUB.com.", "x.github.com"));
        assert!(!matches("*.github.com", "github.com"));
        assert!(!matches("*.github.com", "evilgithub.com"));
        assert!(!matches("*.github.com", "api.github.com.evil.com"));
        assert!(!matches("*.github.com", ".github.com"));
        assert!(!matches("*.github.com", "a..github.com"));
    }

    #[test]
    fn star_matches_every_host() {
        assert!(matches("*", "anything.example"));
        assert!(matches("*", "10.0.0.1"));
    }

    #[test]
    fn ip_literals_are_exact() {
        assert!(matches("10.0.0.1", "10.0.0.1"));
        assert!(!matches("10.0.0.1", "10.0.0.10"));
        assert!(matches("[::1]", "::1"));
        assert!(matches("[::1]", "[::1]"));
        assert!(matches("::1", "[0:0:0:0:0:0:0:1]"));
        assert!(matches("[2001:DB8::1]", "2001:db8:0::1"));
        assert!(!matches("[::1]", "::2"));
        assert!(!matches("[::1]", "localhost"));
    }

    #[test]
    fn malformed_patterns_are_rejected_with_a_reason() {
        for (p, why) in [
            ("", "is empty"),
            ("*.", "is empty"),
            ("*github.com", "`*`"),
            ("api.*.com", "`*`"),
            ("**.github.com", "`*`"),
            ("*.*.com", "`*`"),
            ("a..b", "empty label"),
            (".github.com", "empty label"),
            ("github.com..", "empty label"),
            ("example.com:443", "no port"),
            ("https://example.com", "no port"),
            ("example.com/x", "`/`"),
            ("exa_mple.com", "'_'"),
            ("ex ample.com", "' '"),
            ("[::1", "closing"),
            ("[nope]", "IPv6"),
            ("1::2::3", "IPv6"),
            ("a]b", "`[`"),
        ] {
            let err = HostPattern::parse(p).unwrap_err();
            assert!(err.contains(why), "{p:?}: {err}");
        }
    }
}
