//! The TOML configuration loader: any text parses or is refused with a message, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match gavel_host::HostConfig::from_toml(text) {
        Ok(config) => {
            let _ = config.validate();
            let _ = config.socket_path();
            for p in &config.policies {
                let _ = p.name.len();
            }
        }
        Err(message) => assert!(!message.is_empty()),
    }
});
