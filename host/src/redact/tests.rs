use super::*;
use crate::action::{Connect, Header, HttpRequest};
use serde::Deserialize;

/// The text cases: what [`text`] must leave as it is, and what it must make of other inputs.
const CORPUS: &str = include_str!("../../../tests/fixtures/redaction.json");

#[derive(Deserialize)]
struct Corpus {
    unchanged: Vec<Unchanged>,
    masked: Vec<Masked>,
}

/// Texts with nothing secret in them, or nothing these rules can tell is secret.
#[derive(Deserialize)]
struct Unchanged {
    texts: Vec<String>,
}

/// Inputs, and what [`text`] makes of them.
#[derive(Deserialize)]
struct Masked {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    input: String,
    expected: String,
}

#[test]
fn text_cases() {
    let corpus: Corpus = serde_json::from_str(CORPUS).expect("tests/fixtures/redaction.json");
    let unchanged = corpus
        .unchanged
        .iter()
        .flat_map(|g| &g.texts)
        .map(|s| (s.as_str(), s.as_str()));
    let masked = corpus
        .masked
        .iter()
        .flat_map(|g| &g.cases)
        .map(|c| (c.input.as_str(), c.expected.as_str()));
    let mut failures = Vec::new();
    for (input, expected) in unchanged.chain(masked) {
        let got = text(input);
        if got != expected {
            failures.push(format!(
                "  {input:?}\n    got      {got:?}\n    expected {expected:?}"
            ));
        }
        assert_eq!(text(&got), got, "not idempotent on {input:?}");
    }
    assert!(
        failures.is_empty(),
        "{} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn exec(args: &[&str]) -> Action {
    run("/usr/bin/tool", args)
}

fn run(executable: &str, args: &[&str]) -> Action {
    Action::LocalExec(LocalExec {
        executable: executable.into(),
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        session_id: "sess_1".into(),
        sandbox_id: "sbx_1".into(),
        agent_id: Some("agent_1".into()),
        profile: "default".into(),
        hitl_mode: "async_token".into(),
    })
}

fn tool(arg: &str) -> Action {
    Action::ToolCall(ToolCall {
        tool: "run_command".into(),
        arg: arg.into(),
        session_id: "sess_1".into(),
        sandbox_id: "sbx_1".into(),
        agent_id: None,
        project_id: None,
        project_root: None,
        cwd: None,
    })
}

fn http(path: &str, query: Option<&str>, headers: &[(&str, &str)]) -> Action {
    Action::HttpRequest(HttpRequest {
        method: "GET".into(),
        scheme: "https".into(),
        host: "api.example.com".into(),
        port: 443,
        path: path.into(),
        query: query.map(Into::into),
        headers: headers
            .iter()
            .map(|(n, v)| Header {
                name: (*n).into(),
                value: (*v).into(),
            })
            .collect(),
        body_size: Some(12),
        session_id: "sess_1".into(),
        sandbox_id: "sbx_1".into(),
        agent_id: None,
    })
}

fn upgrade(path: &str) -> Action {
    Action::Upgrade(Upgrade {
        host: "ws.example.com".into(),
        path: path.into(),
        protocol: "websocket".into(),
        session_id: "sess_1".into(),
        sandbox_id: "sbx_1".into(),
        agent_id: None,
    })
}

#[test]
fn exec_args_mask_the_value_after_a_secret_flag() {
    let a = exec(&[
        "--token",
        "abc123",
        "--password",
        "-starts-with-dash",
        "--api-key",
        "--verbose",
        "-u",
        "bob:hunter2",
        "--secret",
        "https://example.com/",
        "--password=x",
        "-H",
        "Authorization: Bearer y",
        "GITHUB_TOKEN=z",
        "--token-file",
        "/run/t",
        "-p",
        "plain",
        "--token",
    ]);
    let Action::LocalExec(e) = action(&a) else {
        panic!("kind changed")
    };
    assert_eq!(
        e.args,
        [
            "--token",
            "***",
            "--password",
            "***",
            "--api-key",
            "--verbose",
            "-u",
            "bob:***",
            "--secret",
            "https://example.com/",
            "--password=***",
            "-H",
            "Authorization: Bearer ***",
            "GITHUB_TOKEN=***",
            "--token-file",
            "/run/t",
            "-p",
            "plain",
            "--token",
        ]
    );
    assert_eq!(e.executable, "/usr/bin/tool");
    assert_eq!(e.session_id, "sess_1");
    assert_eq!(e.agent_id.as_deref(), Some("agent_1"));
    assert_eq!(
        summary(&exec(&["sh", "-c", "curl -u me:pw https://x.io/?sig=s"])),
        "/usr/bin/tool sh -c curl -u me:*** https://x.io/?sig=***"
    );
}

#[test]
fn exec_args_mask_the_flags_of_known_programs() {
    let cases: &[(&str, &[&str], &[&str])] = &[
        (
            "/usr/bin/mysql",
            &["-uroot", "-phunter2", "shop"],
            &["-uroot", "-p***", "shop"],
        ),
        (
            "mysql",
            &["-u", "root", "-p", "shop"],
            &["-u", "root", "-p", "shop"],
        ),
        ("sudo", &["mysql", "-phunter2"], &["mysql", "-p***"]),
        (
            "sshpass",
            &["-p", "hunter2", "ssh", "-p", "2222", "h"],
            &["-p", "***", "ssh", "-p", "2222", "h"],
        ),
        (
            "docker",
            &["login", "-u", "me", "-p", "hunter2", "reg.io"],
            &["login", "-u", "me", "-p", "***", "reg.io"],
        ),
        (
            "docker",
            &["run", "-p", "8080:80", "nginx"],
            &["run", "-p", "8080:80", "nginx"],
        ),
        (
            "redis-cli",
            &["-a", "hunter 2", "-u", "redis://:pw@h:6379", "ping"],
            &["-a", "***", "-u", "redis://:***@h:6379", "ping"],
        ),
        (
            "openssl",
            &["pkcs12", "-passout", "pass:hunter2", "-passin", "env:PW"],
            &["pkcs12", "-passout", "pass:***", "-passin", "env:PW"],
        ),
        (
            "curl",
            &[
                "-ubob:pw1",
                "--proxy-user",
                "bob:pw2",
                "-U",
                "bob:pw3",
                "-Ubob:pw4",
                "-H",
                "X-Api-Key:k1",
                "--header=X-Functions-Key:k2",
            ],
            &[
                "-ubob:***",
                "--proxy-user",
                "bob:***",
                "-U",
                "bob:***",
                "-Ubob:***",
                "-H",
                "X-Api-Key:***",
                "--header=X-Functions-Key:***",
            ],
        ),
        (
            "pip",
            &["install", "-U", "requests"],
            &["install", "-U", "requests"],
        ),
        (
            "psql",
            &["-U", "postgres", "shop"],
            &["-U", "postgres", "shop"],
        ),
    ];
    for (executable, args, expected) in cases {
        let a = run(executable, args);
        let Action::LocalExec(e) = action(&a) else {
            panic!("kind changed")
        };
        assert_eq!(&e.args, expected, "{executable} {args:?}");
        assert_eq!(action(&action(&a)), action(&a), "not idempotent: {a:?}");
    }
}

#[test]
fn tool_call_arg_goes_through_the_text_rules() {
    let a = tool("curl -H 'Authorization: Bearer x1' https://u:p1@h.io/?token=y1&page=2");
    assert_eq!(
        summary(&a),
        "run_command(curl -H 'Authorization: Bearer ***' https://u:***@h.io/?token=***&page=2)"
    );
}

#[test]
fn http_request_masks_headers_query_and_token_formats_in_the_path() {
    let a = http(
        "/v1/ghp_abcdefghijklmnopqrstuvwxyz0123/repos",
        Some("access_token=t1&page=2&redirect=https://u:p@x.io/&API%5FKEY=k&empty_token="),
        &[
            ("authorization", "Bearer t2"),
            ("proxy-authorization", "Basic dXNlcjpwYXNz"),
            ("cookie", "sid=s1; theme=dark"),
            ("x-api-key", "k1"),
            ("x-upstream-session", "s2"),
            ("accept", "application/json"),
            ("referer", "https://app.example.com/?code=c1"),
            ("authorization", "t3"),
            ("x-auth-token", ""),
        ],
    );
    let Action::HttpRequest(h) = action(&a) else {
        panic!("kind changed")
    };
    let headers: Vec<(&str, &str)> = h
        .headers
        .iter()
        .map(|h| (h.name.as_str(), h.value.as_str()))
        .collect();
    assert_eq!(
        headers,
        [
            ("authorization", "Bearer ***"),
            ("proxy-authorization", "Basic ***"),
            ("cookie", "sid=***; theme=***"),
            ("x-api-key", "***"),
            ("x-upstream-session", "***"),
            ("accept", "application/json"),
            ("referer", "https://app.example.com/?code=***"),
            ("authorization", "***"),
            ("x-auth-token", ""),
        ]
    );
    assert_eq!(
        h.url(),
        "https://api.example.com/v1/***/repos?access_token=***&page=2\
         &redirect=https://u:***@x.io/&API%5FKEY=***&empty_token="
    );
    assert_eq!(summary(&a), action(&a).summary());
}

#[test]
fn http_request_masks_key_headers_and_bare_cookies() {
    let a = http(
        "/",
        None,
        &[
            ("ocp-apim-subscription-key", "k1"),
            ("x-functions-key", "k2"),
            ("cookie", "opaque-value"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("idempotency-key", "8e03978e"),
            ("x-public-key", "pk"),
        ],
    );
    let Action::HttpRequest(h) = action(&a) else {
        panic!("kind changed")
    };
    let values: Vec<&str> = h.headers.iter().map(|h| h.value.as_str()).collect();
    assert_eq!(
        values,
        [
            "***",
            "***",
            "***",
            "dGhlIHNhbXBsZSBub25jZQ==",
            "8e03978e",
            "pk"
        ]
    );
}

#[test]
fn upgrade_path_gets_the_query_rules_and_connect_is_unchanged() {
    assert_eq!(
        summary(&upgrade("/socket?token=abc&v=2")),
        "UPGRADE websocket ws.example.com/socket?token=***&v=2"
    );
    assert_eq!(
        summary(&upgrade("/socket")),
        "UPGRADE websocket ws.example.com/socket"
    );
    let c = Action::Connect(Connect {
        host: "token.example.com".into(),
        port: 443,
        session_id: "s".into(),
        sandbox_id: "b".into(),
        agent_id: None,
    });
    assert_eq!(action(&c), c);
}

/// Secrets without a recognizable format: caught by where they are.
const PLAIN_SECRETS: &[&str] = &[
    "hunter2-Secret",
    "wJalrXUtnFEMI/K7MDENG+bPxRfiCY",
    "pä55wörd",
];

/// Secrets caught by their format, wherever they are.
const FORMATTED_SECRETS: &[&str] = &[
    "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuv",
    "gho_16C7e42F292c6912E7710c838347Ae178B4a",
    "glpat-abcdefghij0123456789",
    "xoxb-123456789012-1234567890123-abcdefghijkl",
    "xoxp-123456789012-abcdefghijkl",
    "AKIAIOSFODNN7EXAMPLE",
    "ASIAY34FZKBOKMUTVV7A",
    "sk-proj-abcdefghijklmnopqrst0123456789",
    "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123",
    "sk_live_abcdefghij0123456789",
    "AIzaSyA-abcdefghijklmnopqrstuvwxyz012345",
    "npm_abcdefghijklmnopqrstuvwxyz0123456789",
    "hf_abcdefghijklmnopqrstuvwxyzABCDEFGH",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlLXRoYXQtaXMtbG9uZw",
];

/// Actions that put `s` where a secret is recognized by its place.
fn placed(s: &str) -> Vec<Action> {
    vec![
        exec(&["--password", s]),
        exec(&["-password", s]),
        exec(&["--api-key", s]),
        exec(&[&format!("--token={s}")]),
        exec(&[&format!("GITHUB_TOKEN={s}"), "gh"]),
        exec(&["-H", &format!("Authorization: Bearer {s}")]),
        exec(&["-H", &format!("X-Api-Key: {s}")]),
        exec(&["-u", &format!("bob:{s}")]),
        exec(&[&format!("https://bob:{s}@example.com/")]),
        exec(&[&format!("https://x.io/?access_token={s}&a=1")]),
        exec(&["sh", "-c", &format!("PGPASSWORD='{s}' psql")]),
        tool(&format!(
            "curl -H 'Authorization: Bearer {s}' https://x.io/"
        )),
        tool(&format!("curl -H \"Cookie: sid={s}; a=b\" https://x.io/")),
        tool(&format!("curl https://u:{s}@h.io/?token={s}")),
        tool(&format!("mysql --password={s} db")),
        tool(&format!("deploy --token {s} --now")),
        tool(&format!("export AWS_SECRET_ACCESS_KEY={s}")),
        tool(&format!("{{\"client_secret\": \"{s}\", \"n\": 1}}")),
        tool(&format!("password: {s}")),
        tool(&format!("api_key = \"{s}\"")),
        // The rules of the security review (R1 to R6).
        tool(&format!("curl -d \"{{\\\"password\\\": \\\"{s}\\\"}}\" x")),
        tool(&format!("{{\"body\":\"{{\\\"token\\\":\\\"{s}\\\"}}\"}}")),
        tool(&format!("cat > c <<EOF\naws_secret_access_key = {s}\nEOF")),
        tool(&format!("curl -H Authorization:{s} x")),
        tool(&format!("curl --header=X-Api-Key:{s} x")),
        tool(&format!("http x.io Authorization:'Bearer {s}'")),
        tool(&format!("mysql -u root -p{s} shop")),
        tool(&format!("docker login -u me -p {s} reg.io")),
        tool(&format!("sshpass -p {s} ssh h")),
        tool(&format!("redis-cli -a {s} ping")),
        tool(&format!("openssl pkcs12 -passout pass:{s}")),
        tool(&format!("curl -ubob:{s} x")),
        tool(&format!("curl --proxy-user bob:{s} x")),
        tool(&format!("curl -U bob:{s} x")),
        tool(&format!("curl -H 'Ocp-Apim-Subscription-Key: {s}' x")),
        tool(&format!("curl -H 'Cookie: {s}' x")),
        tool(&format!("redis-cli -u redis://:{s}@h:6379")),
        run("mysql", &[&format!("-p{s}")]),
        run("sshpass", &["-p", s, "ssh", "h"]),
        run("redis-cli", &["-a", s]),
        run("curl", &["-U", &format!("bob:{s}")]),
        http("/", None, &[("x-functions-key", s)]),
        http("/", None, &[("cookie", s)]),
        http("/", Some(&format!("token={s}&page=2")), &[]),
        http("/", Some(&format!("sig={s}")), &[]),
        http("/", None, &[("authorization", &format!("Bearer {s}"))]),
        http("/", None, &[("x-api-key", s)]),
        http("/", None, &[("cookie", &format!("a=1; sid={s}"))]),
        http(
            "/",
            None,
            &[("referer", &format!("https://x.io/?code={s}"))],
        ),
        upgrade(&format!("/ws?token={s}")),
    ]
}

/// Actions that put `s` where only its format gives it away.
fn anywhere(s: &str) -> Vec<Action> {
    vec![
        exec(&[s]),
        exec(&["-d", &format!("{{\"k\":\"{s}\"}}")]),
        tool(&format!("echo {s}")),
        tool(&format!("git push https://{s}@github.com/o/r.git")),
        tool(&format!("echo \"{s}\" | gh auth login --with-token")),
        http(&format!("/bot/{s}/send"), None, &[("x-debug", s)]),
        http("/", Some(&format!("q={s}")), &[]),
        upgrade(&format!("/ws/{s}")),
    ]
}

#[test]
fn no_known_secret_survives() {
    let formatted = FORMATTED_SECRETS.iter().flat_map(|s| {
        let mut all = placed(s);
        all.extend(anywhere(s));
        all.into_iter().map(move |a| (*s, a))
    });
    let plain = PLAIN_SECRETS
        .iter()
        .flat_map(|s| placed(s).into_iter().map(move |a| (*s, a)));
    let mut checked = 0;
    for (secret, a) in formatted.chain(plain) {
        let shown = summary(&a);
        let stored = format!("{:?}", action(&a));
        assert!(!shown.contains(secret), "{secret} survives in {shown}");
        assert!(!stored.contains(secret), "{secret} survives in {stored}");
        assert_eq!(action(&action(&a)), action(&a), "not idempotent: {a:?}");
        checked += 1;
    }
    assert!(checked > 400, "{checked}");
}

/// A tiny deterministic generator (xorshift64*), so the property tests need no crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n).unwrap_or(1)).unwrap_or(0)
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len())]
    }
}

/// Pieces that exercise every rule, and what tends to break scanners.
const PIECES: &[&str] = &[
    "token",
    "TOKEN",
    "GITHUB_TOKEN",
    "password",
    "Authorization",
    "authorization",
    "Proxy-Authorization",
    "Cookie",
    "set-cookie",
    "Bearer",
    "bearer",
    "Basic",
    "-u",
    "--user",
    "--token",
    "--password",
    "-password",
    "--no-auth",
    "--password-file",
    "api_key",
    "X-Api-Key",
    "secret",
    "session",
    "key",
    "sig",
    "code",
    "user",
    "pwd",
    "=",
    "==",
    ":",
    ": ",
    "://",
    "https://",
    "http",
    "@",
    "?",
    "&",
    "#",
    ";",
    "|",
    "<",
    ">",
    "(",
    ")",
    "{",
    "}",
    "[",
    "]",
    ",",
    "$",
    "$(",
    "`",
    "\\",
    "\\n",
    "\\r",
    "\\t",
    "\\\"",
    "\"",
    "'",
    " ",
    "  ",
    "\t",
    "\n",
    "\r\n",
    "-",
    "--",
    "_",
    ".",
    "/",
    "%",
    "%5F",
    "%4",
    "+",
    "*",
    "***",
    "ghp_",
    "github_pat_",
    "xoxb-",
    "sk-",
    "sk_live_",
    "AKIA",
    "ASIA",
    "AIza",
    "eyJ",
    "glpat-",
    "npm_",
    "hf_",
    "-----BEGIN ",
    "PRIVATE KEY",
    "RSA PRIVATE KEY",
    "-----",
    "-----END ",
    "Proc-Type: 4,ENCRYPTED",
    "abcdefghijklmnopqrst",
    "ABCDEFGHIJKLMNOP0123",
    "0123456789",
    "MIIEowIBAAKCAQEAvq3Xyz0123456789abcdefghijklmnopqrstuvwxyzAB",
    "abc",
    "x",
    "A",
    "é",
    "пароль",
    "🔑",
    "秘",
    "\u{0}",
    "\u{7f}",
    "\u{a0}",
    "\u{2028}",
    // Programs, flags and forms of the command and config rules.
    "mysql",
    "/usr/bin/mysql",
    "-p",
    "-phunter2",
    "sshpass",
    "redis-cli",
    "-a",
    "--pass",
    "docker",
    "login",
    "curl",
    "http",
    "-U",
    "-ubob:",
    "--proxy-user",
    "-passin",
    "pass:",
    "env:",
    "-H",
    "-H ",
    "--header=",
    "X-Functions-Key",
    "Sec-WebSocket-Key",
    "\\",
    "\\\\\\\"",
    "\\\"password\\\": \\\"",
    " = ",
    "=",
    " : ",
    "<<<",
    "<<EOF\n",
    "self.",
    "None",
    "()",
    "0123456789abcdef0123456789abcdef01234567",
    "redis://",
    "https://0123456789abcdef01234@",
];

fn generated(rng: &mut Rng) -> String {
    let mut s = String::new();
    for _ in 0..rng.below(40) {
        match rng.below(8) {
            0 => {
                // A few arbitrary characters, ASCII or not.
                for _ in 0..rng.below(4) {
                    let c = u32::try_from(rng.below(0x250)).unwrap_or(0);
                    s.push(char::from_u32(c).unwrap_or('?'));
                }
            }
            _ => s.push_str(rng.pick(PIECES)),
        }
    }
    s
}

#[test]
fn text_never_panics_and_is_idempotent() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..20_000 {
        let input = generated(&mut rng);
        let once = text(&input);
        assert_eq!(text(&once), once, "not idempotent on {input:?}");
        assert!(
            !once.contains('\u{fffd}'),
            "cut inside a character: {input:?} -> {once:?}"
        );
    }
}

#[test]
fn actions_never_panic_and_are_idempotent() {
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    for _ in 0..3_000 {
        let args: Vec<String> = (0..rng.below(6)).map(|_| generated(&mut rng)).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let names = [
            "authorization",
            "cookie",
            "x-api-key",
            "accept",
            "referer",
            "x-session",
        ];
        let values: Vec<String> = (0..3).map(|_| generated(&mut rng)).collect();
        let headers: Vec<(&str, &str)> = values
            .iter()
            .map(|v| (rng.pick(&names), v.as_str()))
            .collect();
        let (path, query, arg) = (
            generated(&mut rng),
            generated(&mut rng),
            generated(&mut rng),
        );
        for a in [
            exec(&args),
            tool(&arg),
            http(&path, Some(&query), &headers),
            upgrade(&format!("/{path}?{query}")),
        ] {
            let once = action(&a);
            assert_eq!(action(&once), once, "not idempotent on {a:?}");
            let _ = summary(&a);
        }
    }
}

#[test]
fn large_adversarial_inputs_take_linear_time() {
    const SIZE: usize = 64 * 1024;
    let units = [
        "sk-",
        "sk-a",
        "eyJ-",
        "eyJaaaaaaaaaaa.",
        "eyJaaaaaaaaaaa.aa",
        "ghp_",
        "AKIA",
        "TOKEN=",
        "a=",
        "--token ",
        "--token",
        "Authorization: ",
        "\"password\": ",
        "\"TOKEN=",
        "?token=",
        "&token",
        "?",
        "https://",
        "a://b@",
        "https://u:",
        "-----BEGIN PRIVATE KEY-----",
        "-----BEGIN ",
        "-----BEGIN PRIVATE KEY-----\nMIIEowIBAAKCAQEAvq3Xyz0123456789abcdefghijkl",
        "'",
        "\"",
        "\\n",
        "x:",
        "Cookie: a=b ",
        "Bearer ",
        "-u ",
        "$(",
        "token = ",
        "a",
        "é",
        "🔑",
        "https://a:b/",
        "a:b/c://d:e/",
        "\"Authorization: Bearer ",
        "PRIVATE KEY-----\nMIIEowIBAAKCAQEAvq3Xyz0123456789abcdefghijkl\n",
        "?a%",
        "--password -",
        "\\\"token\\\": \\\"",
        "\\\\\\\"token\\\\\\\": \\\\\\\"",
        "\\\"token\\\"",
        "\\",
        "\npassword = ",
        "\npassword = a",
        "password = a\n",
        "-H ",
        "-H a:",
        "--header=X-Api-Key:",
        "mysql -p",
        "mysql -pa ",
        "sshpass -p ",
        "redis-cli -a \"",
        "docker login -p ",
        "-passin pass:",
        "curl -U ",
        "-ua:",
        "https://0123456789abcdef0123@",
        "https://0123456789abcdef0123",
        "http X-Api-Key:a ",
        "Cookie: a ",
        "-passin \" ",
        "-passin '\\\"",
        "redis-cli -a \\\"x",
        "\\\\\\\"a\\\\\\\": \\\\\\\"",
        "\\\\\\\\",
        "-H  ",
        " \\n password = (",
    ];
    for unit in units {
        let input = unit.repeat(SIZE / unit.len() + 1);
        let started = std::time::Instant::now();
        let once = text(&input);
        let elapsed = started.elapsed();
        assert_eq!(text(&once), once, "not idempotent on {unit:?} repeated");
        // Quadratic behaviour on 64 KiB takes minutes in a debug build; linear, milliseconds.
        assert!(elapsed.as_secs() < 2, "{unit:?} repeated took {elapsed:?}");
    }
}
