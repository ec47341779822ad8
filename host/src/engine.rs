//! The one wasmtime engine of a process: its configuration, the epoch ticker that enforces
//! deadlines, the linker with Gavel's host imports, and the on-disk cache of compiled policies.

use crate::bindings::{v0_1, v0_2};
use cap_std::ambient_authority;
use cap_std::fs::Dir;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, ResourceLimiter};

/// How often the epoch advances. Deadlines are whole ticks, so this is their resolution.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Log lines one call may write; a guest that logs in a loop cannot flood the host's log.
const LOG_LINES_PER_CALL: u32 = 64;
/// Longest log line kept from a guest.
const LOG_LINE_MAX: usize = 1024;

/// Options for the process-wide engine.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Where compiled policies are cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// Maximum wasm stack per call, in bytes.
    pub max_stack_bytes: usize,
    /// Allocate instances from wasmtime's pooling allocator (pre-reserved slots, copy-on-write
    /// memory images): instantiation in microseconds. Off: allocate on demand.
    pub pooling: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            cache_dir: default_cache_dir(),
            max_stack_bytes: 512 * 1024,
            pooling: true,
        }
    }
}

/// `$XDG_CACHE_HOME/gavel/compiled`, else `$HOME/.cache/gavel/compiled`.
pub(crate) fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("gavel").join("compiled"))
}

/// Bytes of stdout and stderr kept per instance of a WASI policy; past this, writes fail.
const CAPTURED_OUTPUT_MAX: usize = 1 << 20;

/// What every store carries: who the policy is, its configuration, and its limits.
pub(crate) struct HostState {
    pub(crate) policy: Arc<str>,
    pub(crate) config: Arc<str>,
    pub(crate) limiter: Limiter,
    pub(crate) log_lines_left: u32,
    /// The empty WASI world of a policy run with `wasi = true`; created on first use.
    wasi: Option<Box<WasiState>>,
}

/// A WASI context with nothing in it: no files, no network, no environment, no arguments;
/// stdout and stderr go to a buffer that is copied into the host's log after every call.
struct WasiState {
    ctx: wasmtime_wasi::WasiCtx,
    table: wasmtime::component::ResourceTable,
    output: wasmtime_wasi::p2::pipe::MemoryOutputPipe,
    logged: usize,
}

impl WasiState {
    fn sealed() -> Self {
        let output = wasmtime_wasi::p2::pipe::MemoryOutputPipe::new(CAPTURED_OUTPUT_MAX);
        let mut builder = wasmtime_wasi::WasiCtx::builder();
        builder
            .stdout(output.clone())
            .stderr(output.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }));
        Self {
            ctx: builder.build(),
            table: wasmtime::component::ResourceTable::new(),
            output,
            logged: 0,
        }
    }
}

impl wasmtime_wasi::WasiView for HostState {
    fn ctx(&mut self) -> wasmtime_wasi::WasiCtxView<'_> {
        let state = self
            .wasi
            .get_or_insert_with(|| Box::new(WasiState::sealed()));
        wasmtime_wasi::WasiCtxView {
            ctx: &mut state.ctx,
            table: &mut state.table,
        }
    }
}

impl HostState {
    pub(crate) fn new(policy: Arc<str>, config: Arc<str>, memory_max: usize) -> Self {
        Self {
            policy,
            config,
            limiter: Limiter {
                memory_max,
                memory_hit: false,
            },
            log_lines_left: LOG_LINES_PER_CALL,
            wasi: None,
        }
    }

    /// Copy what a WASI policy printed since the last call into the host's log.
    pub(crate) fn drain_output(&mut self) {
        let Some(state) = self.wasi.as_mut() else {
            return;
        };
        let all = state.output.contents();
        if all.len() <= state.logged {
            return;
        }
        let fresh = String::from_utf8_lossy(&all[state.logged..]).into_owned();
        state.logged = all.len();
        let policy = &*self.policy;
        for line in fresh
            .lines()
            .filter(|l| !l.trim().is_empty())
            .take(LOG_LINES_PER_CALL as usize)
        {
            let line = &line[..line.floor_char_boundary(LOG_LINE_MAX)];
            tracing::info!(policy, stream = "stdout", "{line}");
        }
    }

    /// Reset the per-call budgets before a call.
    pub(crate) fn begin_call(&mut self) {
        self.limiter.memory_hit = false;
        self.log_lines_left = LOG_LINES_PER_CALL;
    }
}

/// A log level, whatever interface version the policy was built against.
#[derive(Clone, Copy)]
enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl HostState {
    /// `host.log`: one line to the host's log, tagged with the policy, within the per-call
    /// budget and clipped to a maximum length.
    fn log_line(&mut self, level: Level, mut message: String) {
        if self.log_lines_left == 0 {
            return;
        }
        self.log_lines_left -= 1;
        if message.len() > LOG_LINE_MAX {
            message.truncate(message.floor_char_boundary(LOG_LINE_MAX));
            message.push_str("...");
        }
        let policy = &*self.policy;
        match level {
            Level::Trace => tracing::trace!(policy, "{message}"),
            Level::Debug => tracing::debug!(policy, "{message}"),
            Level::Info => tracing::info!(policy, "{message}"),
            Level::Warn => tracing::warn!(policy, "{message}"),
            Level::Error => tracing::error!(policy, "{message}"),
        }
        if self.log_lines_left == 0 {
            tracing::warn!(
                policy,
                "policy logged {LOG_LINES_PER_CALL} lines in one call; dropping the rest"
            );
        }
    }
}

/// The `host` interface is the same in every version; each version's bindings get the same
/// implementation.
macro_rules! host_interface {
    ($version:ident) => {
        impl $version::gavel::policy::host::Host for HostState {
            fn log(&mut self, level: $version::gavel::policy::host::LogLevel, message: String) {
                use $version::gavel::policy::host::LogLevel as L;
                let level = match level {
                    L::Trace => Level::Trace,
                    L::Debug => Level::Debug,
                    L::Info => Level::Info,
                    L::Warn => Level::Warn,
                    L::Error => Level::Error,
                };
                self.log_line(level, message);
            }

            fn config(&mut self) -> String {
                self.config.to_string()
            }
        }
    };
}

host_interface!(v0_1);
host_interface!(v0_2);

/// Caps a store's linear memory; remembers whether the cap was hit so a trap can be explained.
pub(crate) struct Limiter {
    pub(crate) memory_max: usize,
    pub(crate) memory_hit: bool,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_max {
            self.memory_hit = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // A table element is a pointer; hold tables to the same byte budget as memory.
        Ok(desired.saturating_mul(std::mem::size_of::<usize>()) <= self.memory_max)
    }
}

/// The engine, its linker and its compile cache; shared by every policy of a process.
pub(crate) struct Runtime {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<HostState>,
    /// The host imports plus an empty WASI world, for policies run with `wasi = true`.
    pub(crate) wasi_linker: Linker<HostState>,
    cache: Option<CompileCache>,
    ticker_stop: Arc<AtomicBool>,
}

impl Runtime {
    pub(crate) fn new(options: &EngineOptions) -> Result<Self, String> {
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .max_wasm_stack(options.max_stack_bytes)
            .cranelift_opt_level(wasmtime::OptLevel::Speed)
            .parallel_compilation(true);
        let engine = if options.pooling {
            let mut pooled = config.clone();
            pooled.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(
                pooling_config(),
            ));
            match Engine::new(&pooled) {
                Ok(engine) => engine,
                Err(e) => {
                    // A host that limits virtual memory cannot reserve the pool; run without it.
                    tracing::warn!(
                        "the pooling allocator is unavailable ({e}); allocating instances on demand"
                    );
                    Engine::new(&config).map_err(|e| format!("cannot start wasmtime: {e}"))?
                }
            }
        } else {
            Engine::new(&config).map_err(|e| format!("cannot start wasmtime: {e}"))?
        };

        let mut linker = Linker::new(&engine);
        v0_1::gavel::policy::host::add_to_linker::<HostState, HasSelf<HostState>>(
            &mut linker,
            |s| s,
        )
        .and_then(|()| {
            v0_2::gavel::policy::host::add_to_linker::<HostState, HasSelf<HostState>>(
                &mut linker,
                |s| s,
            )
        })
        .map_err(|e| format!("cannot define the host imports: {e}"))?;

        let mut wasi_linker = linker.clone();
        wasmtime_wasi::p2::add_to_linker_sync(&mut wasi_linker)
            .map_err(|e| format!("cannot define the WASI imports: {e}"))?;

        let cache = match options.cache_dir.as_deref() {
            None => None,
            Some(dir) => match CompileCache::open(dir, &engine) {
                Ok(cache) => Some(cache),
                // A cache another user controls could feed us native code: refuse to start.
                Err(CacheError::Unsafe(e)) => return Err(e),
                Err(CacheError::Io(e)) => {
                    tracing::warn!("compiled-policy cache disabled: `{}`: {e}", dir.display());
                    None
                }
            },
        };

        let ticker_stop = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&ticker_stop);
        let ticking = engine.clone();
        std::thread::Builder::new()
            .name("gavel-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    ticking.increment_epoch();
                }
            })
            .map_err(|e| format!("cannot start the epoch ticker thread: {e}"))?;

        Ok(Self {
            engine,
            linker,
            wasi_linker,
            cache,
            ticker_stop,
        })
    }

    /// Compile a component, or load it from the cache when this engine compiled it before.
    pub(crate) fn compile(&self, bytes: &[u8], digest: &str) -> anyhow::Result<Component> {
        if let Some(component) = self
            .cache
            .as_ref()
            .and_then(|c| c.load(&self.engine, digest))
        {
            return Ok(component);
        }
        let component = Component::new(&self.engine, bytes)?;
        if let Some(cache) = &self.cache {
            cache.store(&component, digest);
        }
        Ok(component)
    }
}

/// Slots for every instance a host may hold at once. Reservations are virtual address space;
/// only pages an instance touches become resident, and a slot's memory is reset (copy-on-write)
/// when its instance is dropped.
fn pooling_config() -> wasmtime::PoolingAllocationConfig {
    let mut p = wasmtime::PoolingAllocationConfig::default();
    p.total_component_instances(1000)
        .total_core_instances(4000)
        .total_memories(1000)
        .total_tables(1000)
        .max_memories_per_component(16)
        .max_tables_per_component(16)
        .max_core_instances_per_component(64)
        .max_memory_size(4 << 30)
        .table_elements(100_000)
        .max_core_instance_size(1 << 20)
        .max_component_instance_size(1 << 20);
    p
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

/// Compiled components on disk, named by the component's SHA-256 and the engine's
/// compatibility hash, so a different wasmtime or configuration never reads a stale artifact.
///
/// An artifact is native code run as it is, so it is trusted only as far as this proves: the
/// directory and the artifact belong to this user (or root) and nobody else may write them, and
/// the artifact ends in an HMAC-SHA256, under a random key only this user can read, of the
/// source's digest, the engine key and the artifact. The MAC is checked before wasmtime sees a
/// byte, so another policy's artifact copied over this one, or altered code, is recompiled.
struct CompileCache {
    dir: Dir,
    path: PathBuf,
    engine_key: String,
    mac_key: [u8; MAC_LEN],
}

/// The key file inside the cache directory.
const MAC_KEY_FILE: &str = "artifacts.key";
/// Bytes of an HMAC-SHA256 tag, and of the key.
const MAC_LEN: usize = 32;

type ArtifactMac = hmac::Hmac<sha2::Sha256>;

/// Why the cache cannot be used.
enum CacheError {
    /// Another user could control it: the host must not start.
    Unsafe(String),
    /// It cannot be created or read: compile without it.
    Io(std::io::Error),
}

impl From<std::io::Error> for CacheError {
    fn from(e: std::io::Error) -> Self {
        CacheError::Io(e)
    }
}

impl CompileCache {
    fn open(path: &Path, engine: &Engine) -> Result<Self, CacheError> {
        create_private_dir(path)?;
        crate::files::check_private(path, "the compiled-policy cache directory")
            .map_err(|e| CacheError::Unsafe(e.to_string()))?;
        let dir = Dir::open_ambient_dir(path, ambient_authority())?;
        let mac_key = mac_key(&dir, path)?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(Self {
            dir,
            path: path.to_owned(),
            engine_key: format!("{:016x}", hasher.finish()),
            mac_key,
        })
    }

    fn file_name(&self, digest: &str) -> String {
        format!("{digest}-{}.cwasm", self.engine_key)
    }

    /// The MAC of an artifact for the component with SHA-256 `digest`.
    fn mac(&self, digest: &str, artifact: &[u8]) -> Option<ArtifactMac> {
        use hmac::Mac;
        // HMAC takes keys of any length; this never fails.
        let mut mac = <ArtifactMac as Mac>::new_from_slice(&self.mac_key).ok()?;
        mac.update(digest.as_bytes());
        mac.update(&[0]);
        mac.update(self.engine_key.as_bytes());
        mac.update(&[0]);
        mac.update(artifact);
        Some(mac)
    }

    /// The cached artifact of `digest`, if there is one this cache wrote for that source.
    /// Anything else (missing, foreign, altered, unreadable) is `None`: compile afresh.
    fn load(&self, engine: &Engine, digest: &str) -> Option<Component> {
        use hmac::Mac;
        use std::io::Read;
        let name = self.file_name(digest);
        let shown = self.path.join(&name);
        let mut file = match self.dir.open(&name) {
            Ok(f) => f.into_std(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(digest, "cannot read the cached artifact; recompiling: {e}");
                return None;
            }
        };
        let trusted = file.metadata().map_err(|e| e.to_string()).and_then(|meta| {
            if !meta.is_file() {
                return Err(format!("`{}` is not a regular file", shown.display()));
            }
            crate::files::check_private_meta(&shown, &meta, "the cached artifact")
        });
        if let Err(e) = trusted {
            tracing::warn!(digest, "ignoring the cached artifact; recompiling: {e}");
            return None;
        }
        let mut bytes = Vec::new();
        if let Err(e) = file.read_to_end(&mut bytes) {
            tracing::warn!(digest, "cannot read the cached artifact; recompiling: {e}");
            return None;
        }
        let Some(split) = bytes.len().checked_sub(MAC_LEN) else {
            tracing::warn!(digest, "the cached artifact is truncated; recompiling");
            return None;
        };
        let (artifact, tag) = bytes.split_at(split);
        let genuine = self
            .mac(digest, artifact)
            .is_some_and(|mac| mac.verify_slice(tag).is_ok());
        if !genuine {
            tracing::warn!(
                digest,
                "the cached artifact `{}` was not written by this cache for this policy (altered \
                 or copied from another); recompiling",
                shown.display()
            );
            return None;
        }
        // SAFETY: `Component::deserialize` trusts its input to be wasmtime's own output. These
        // bytes carry a MAC under a key only this user can read, over this source's digest and
        // the engine key, and `store` below computes it only over `Component::serialize` output.
        // Its own checks reject artifacts of another wasmtime version or configuration.
        #[expect(
            unsafe_code,
            reason = "loading our own compiled artifacts skips recompiling"
        )]
        let component = unsafe { Component::deserialize(engine, artifact) };
        match component {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(digest, "ignoring unusable compiled-policy cache entry: {e}");
                None
            }
        }
    }

    fn store(&self, component: &Component, digest: &str) {
        use hmac::Mac;
        let Ok(mut bytes) = component.serialize() else {
            return;
        };
        let Some(mac) = self.mac(digest, &bytes) else {
            return;
        };
        let tag = mac.finalize().into_bytes();
        bytes.extend_from_slice(&tag);
        let name = self.file_name(digest);
        let tmp = format!("{name}.{}.tmp", std::process::id());
        let written = write_private(&self.dir, &tmp, &bytes)
            .and_then(|()| self.dir.rename(&tmp, &self.dir, &name));
        if let Err(e) = written {
            let _ = self.dir.remove_file(&tmp);
            tracing::warn!(digest, "could not cache a compiled policy: {e}");
        }
    }
}

/// Create `path` (and missing parents) with mode 0700.
fn create_private_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}

/// Write `bytes` to a new file `name` in `dir`, mode 0600.
fn write_private(dir: &Dir, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = cap_std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    cap_std::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = dir.open_with(name, &options)?;
    file.write_all(bytes)?;
    file.sync_data()
}

/// The cache's MAC key: read, or created (random, 0600) on first use. A key another user owns
/// or may write is refused, since with it they could sign their own artifacts.
fn mac_key(dir: &Dir, path: &Path) -> Result<[u8; MAC_LEN], CacheError> {
    use std::io::Read;
    let shown = path.join(MAC_KEY_FILE);
    match dir.open(MAC_KEY_FILE) {
        Ok(file) => {
            let mut file = file.into_std();
            let meta = file.metadata()?;
            crate::files::check_private_meta(&shown, &meta, "the compiled-policy cache key")
                .map_err(CacheError::Unsafe)?;
            let mut key = [0u8; MAC_LEN];
            let mut rest = Vec::new();
            file.read_exact(&mut key)?;
            file.read_to_end(&mut rest)?;
            if !rest.is_empty() || meta.mode_is_group_or_other_readable() {
                return Err(CacheError::Unsafe(format!(
                    "the compiled-policy cache key `{}` is not a private {MAC_LEN}-byte file; \
                     delete it (a new one is made) or run `chmod 600 {}`",
                    shown.display(),
                    shown.display()
                )));
            }
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; MAC_LEN];
            getrandom::fill(&mut key)
                .map_err(|e| CacheError::Io(std::io::Error::other(e.to_string())))?;
            // Written whole under a temporary name, then linked into place: a concurrent
            // start never reads half a key, and the first key made wins.
            let tmp = format!("{MAC_KEY_FILE}.{}.tmp", std::process::id());
            let placed = write_private(dir, &tmp, &key)
                .and_then(|()| dir.hard_link(&tmp, dir, MAC_KEY_FILE));
            let _ = dir.remove_file(&tmp);
            match placed {
                Ok(()) => Ok(key),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => mac_key(dir, path),
                Err(e) => Err(e.into()),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Whether a file's mode lets group or others read it.
trait ModeExt {
    fn mode_is_group_or_other_readable(&self) -> bool;
}

impl ModeExt for std::fs::Metadata {
    fn mode_is_group_or_other_readable(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        self.mode() & 0o044 != 0
    }
}
