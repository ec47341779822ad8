//! The sandbox in which the bash-differential test and the `bash_agrees` fuzz target run bash:
//! one implementation, included by both (`examples/bash_differential.rs` as a module, the fuzz
//! target by `#[path]`).
//!
//! [`Sandbox::enter`] moves the calling **thread** into private mount, network, IPC and UTS
//! namespaces (root needed; mount propagation made private before anything is mounted, and
//! checked), mounts a tmpfs on `dir`, and builds a root for the cases there:
//!
//! - the host's `/` bind-mounted recursively, every mount of it **read-only**, `nosuid`,
//!   `nodev`;
//! - `/proc` and `/sys` hidden under empty read-only tmpfs (no `/proc/PID/root` way out);
//! - a private `/dev` with only `null`, `zero`, `random`, `urandom`;
//! - every program in `/usr/bin`, `/usr/sbin`, `/usr/local/bin`, `/usr/local/sbin` (and `/bin`,
//!   `/sbin` where they are not links into `/usr`) a logging stand-in, except `bash` itself; the
//!   stand-ins of programs that run others ([`REAL`]) log and then run the real program, so what
//!   those run is logged too;
//! - a fresh tmpfs on `/tmp` (the only writable place), holding the stand-in and one home
//!   directory per case.
//!
//! Each case ([`Sandbox::run`]) runs `bash -c CMD` chrooted there, as `nobody` with no
//! capabilities and `no_new_privs`, in its own process group, with an empty environment but
//! `HOME`, its home as working directory, `/dev/null` as stdin, resource limits and a time
//! limit; no network (the namespace has only a loopback that is down). The sandbox process is a
//! child subreaper: a case ends when every process of its group has ended (background jobs
//! included), so its log is complete when it is read.

#![allow(unsafe_code)] // the namespace, mount and credential system calls

use std::ffi::{CString, c_char, c_int, c_ulong, c_void};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Programs whose stand-in also runs the real program, so that what they run is logged.
pub const REAL: &[&str] = &[
    "awk", "mawk", "sed", "find", "xargs", "env", "timeout", "nice", "nohup", "sh", "dash", "perl",
];

/// Directories whose programs are replaced by stand-ins.
const BIN_DIRS: &[&str] = &[
    "/usr/bin",
    "/usr/sbin",
    "/usr/local/bin",
    "/usr/local/sbin",
    "/bin",
    "/sbin",
];

/// The user and group cases run as (`nobody`, `nogroup`).
const NOBODY: u32 = 65534;

/// Inside the sandbox root: where the stand-in, the real programs and the shared log live.
const SUPPORT: &str = "/tmp/.gavel";

/// What one case ran.
pub struct Outcome {
    /// The argument vectors of the programs it ran (program name first, without its directory).
    pub ran: Vec<Vec<String>>,
    /// Whether it hit the time limit (and was killed).
    pub timed_out: bool,
}

/// A sandbox built in the calling thread's private namespaces.
pub struct Sandbox {
    /// The root of the cases, as this thread sees it (`dir/root`).
    root: PathBuf,
    root_c: CString,
    next: u64,
}

type Errno = c_int;

// The few libc functions needed, declared here so that both users need no extra crate.
unsafe extern "C" {
    fn unshare(flags: c_int) -> c_int;
    fn mount(
        source: *const c_char,
        target: *const c_char,
        fstype: *const c_char,
        flags: c_ulong,
        data: *const c_void,
    ) -> c_int;
    fn chroot(path: *const c_char) -> c_int;
    fn chdir(path: *const c_char) -> c_int;
    fn setgroups(size: usize, list: *const u32) -> c_int;
    fn setgid(gid: u32) -> c_int;
    fn setuid(uid: u32) -> c_int;
    fn prctl(option: c_int, arg2: c_ulong, arg3: c_ulong, arg4: c_ulong, arg5: c_ulong) -> c_int;
    fn setrlimit(resource: c_int, rlim: *const [u64; 2]) -> c_int;
    fn waitpid(pid: c_int, status: *mut c_int, options: c_int) -> c_int;
    fn kill(pid: c_int, sig: c_int) -> c_int;
    fn geteuid() -> u32;
}

const CLONE_NEWNS: c_int = 0x0002_0000;
const CLONE_NEWUTS: c_int = 0x0400_0000;
const CLONE_NEWIPC: c_int = 0x0800_0000;
const CLONE_NEWNET: c_int = 0x4000_0000;
const MS_RDONLY: c_ulong = 1;
const MS_NOSUID: c_ulong = 2;
const MS_NODEV: c_ulong = 4;
const MS_REMOUNT: c_ulong = 32;
const MS_BIND: c_ulong = 4096;
const MS_REC: c_ulong = 16384;
const MS_PRIVATE: c_ulong = 1 << 18;
const PR_SET_NO_NEW_PRIVS: c_int = 38;
const PR_SET_CHILD_SUBREAPER: c_int = 36;
const RLIMIT_FSIZE: c_int = 1;
const RLIMIT_NPROC: c_int = 6;
const WNOHANG: c_int = 1;
const ECHILD: Errno = 10;
const SIGKILL: c_int = 9;

fn cstr(p: &Path) -> Result<CString, String> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| format!("{} holds a NUL", p.display()))
}

fn last_error() -> std::io::Error {
    std::io::Error::last_os_error()
}

/// `mount(2)`; an error names the call.
fn mount_at(
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: c_ulong,
    data: Option<&str>,
) -> Result<(), String> {
    let source_c = source.map(cstr).transpose()?;
    let target_c = cstr(target)?;
    let fstype_c = fstype.map(|s| CString::new(s).unwrap_or_default());
    let data_c = data.map(|s| CString::new(s).unwrap_or_default());
    // SAFETY: every pointer is null or a live NUL-terminated string.
    let r = unsafe {
        mount(
            source_c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
            target_c.as_ptr(),
            fstype_c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
            flags,
            data_c
                .as_ref()
                .map_or(std::ptr::null(), |c| c.as_ptr().cast()),
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(format!(
            "mount({source:?}, {}, {fstype:?}, {flags:#x}) failed: {}",
            target.display(),
            last_error()
        ))
    }
}

/// A bind mount of `source` on `target`, read-only if asked.
fn bind(source: &Path, target: &Path, read_only: bool) -> Result<(), String> {
    mount_at(Some(source), target, None, MS_BIND, None)?;
    if read_only {
        mount_at(
            None,
            target,
            None,
            MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV,
            None,
        )?;
    }
    Ok(())
}

/// One line of `/proc/self/mountinfo`: the mount point, its per-mount options and whether it
/// is in a shared peer group.
struct MountEntry {
    point: PathBuf,
    read_only: bool,
    shared: bool,
}

fn mountinfo() -> Result<Vec<MountEntry>, String> {
    // The calling thread's namespace: `/proc/thread-self`, not `/proc/self`.
    let text = std::fs::read_to_string("/proc/thread-self/mountinfo")
        .map_err(|e| format!("cannot read /proc/thread-self/mountinfo: {e}"))?;
    let mut entries = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let (Some(point), Some(options)) = (fields.get(4), fields.get(5)) else {
            continue;
        };
        let optional = fields
            .iter()
            .skip(6)
            .take_while(|f| **f != "-")
            .any(|f| f.starts_with("shared:"));
        entries.push(MountEntry {
            point: PathBuf::from(unescape(point)),
            read_only: options.split(',').any(|o| o == "ro"),
            shared: optional,
        });
    }
    Ok(entries)
}

/// Mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn set_mode(path: &Path, mode: u32) -> Result<(), String> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("chmod {}: {e}", path.display()))
}

fn chown_nobody(path: &Path) -> Result<(), String> {
    std::os::unix::fs::chown(path, Some(NOBODY), Some(NOBODY))
        .map_err(|e| format!("chown {}: {e}", path.display()))
}

fn io<T>(what: &str, r: std::io::Result<T>) -> Result<T, String> {
    r.map_err(|e| format!("{what}: {e}"))
}

impl Sandbox {
    /// Move the calling thread into private namespaces and build the sandbox on a tmpfs mounted
    /// on `dir` (created if missing; it stays empty outside the namespace, for the caller to
    /// remove). Needs root; an error says what failed.
    pub fn enter(dir: &Path) -> Result<Self, String> {
        // SAFETY: no arguments.
        if unsafe { geteuid() } != 0 {
            return Err("the bash sandbox needs root (private mount namespaces, chroot)".into());
        }
        // SAFETY: plain flags; affects only the calling thread.
        if unsafe { unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS) } != 0 {
            return Err(format!(
                "unshare(CLONE_NEWNS | CLONE_NEWNET) failed: {}",
                last_error()
            ));
        }
        // Nothing mounted from here on may reach the host's namespace.
        mount_at(None, Path::new("/"), None, MS_REC | MS_PRIVATE, None)?;
        if let Some(m) = mountinfo()?.iter().find(|m| m.shared) {
            return Err(format!(
                "{} is still shared after making every mount private",
                m.point.display()
            ));
        }
        // SAFETY: plain arguments.
        if unsafe { prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
            return Err(format!("cannot become a child subreaper: {}", last_error()));
        }

        io("create the sandbox directory", std::fs::create_dir_all(dir))?;
        let base = io("resolve the sandbox directory", std::fs::canonicalize(dir))?;
        mount_at(
            None,
            &base,
            Some("tmpfs"),
            MS_NOSUID | MS_NODEV,
            Some("mode=700,size=64m"),
        )?;
        let root = base.join("root");
        io("create the root", std::fs::create_dir(&root))?;

        // The host's tree, every mount of it read-only.
        mount_at(Some(Path::new("/")), &root, None, MS_BIND | MS_REC, None)?;
        let under_root = |p: &Path| p.starts_with(&root);
        for m in mountinfo()?.iter().filter(|m| under_root(&m.point)) {
            if let Err(e) = mount_at(
                None,
                &m.point,
                None,
                MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV,
                None,
            ) {
                // A mount point hidden under another mount cannot be reached by path.
                if std::fs::metadata(&m.point).is_ok() {
                    return Err(e);
                }
            }
        }
        // Every mount a case can reach is read-only (the last entry of a mount point is the
        // one on top); `/proc`, `/sys`, `/dev` and `/tmp` are covered below.
        let covered = ["proc", "sys", "dev", "tmp"].map(|d| root.join(d));
        let entries = mountinfo()?;
        for (i, m) in entries.iter().enumerate() {
            let on_top = !entries[i + 1..].iter().any(|n| n.point == m.point);
            if under_root(&m.point)
                && on_top
                && !m.read_only
                && !covered.iter().any(|c| m.point.starts_with(c))
            {
                return Err(format!(
                    "{} stayed writable in the sandbox",
                    m.point.display()
                ));
            }
        }
        for hidden in ["proc", "sys"] {
            mount_at(
                None,
                &root.join(hidden),
                Some("tmpfs"),
                MS_RDONLY | MS_NOSUID | MS_NODEV,
                Some("size=4k"),
            )?;
        }

        // `/tmp`: the only writable place, holding the stand-in and the cases' homes.
        let tmp = root.join("tmp");
        mount_at(
            None,
            &tmp,
            Some("tmpfs"),
            MS_NOSUID | MS_NODEV,
            Some("mode=755,size=256m"),
        )?;
        let support = root.join(SUPPORT.trim_start_matches('/'));
        let real = support.join("real");
        io(
            "create the support directory",
            std::fs::create_dir_all(&real),
        )?;
        set_mode(&support, 0o755)?;
        set_mode(&real, 0o755)?;
        let shared_log = support.join("log");
        io("create the shared log", std::fs::write(&shared_log, b""))?;
        set_mode(&shared_log, 0o666)?;
        // The stand-in: log the program's name and arguments (to the case's HOME, else the
        // shared log) in one write, then run the real program if it is one that runs others.
        let standin = support.join("standin");
        io(
            "write the stand-in",
            std::fs::write(
                &standin,
                format!(
                    "#!/usr/bin/bash\nn=${{0##*/}}\nprintf -v r '%s\\x1f' \"$n\" \"$@\"\n\
                     l=\"$HOME/.gavel-diff-log\"; [ -n \"$HOME\" ] && [ -w \"$HOME\" ] || l={SUPPORT}/log\n\
                     printf '%s\\x1e' \"$r\" >> \"$l\"\n\
                     [ -x {SUPPORT}/real/\"$n\" ] && exec {SUPPORT}/real/\"$n\" \"$@\"\nexit 0\n"
                ),
            ),
        )?;
        set_mode(&standin, 0o755)?;
        for name in REAL {
            if let Ok(resolved) = std::fs::canonicalize(Path::new("/usr/bin").join(name)) {
                io(
                    "copy a real program",
                    std::fs::copy(&resolved, real.join(name)),
                )?;
                set_mode(&real.join(name), 0o755)?;
            }
        }

        // A private /dev with only what programs need.
        let dev = base.join("dev");
        io("create /dev", std::fs::create_dir(&dev))?;
        set_mode(&dev, 0o755)?;
        for node in ["null", "zero", "urandom", "random"] {
            let path = dev.join(node);
            io(
                "create a device node's mount point",
                std::fs::write(&path, b""),
            )?;
            bind(&Path::new("/dev").join(node), &path, false)?;
        }
        bind(&dev, &root.join("dev"), false)?;
        mount_at(
            None,
            &root.join("dev"),
            None,
            MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID,
            None,
        )?;

        // The stand-ins, over every program directory of the root.
        let bash = io("find bash", std::fs::canonicalize("/usr/bin/bash"))?;
        for (k, dir) in BIN_DIRS.iter().enumerate() {
            let inside = root.join(dir.trim_start_matches('/'));
            let is_link = std::fs::symlink_metadata(dir).map(|m| m.file_type().is_symlink());
            let Ok(false) = is_link else {
                continue;
            };
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let fake = base.join(format!("bin{k}"));
            io("create a stand-in directory", std::fs::create_dir(&fake))?;
            set_mode(&fake, 0o755)?;
            for e in entries.flatten() {
                let name = e.file_name();
                let target = fake.join(&name);
                if *dir == "/usr/bin" && name == "bash" {
                    io("copy bash", std::fs::copy(&bash, &target))?;
                } else {
                    io(
                        "link a stand-in",
                        std::os::unix::fs::symlink(Path::new(SUPPORT).join("standin"), &target),
                    )?;
                }
            }
            bind(&fake, &inside, true)?;
        }
        let root_c = cstr(&root)?;
        Ok(Self {
            root,
            root_c,
            next: 0,
        })
    }

    /// Run `cmd` in bash in a fresh home directory; what it ran. The home is removed afterwards.
    pub fn run(&mut self, cmd: &str, limit: Duration) -> Result<Outcome, String> {
        let started = self.start(cmd, limit)?;
        let home = started.home.clone();
        let outcome = self.finish(started);
        let _ = std::fs::remove_dir_all(&home);
        outcome
    }

    /// Start a case; [`Sandbox::finish`] waits for it.
    fn start(&mut self, cmd: &str, limit: Duration) -> Result<Started, String> {
        self.next += 1;
        let inner_home = PathBuf::from(format!("/tmp/c{}", self.next));
        let home = self
            .root
            .join(inner_home.strip_prefix("/").unwrap_or(&inner_home));
        let _ = std::fs::remove_dir_all(&home);
        io("create a home", std::fs::create_dir(&home))?;
        set_mode(&home, 0o700)?;
        for (name, text) in [("f", "x y\nrm y\n"), ("notes.txt", "a\n")] {
            io("write a case file", std::fs::write(home.join(name), text))?;
            chown_nobody(&home.join(name))?;
        }
        chown_nobody(&home)?;
        let _ = std::fs::write(
            self.root.join(SUPPORT.trim_start_matches('/')).join("log"),
            b"",
        );

        let root_c = self.root_c.clone();
        let home_c = cstr(&inner_home)?;
        let mut command = Command::new("/usr/bin/bash");
        command
            .arg("-c")
            .arg(cmd)
            .env_clear()
            .env("HOME", &inner_home)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        // SAFETY: only async-signal-safe system calls on data prepared before the fork.
        unsafe {
            command.pre_exec(move || {
                let fail = |ok: bool| if ok { Ok(()) } else { Err(last_error()) };
                fail(chroot(root_c.as_ptr()) == 0)?;
                fail(chdir(home_c.as_ptr()) == 0)?;
                fail(setrlimit(RLIMIT_NPROC, &[512, 512]) == 0)?;
                fail(setrlimit(RLIMIT_FSIZE, &[16 << 20, 16 << 20]) == 0)?;
                fail(setgroups(0, std::ptr::null()) == 0)?;
                fail(setgid(NOBODY) == 0)?;
                fail(setuid(NOBODY) == 0)?;
                fail(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0)?;
                Ok(())
            });
        }
        let child = io("start bash in the sandbox", command.spawn())?;
        let pid = c_int::try_from(child.id()).map_err(|_| "a pid out of range".to_owned())?;
        Ok(Started {
            pid,
            home,
            deadline: Instant::now() + limit,
        })
    }

    /// Wait until every process of the case's group has ended (killing it at its deadline),
    /// then read what it logged.
    fn finish(&self, started: Started) -> Result<Outcome, String> {
        let Started {
            pid,
            home,
            deadline,
        } = started;
        let mut timed_out = false;
        let mut pause = Duration::from_micros(50);
        loop {
            let mut status = 0;
            // SAFETY: a valid out-pointer. Orphans of the group are reparented to this process
            // (a subreaper), so no child left in the group means the group has ended.
            let r = unsafe { waitpid(-pid, &mut status, WNOHANG) };
            if r > 0 {
                continue;
            }
            if r < 0 {
                if last_error().raw_os_error() == Some(ECHILD) {
                    break;
                }
                return Err(format!("waitpid: {}", last_error()));
            }
            let now = Instant::now();
            if now > deadline {
                if !timed_out {
                    timed_out = true;
                    // SAFETY: a signal to the case's own process group.
                    unsafe { kill(-pid, SIGKILL) };
                } else if now > deadline + Duration::from_secs(5) {
                    return Err(format!("the processes of a case (group {pid}) do not end"));
                } else {
                    // SAFETY: as above; a fork racing the first kill is caught here.
                    unsafe { kill(-pid, SIGKILL) };
                }
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(2));
        }
        let mut ran = parse_log(&home.join(".gavel-diff-log"));
        // Programs run with HOME changed or unset log to the shared log.
        ran.extend(parse_log(
            &self.root.join(SUPPORT.trim_start_matches('/')).join("log"),
        ));
        Ok(Outcome { ran, timed_out })
    }
}

struct Started {
    pid: c_int,
    home: PathBuf,
    deadline: Instant,
}

fn parse_log(path: &Path) -> Vec<Vec<String>> {
    let Ok(bytes) = std::fs::read(path) else {
        return Vec::new();
    };
    String::from_utf8_lossy(&bytes)
        .split('\x1e')
        .filter(|r| !r.is_empty())
        .map(|r| {
            let mut argv: Vec<String> = r.split('\x1f').map(str::to_owned).collect();
            argv.pop(); // after the last separator
            argv
        })
        .collect()
}
