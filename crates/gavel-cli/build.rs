//! Hands the directory of the test guests `gavel-host` built (its build script's `guest_dir`
//! metadata) to this package's integration tests as `GAVEL_GUEST_DIR`.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=DEP_GAVEL_GUESTS_GUEST_DIR");
    if let Ok(dir) = std::env::var("DEP_GAVEL_GUESTS_GUEST_DIR") {
        println!("cargo:rustc-env=GAVEL_GUEST_DIR={dir}");
    }
}
