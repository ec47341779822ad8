//! `gavel inspect`: what a policy file is and whether this host loads it.

use std::process::ExitCode;

#[derive(clap::Args)]
pub(crate) struct InspectArgs {
    /// A `.wasm` file, or `builtin:NAME`.
    policy: String,
    /// Configuration handed to the policy's `init` when trying to load it (JSON or `@FILE`).
    #[arg(long, value_name = "JSON|@FILE")]
    policy_config: Option<String>,
}

/// `--json` prints the report as one object.
pub(crate) fn run(args: InspectArgs, json: bool) -> anyhow::Result<ExitCode> {
    let bytes = crate::policy_bytes(&args.policy)?;
    let config = match &args.policy_config {
        Some(c) => crate::read_json_arg(c, "--policy-config")?,
        None => "{}".to_owned(),
    };
    let r = gavel_host::inspect::inspect(&bytes, &config);
    if json {
        let mut v = serde_json::to_value(&r)?;
        v["loads"] = match &r.loads {
            Ok(()) => serde_json::json!("ok"),
            Err(e) => serde_json::json!(e),
        };
        println!("{v}");
    } else {
        let none = "-".to_owned();
        println!("file:           {}", args.policy);
        println!("kind:           {}", r.kind);
        println!("size:           {} bytes", r.size);
        println!("sha256:         {}", r.sha256);
        println!("name:           {}", r.name.as_ref().unwrap_or(&none));
        println!("version:        {}", r.version.as_ref().unwrap_or(&none));
        println!(
            "description:    {}",
            r.description.as_ref().unwrap_or(&none)
        );
        println!("world:          {}", r.world.unwrap_or("-"));
        println!(
            "wit package:    {}",
            r.package_version
                .as_ref()
                .map_or(none.clone(), |v| format!("gavel:policy@{v}"))
        );
        println!(
            "exports manage: {}",
            if r.exports_manage { "yes" } else { "no" }
        );
        println!(
            "imports:        {}",
            if r.imports.is_empty() {
                none.clone()
            } else {
                r.imports.join(", ")
            }
        );
        println!(
            "exports:        {}",
            if r.exports.is_empty() {
                none.clone()
            } else {
                r.exports.join(", ")
            }
        );
        match &r.loads {
            // Without `wasi = true` the host refuses it, as `gavel eval` without `--wasi` does.
            Ok(()) if r.needs_wasi => println!(
                "loads:          only with `wasi = true` (gavel.toml) or `--wasi` (eval, bench): it imports WASI"
            ),
            Ok(()) => println!("loads:          yes"),
            Err(e) => println!("loads:          no: {e}"),
        }
    }
    Ok(if r.loads.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
