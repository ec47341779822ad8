//! Print the decision of the command-rules library for each line of stdin, with the rules of a
//! corpus file: `cargo run -p command-rules-core --example explain -- tests/fixtures/commands.json`.
use command_rules_core::{Policy, Request};
use std::io::BufRead;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: explain CORPUS.json < commands")?;
    let corpus: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let policy = Policy::from_json(&corpus["rules"].to_string())?;
    for line in std::io::stdin().lock().lines() {
        let line = line?.replace("\\n", "\n");
        let e = policy.evaluate(&Request::tool("run_command", &line));
        println!(
            "{:?}\t{:?}\t{}\t{:?}",
            e.verdict,
            line,
            e.reason,
            e.suggestions
                .iter()
                .map(|g| g.rules.iter().map(|r| r.rule.clone()).collect::<Vec<_>>())
                .collect::<Vec<_>>()
        );
    }
    Ok(())
}
