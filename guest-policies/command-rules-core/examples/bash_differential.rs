//! The bash-differential test of `builtin:command-rules`: generated commands are judged by the
//! policy and run in real bash, and the property is checked:
//!
//! **if the policy allows a command, bash ran only simple commands that the rules allow as
//! written.**
//!
//! Each command is judged twice, as a `run_command` tool call and as a local-exec of
//! `bash -c SCRIPT`. It then runs in bash inside the sandbox of `bash_sandbox/mod.rs` (shared
//! with the `bash_agrees` fuzz target; root needed): private mount and network namespaces, a
//! read-only copy of the host's tree chrooted into, where every program in `/usr/bin`,
//! `/usr/sbin`, `/usr/local/bin` and `/usr/local/sbin` (so also `/bin/rm`, `/sbin/...`) is a
//! logging stand-in; the stand-ins for programs that run other programs (`awk`, `sed`, `find`,
//! `xargs`, `env`, `timeout`, `sh`, `perl`, ...) log and then run the real program, so what
//! those run is logged too. Each case runs as `nobody` and gets a fresh directory on a tmpfs as
//! its working directory and `HOME`, an empty environment, `/dev/null` as stdin, a private
//! `/dev` and a time limit; it ends when its whole process group has. Every program a case ran
//! is then judged as a local-exec of its argument vector: a case the policy allowed that ran
//! anything the rules do not allow is a violation.
//!
//! Run: `cargo run --release -p command-rules-core --example bash_differential` (as root).
//! Environment: `GAVEL_DIFF_CASES` (default 3000), `GAVEL_DIFF_SEED`, `GAVEL_DIFF_JOBS`
//! (default 2), `GAVEL_DIFF_RULES` (a corpus file with `rules`; default
//! `tests/fixtures/commands.json`), `GAVEL_DIFF_SAMPLE` (write this many judged cases, as a
//! `gavel test` corpus, to `GAVEL_DIFF_SAMPLE_OUT`, so the wasm guest is held to the same
//! verdicts). Exit status 1 on any violation.

mod bash_sandbox;

use bash_sandbox::Sandbox;
use command_rules_core::{Config, Policy, Request, Verdict};
use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// How long one case may run.
const CASE_TIMEOUT: Duration = Duration::from_secs(3);

type Failure = Box<dyn std::error::Error>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("--batch") => match (args.get(2), args.get(3)) {
            (Some(input), Some(output)) => run_batch(Path::new(input), Path::new(output)),
            _ => Err("usage: bash_differential --batch CASES OUT".into()),
        },
        _ => drive(),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("bash_differential: {e}");
            ExitCode::from(2)
        }
    }
}

fn env_number(name: &str, default: u64) -> Result<u64, Failure> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .map_err(|_| format!("{name} must be a whole number, not `{v}`").into()),
        Err(_) => Ok(default),
    }
}

/// The policy configuration: the `rules` of a corpus file.
fn load_policy() -> Result<(Policy, serde_json::Value), Failure> {
    let path = std::env::var("GAVEL_DIFF_RULES").unwrap_or_else(|_| {
        format!(
            "{}/../../tests/fixtures/commands.json",
            env!("CARGO_MANIFEST_DIR")
        )
    });
    let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read `{path}`: {e}"))?;
    let corpus: serde_json::Value = serde_json::from_str(&text)?;
    let rules = corpus
        .get("rules")
        .cloned()
        .ok_or_else(|| format!("`{path}` has no `rules`"))?;
    let config: Config = serde_json::from_value(rules.clone())?;
    Ok((Policy::new(config)?, rules))
}

/// The two verdicts of one command: as a tool call and as `bash -c`.
fn judge(policy: &Policy, cmd: &str) -> (Verdict, Verdict) {
    let tool = policy.evaluate(&Request::tool("run_command", cmd)).verdict;
    let argv = ["-c".to_owned(), cmd.to_owned()];
    let exec = policy.evaluate(&Request::exec("/bin/bash", &argv)).verdict;
    (tool, exec)
}

fn drive() -> Result<bool, Failure> {
    let cases = env_number("GAVEL_DIFF_CASES", 3000)? as usize;
    let seed = env_number("GAVEL_DIFF_SEED", 0x5eed_cafe)?;
    let jobs = env_number("GAVEL_DIFF_JOBS", 2)?.max(1) as usize;
    let (policy, rules) = load_policy()?;
    let started = Instant::now();

    let mut generator = Generator::new(seed);
    let mut commands: Vec<String> = seeds().into_iter().map(str::to_owned).collect();
    while commands.len() < cases {
        commands.push(generator.case());
    }
    let verdicts: Vec<(Verdict, Verdict)> = commands.iter().map(|c| judge(&policy, c)).collect();
    let judged = started.elapsed();

    // Run every case in bash, in batches, `jobs` namespaces at a time.
    let dir = std::env::temp_dir().join(format!("gavel-diff-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let exe = std::env::current_exe()?;
    let batch_size = commands.len().div_ceil(jobs * 4).clamp(1, 1000);
    let batches: Vec<(usize, &[String])> = commands
        .chunks(batch_size)
        .enumerate()
        .map(|(i, c)| (i * batch_size, c))
        .collect();
    let mut ran: HashMap<usize, Vec<Vec<String>>> = HashMap::new();
    let mut timeouts = 0usize;
    for group in batches.chunks(jobs) {
        let mut children = Vec::new();
        for (start, chunk) in group {
            let input = dir.join(format!("in-{start}"));
            let output = dir.join(format!("out-{start}"));
            let mut f = std::fs::File::create(&input)?;
            for (k, c) in chunk.iter().enumerate() {
                writeln!(f, "{}", serde_json::json!({"i": start + k, "cmd": c}))?;
            }
            let child = Command::new(&exe)
                .arg("--batch")
                .arg(&input)
                .arg(&output)
                .stdin(Stdio::null())
                .spawn()
                .map_err(|e| format!("cannot start a batch: {e}"))?;
            children.push((child, output));
        }
        for (mut child, output) in children {
            let status = child.wait()?;
            // The batch's sandbox mount point, empty outside its namespace.
            let _ = std::fs::remove_dir(
                std::env::temp_dir().join(format!("gavel-diff-ns-{}", child.id())),
            );
            if !status.success() {
                return Err(format!("a batch failed ({status}); run as root").into());
            }
            for line in std::fs::read_to_string(&output)?.lines() {
                let v: serde_json::Value = serde_json::from_str(line)?;
                let i = v["i"].as_u64().unwrap_or(u64::MAX) as usize;
                if v["timeout"].as_bool() == Some(true) {
                    timeouts += 1;
                }
                let argvs: Vec<Vec<String>> = serde_json::from_value(v["ran"].clone())?;
                ran.insert(i, argvs);
            }
        }
    }
    std::fs::remove_dir_all(&dir)?;

    // The property, and what the counts say.
    let mut allowed = 0usize;
    let mut ran_denied = 0usize;
    let mut ran_denied_allowed = 0usize;
    let mut violations = 0usize;
    let mut exec_cache: HashMap<Vec<String>, Verdict> = HashMap::new();
    for (i, cmd) in commands.iter().enumerate() {
        let (tool, exec) = verdicts[i];
        let argvs = ran.get(&i).cloned().unwrap_or_default();
        let mut worst = Verdict::Allow;
        let mut offender = None;
        for argv in &argvs {
            let v = *exec_cache.entry(argv.clone()).or_insert_with(|| {
                let (program, args) = argv
                    .split_first()
                    .map_or(("", &[][..]), |(p, a)| (p.as_str(), a));
                policy.evaluate(&Request::exec(program, args)).verdict
            });
            if v != Verdict::Allow && offender.is_none() {
                offender = Some(argv.clone());
            }
            if v == Verdict::Deny || (v == Verdict::Ask && worst == Verdict::Allow) {
                worst = v;
            }
        }
        let any_allowed = tool == Verdict::Allow || exec == Verdict::Allow;
        allowed += usize::from(any_allowed);
        if worst == Verdict::Deny {
            ran_denied += 1;
            ran_denied_allowed += usize::from(any_allowed);
        }
        if any_allowed && std::env::var_os("GAVEL_DIFF_SHOW_ALLOWED").is_some() {
            println!("allowed: {cmd:?} ran {argvs:?}");
        }
        if any_allowed && let Some(argv) = offender {
            violations += 1;
            if violations <= 40 {
                println!(
                    "VIOLATION: {cmd:?} (tool: {tool:?}, bash -c: {exec:?}) ran {argv:?}, which the rules do not allow"
                );
            }
        }
    }
    let elapsed = started.elapsed();
    println!(
        "bash-differential: {} commands (seed {seed:#x}), judged in {:.2?}, run in bash in {:.2?}; \
         allowed {allowed}; ran a denied program {ran_denied} (of which allowed: {ran_denied_allowed}); \
         timeouts {timeouts}; violations {violations}",
        commands.len(),
        judged,
        elapsed
    );

    if let (Ok(n), Ok(out)) = (
        std::env::var("GAVEL_DIFF_SAMPLE"),
        std::env::var("GAVEL_DIFF_SAMPLE_OUT"),
    ) {
        let n: usize = n
            .parse()
            .map_err(|_| format!("GAVEL_DIFF_SAMPLE must be a number, not `{n}`"))?;
        write_sample(&commands, &verdicts, n, &rules, Path::new(&out))?;
    }
    Ok(violations == 0)
}

/// A `gavel test` corpus of judged cases (those whose two forms agree), evenly spread, allowed
/// ones first: the wasm guest must give the same verdicts.
fn write_sample(
    commands: &[String],
    verdicts: &[(Verdict, Verdict)],
    n: usize,
    rules: &serde_json::Value,
    out: &Path,
) -> Result<(), Failure> {
    let name = |v: Verdict| match v {
        Verdict::Allow => "allow",
        Verdict::Ask => "ask",
        Verdict::Deny => "deny",
    };
    let agree: Vec<usize> = (0..commands.len())
        .filter(|&i| verdicts[i].0 == verdicts[i].1)
        .collect();
    let (mut picked, rest): (Vec<usize>, Vec<usize>) = agree
        .iter()
        .partition(|&&i| verdicts[i].0 == Verdict::Allow);
    picked.truncate(n / 2);
    let step = (rest.len() / (n - picked.len()).max(1)).max(1);
    picked.extend(rest.iter().step_by(step).take(n - picked.len()));
    let cases: Vec<serde_json::Value> = picked
        .iter()
        .map(|&i| serde_json::json!({"cmd": commands[i], "expect": name(verdicts[i].0)}))
        .collect();
    let corpus = serde_json::json!({
        "about": "Generated by the bash-differential test: the native library's verdicts, which the bundled wasm guest must reproduce.",
        "rules": rules,
        "cases": cases,
    });
    std::fs::write(out, serde_json::to_string_pretty(&corpus)?)?;
    println!("wrote {} sampled cases to {}", cases.len(), out.display());
    Ok(())
}

/// The bypass reports of issue 13, and the other cases it names, verbatim.
fn seeds() -> Vec<&'static str> {
    vec![
        "echo ${x:-$(rm y)}",
        "echo 'a[$(rm y)]'; echo $[_]",
        "echo ${x:-{}; rm y; echo }",
        "find . -maxdepth 0 -e$@xec rm y \\;",
        "(echo $[ 1 #]); rm y\n)",
        "ls\n(( do << 2 ))\nrm y\n2",
        "cat x\n<<E\\\nOF\n$(rm y)\nEOF",
        "ls d\r#; rm y",
        "cat f; <<\\\n<x\nrm y\n\n",
        "echo \"$\"; rm y; echo \"\"",
        "\"echo /../run.sh\"",
        "awk 'BEGIN{system(\"rm y\")}'",
        "echo ok; >.env",
        "find . -maxdepth 0 -fprint0 out",
        "echo ${!x}; echo ${x@P}",
        "echo a2>&1; rm y",
        "ls -la \\\n  src",
        "git log --oneline | head -20",
        "awk 'NR>=3 && NR<=9' f",
        "echo x | sed 's/x/rm y/e'",
        "sed -n '1e rm y' f",
        "find . -maxdepth 0 -exec rm y \\;",
        "echo f | xargs rm",
        "env rm y",
        "timeout 5 rm y",
        "git -c core.pager='rm y' log",
    ]
}

/// A small deterministic generator (xorshift64*), so a seed reproduces a run.
struct Generator {
    state: u64,
}

/// Commands the corpus rules allow.
const ALLOWED: &[&str] = &[
    "ls",
    "ls -la",
    "echo hi",
    "cat f",
    "grep x f",
    "head -n 1 f",
    "wc -l f",
    "git status",
    "git log --oneline",
    "awk '{print $1}' f",
    "find . -name f",
    "npm run build",
    "git diff",
    "echo 'a && b'",
    "cat f | grep x | wc -l",
    "ls 2>&1",
    "echo a >/dev/null",
];

/// Commands the corpus rules deny, or do not allow.
const DENIED: &[&str] = &[
    "rm y",
    "rm -rf y",
    "curl x",
    "git clean -f",
    "git push",
    "touch z",
    "chmod 700 f",
    "/bin/rm y",
    "/usr/bin/rm y",
    "r''m y",
    "\\rm y",
    "r\\\nm y",
    "rm${IFS}y",
    "$'\\x72\\x6d' y",
    "git reset --hard",
];

/// Ways to put a command `%X` (and an allowed command `%B`) into bash syntax.
const TEMPLATES: &[&str] = &[
    "%X",
    "%X; %B",
    "%B; %X",
    "%B && %X",
    "%B || %X",
    "%B | %X",
    "%B |& %X",
    "%X &",
    "%B & %X",
    "%B\n%X",
    "(%X)",
    "( %B; (%X) )",
    "{ %X; }",
    "$(%X)",
    "echo $(%X)",
    "echo `%X`",
    "echo ${v:-$(%X)}",
    "echo ${v:=`%X`}",
    "echo ${v:+<(%X)}",
    "echo \"$(%X)\"",
    "echo '$(%X)'",
    "echo \"`%X`\"",
    "echo $[$(%X)]",
    "echo $(( $(%X) ))",
    "a[$(%X)]=1",
    "echo 'a[$(%X)]'; echo $[_]",
    ": $((a[$(%X)]))",
    "declare -n r='a[$(%X)]'; echo $r",
    "printf -v 'a[$(%X)]' x",
    "test -v 'a[$(%X)]'",
    "[[ -v a[$(%X)] ]]",
    "f() { %X; }; f",
    "f(){ %X;}\nf",
    "function f { %X; }; f",
    "shopt -s expand_aliases\nalias ll='%X'\nll",
    "alias ls='%X'\nls",
    "eval '%X'",
    "eval \"%X\"",
    "bash -c '%X'",
    "sh -c '%X'",
    "env %X",
    "env -S '%X'",
    "timeout 5 %X",
    "nohup %X",
    "nice %X",
    "echo f | xargs %X",
    "find . -maxdepth 0 -exec %X \\;",
    "find . -maxdepth 0 -e$@xec %X \\;",
    "awk 'BEGIN{system(\"%X\")}'",
    "awk 'BEGIN{print | \"%X\"}'",
    "sed -n '1e %X' f",
    "echo x | sed 's/.*/%X/e'",
    "cat <<E\n$(%X)\nE",
    "cat <<'E'\n%X\nE",
    "cat <<< $(%X)",
    "if true; then %X; fi",
    "while false; do :; done; %X",
    "for i in 1; do %X; done",
    "case a in a) %X;; esac",
    "if %X; then :; fi",
    "[ -f f ] && %X",
    "x=$(%X)",
    "A=1 %X",
    "v='%X'; $v",
    "echo ${x:-{}; %X; echo }",
    "(echo $[ 1 #]); %X\n)",
    "ls\n(( do << 2 ))\n%X\n2",
    "cat f\n<<E\\\nOF\n$(%X)\nEOF",
    "ls d\r#; %X",
    "cat f; <<\\\n<x\n%X\n\n",
    "echo \"$\"; %X; echo \"\"",
    "%B # %X",
    "%B \\\n %X",
    "%B 2>&1 | %X",
    "%B >/dev/null; %X",
    "echo %B > /dev/null && %X",
    "git -c core.pager='%X' log",
    "perl -e 'system(\"%X\")'",
    "%B <f",
    "echo \"%B; %X\"",
    "echo '%B; %X'",
    "%B\\\n; %X",
    "%B;\\\n%X",
    "$'%X'",
    "\"%X\"",
];

/// Characters and snippets a mutation inserts.
const NOISE: &[&str] = &[
    "\n", "\r", "\\\n", "#", "'", "\"", "$", "{", "}", "(", ")", "`", "<<", "<<<", "\\", ";", "&",
    "|", " ", "$_", "~", "*", "$(", "${", "$[", "((", "))", "2>&1", ">", "<", "!", "=", "\t",
];

impl Generator {
    fn new(seed: u64) -> Self {
        Self { state: seed.max(1) }
    }

    fn next(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, list: &[&'a str]) -> &'a str {
        list[self.below(list.len())]
    }

    fn case(&mut self) -> String {
        // A third of the cases are lists of allowed commands, mutated: the allow path's parser
        // is where a misreading would let something through.
        if self.below(3) == 0 {
            return self.allowed_list();
        }
        // The rest carry a denied payload or only allowed commands, in bash syntax.
        let mut x = if self.below(2) == 0 {
            self.pick(DENIED).to_owned()
        } else {
            self.pick(ALLOWED).to_owned()
        };
        for _ in 0..=self.below(3) {
            let t = self.pick(TEMPLATES);
            let b = self.pick(ALLOWED);
            x = t.replace("%B", b).replace("%X", &x);
        }
        if self.below(3) == 0 {
            for _ in 0..=self.below(3) {
                let at = self.char_boundary(&x);
                let noise = self.pick(NOISE);
                x.insert_str(at, noise);
            }
        }
        x
    }

    fn allowed_list(&mut self) -> String {
        const SEPARATORS: &[&str] = &[" ; ", " && ", " || ", " | ", " |& ", "\n", " & ", ";", "|"];
        let mut x = self.pick(ALLOWED).to_owned();
        for _ in 0..self.below(4) {
            let sep = self.pick(SEPARATORS);
            let next = if self.below(8) == 0 {
                self.pick(DENIED)
            } else {
                self.pick(ALLOWED)
            };
            x = format!("{x}{sep}{next}");
        }
        for _ in 0..self.below(4) {
            let at = self.char_boundary(&x);
            let noise = if self.below(4) == 0 {
                self.pick(DENIED)
            } else {
                self.pick(NOISE)
            };
            x.insert_str(at, noise);
        }
        x
    }

    fn char_boundary(&mut self, s: &str) -> usize {
        let bounds: Vec<usize> = s
            .char_indices()
            .map(|(i, _)| i)
            .chain(std::iter::once(s.len()))
            .collect();
        bounds[self.below(bounds.len())]
    }
}

/// Inside the sandbox (private namespaces, built here): run every case of `input`.
fn run_batch(input: &Path, output: &Path) -> Result<bool, Failure> {
    let dir = std::env::temp_dir().join(format!("gavel-diff-ns-{}", std::process::id()));
    // The tmpfs ends with the process's namespace; the driver removes the empty directory.
    let mut sandbox = Sandbox::enter(&dir)?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(output)?);
    let cases = std::io::BufReader::new(std::fs::File::open(input)?);
    for line in cases.lines() {
        let v: serde_json::Value = serde_json::from_str(&line?)?;
        let i = v["i"].as_u64().unwrap_or(u64::MAX);
        let cmd = v["cmd"].as_str().unwrap_or_default();
        let outcome = sandbox.run(cmd, CASE_TIMEOUT)?;
        writeln!(
            out,
            "{}",
            serde_json::json!({"i": i, "ran": outcome.ran, "timeout": outcome.timed_out})
        )?;
    }
    out.flush()?;
    Ok(true)
}
