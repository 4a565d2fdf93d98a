//! The process around the proxy, as HAProxy's `global` section sets it up: the file
//! descriptor limit `maxconn` needs, `daemon`, `user`/`group` dropped after binding, and
//! the `pidfile`. These run before the async runtime starts (forking a multi-threaded
//! process is unsafe), in the order HAProxy uses: raise limits, bind, fork, drop
//! privileges, write the pidfile.

use std::ffi::CString;
use std::path::Path;

use crate::config::Global;

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("maxconn {maxconn} needs {needed} file descriptors but the hard limit is {hard}; lower maxconn or raise the limit (ulimit -Hn / LimitNOFILE=)")]
    FdLimit {
        maxconn: u32,
        needed: u64,
        hard: u64,
    },
    #[error("cannot read or raise the file descriptor limit: {0}")]
    Rlimit(std::io::Error),
    #[error("unknown user '{0}'")]
    UnknownUser(String),
    #[error("unknown group '{0}'")]
    UnknownGroup(String),
    #[error("cannot switch to {what}: {source}")]
    Privileges {
        what: String,
        source: std::io::Error,
    },
    #[error("cannot go to the background: {0}")]
    Daemon(std::io::Error),
    #[error("cannot write pidfile {path}: {source}")]
    Pidfile {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot chroot to {path}: {source}")]
    Chroot {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot give {path} to its owner: {source}")]
    Chown {
        path: String,
        source: std::io::Error,
    },
}

/// File descriptors one proxied connection uses (client and server sockets), plus room
/// for listeners, checks, logs and the stats page.
fn fds_needed(maxconn: u32) -> u64 {
    2 * u64::from(maxconn) + 100
}

/// Raises the soft `RLIMIT_NOFILE` to what `maxconn` needs, or says why it cannot.
pub fn raise_fd_limit(maxconn: u32) -> Result<u64, ProcessError> {
    let needed = fds_needed(maxconn);
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(ProcessError::Rlimit(std::io::Error::last_os_error()));
    }
    if lim.rlim_cur >= needed {
        return Ok(lim.rlim_cur);
    }
    if lim.rlim_max < needed {
        return Err(ProcessError::FdLimit {
            maxconn,
            needed,
            hard: lim.rlim_max,
        });
    }
    lim.rlim_cur = needed;
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return Err(ProcessError::Rlimit(std::io::Error::last_os_error()));
    }
    Ok(needed)
}

/// `ulimit-n`: raises the file-descriptor limit to `n` (past the hard limit only as root);
/// a higher limit already in force is kept, as HAProxy 2.6 does. Like HAProxy, a limit too
/// low for `maxconn` is a warning.
pub fn set_fd_limit(n: u64, maxconn: u32) -> Result<(), ProcessError> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(ProcessError::Rlimit(std::io::Error::last_os_error()));
    }
    if lim.rlim_cur >= n {
        return Ok(());
    }
    lim.rlim_cur = n;
    lim.rlim_max = lim.rlim_max.max(n);
    // SAFETY: as above.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return Err(ProcessError::Rlimit(std::io::Error::last_os_error()));
    }
    let needed = fds_needed(maxconn);
    if n < needed {
        tracing::warn!("ulimit-n {n} is lower than the {needed} file descriptors maxconn {maxconn} needs: connections beyond it will fail");
    }
    Ok(())
}

/// Forks into the background (`daemon`): the parent exits, the child leaves the terminal's
/// session and points stdin/stdout/stderr at /dev/null. Call before any thread exists.
pub fn daemonize() -> Result<(), ProcessError> {
    // SAFETY: called while the process is single-threaded (before the tokio runtime).
    match unsafe { libc::fork() } {
        -1 => return Err(ProcessError::Daemon(std::io::Error::last_os_error())),
        0 => {}
        _ => std::process::exit(0),
    }
    if unsafe { libc::setsid() } == -1 {
        return Err(ProcessError::Daemon(std::io::Error::last_os_error()));
    }
    let devnull =
        CString::new("/dev/null").map_err(|e| ProcessError::Daemon(std::io::Error::other(e)))?;
    let fd = unsafe { libc::open(devnull.as_ptr(), libc::O_RDWR) };
    if fd >= 0 {
        for target in 0..3 {
            unsafe { libc::dup2(fd, target) };
        }
        if fd > 2 {
            unsafe { libc::close(fd) };
        }
    }
    Ok(())
}

/// Drops root privileges to `group` then `user` (after binding, so privileged ports work).
/// Not root: nothing can be switched; a warning says so unless we already are that user.
pub fn drop_privileges(global: &Global) -> Result<(), ProcessError> {
    if global.user.is_none() && global.group.is_none() {
        return Ok(());
    }
    let user = global.user.as_deref().map(lookup_user).transpose()?;
    let gid = match global.group.as_deref() {
        Some(g) => Some(lookup_group(g)?),
        None => user.map(|(_, gid)| gid),
    };
    // SAFETY: plain libc calls on ids.
    if unsafe { libc::geteuid() } != 0 {
        let me = unsafe { libc::geteuid() };
        if user.is_some_and(|(uid, _)| uid != me) {
            tracing::warn!(
                "not running as root: staying user {me} instead of '{}'",
                global.user.as_deref().unwrap_or("")
            );
        }
        return Ok(());
    }
    if let Some(gid) = gid {
        let no_groups: [libc::gid_t; 0] = [];
        if unsafe { libc::setgroups(0, no_groups.as_ptr()) } != 0
            || unsafe { libc::setgid(gid) } != 0
        {
            return Err(ProcessError::Privileges {
                what: format!("group {gid}"),
                source: std::io::Error::last_os_error(),
            });
        }
    }
    if let Some((uid, _)) = user {
        if unsafe { libc::setuid(uid) } != 0 {
            return Err(ProcessError::Privileges {
                what: format!("user {uid}"),
                source: std::io::Error::last_os_error(),
            });
        }
    }
    Ok(())
}

/// `stats socket ... user <u> group <g>`: gives the socket file to that owner and group,
/// so the file mode decides who else may send commands.
pub fn chown(path: &Path, user: Option<&str>, group: Option<&str>) -> Result<(), ProcessError> {
    if user.is_none() && group.is_none() {
        return Ok(());
    }
    let uid = user.map(lookup_user).transpose()?.map(|(uid, _)| uid);
    let gid = group.map(lookup_group).transpose()?;
    std::os::unix::fs::chown(path, uid, gid).map_err(|source| ProcessError::Chown {
        path: path.display().to_string(),
        source,
    })
}

fn lookup_user(name: &str) -> Result<(libc::uid_t, libc::gid_t), ProcessError> {
    let c = CString::new(name).map_err(|_| ProcessError::UnknownUser(name.to_string()))?;
    // SAFETY: getpwnam returns a pointer into static storage or null; we copy the ids out
    // at once, before any other call could overwrite it (single-threaded here).
    let pw = unsafe { libc::getpwnam(c.as_ptr()) };
    if pw.is_null() {
        return Err(ProcessError::UnknownUser(name.to_string()));
    }
    Ok(unsafe { ((*pw).pw_uid, (*pw).pw_gid) })
}

fn lookup_group(name: &str) -> Result<libc::gid_t, ProcessError> {
    let c = CString::new(name).map_err(|_| ProcessError::UnknownGroup(name.to_string()))?;
    // SAFETY: as for getpwnam.
    let gr = unsafe { libc::getgrnam(c.as_ptr()) };
    if gr.is_null() {
        return Err(ProcessError::UnknownGroup(name.to_string()));
    }
    Ok(unsafe { (*gr).gr_gid })
}

/// `chroot <dir>`: makes `dir` the process's root (needs root; the sockets are already
/// bound and the files read). Then the working directory is the new root.
pub fn chroot(dir: &Path) -> Result<(), ProcessError> {
    let err = |source| ProcessError::Chroot {
        path: dir.display().to_string(),
        source,
    };
    std::os::unix::fs::chroot(dir).map_err(err)?;
    std::env::set_current_dir("/").map_err(err)
}

/// `cpu-map`: binds the calling thread (worker `thread`, 1-based) to the CPUs of the last
/// line that names it. A failure is logged, not fatal (a CPU may be offline).
pub fn pin_thread(thread: u32, maps: &[crate::config::cpu_map::CpuMap]) {
    let Some(cpus) = maps.iter().rev().find_map(|m| m.cpus_for(thread)) else {
        return;
    };
    // SAFETY: a zeroed cpu_set_t is the empty set; CPU_SET stays within its bounds for
    // CPU numbers below CPU_SETSIZE, which the loop checks.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for cpu in &cpus {
            if (*cpu as usize) < libc::CPU_SETSIZE as usize {
                libc::CPU_SET(*cpu as usize, &mut set);
            }
        }
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            tracing::warn!(
                "cpu-map: cannot bind thread {thread} to CPUs {cpus:?}: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

/// Writes our pid to `path`.
pub fn write_pidfile(path: &Path) -> Result<(), ProcessError> {
    std::fs::write(path, format!("{}\n", std::process::id())).map_err(|source| {
        ProcessError::Pidfile {
            path: path.display().to_string(),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_budget_covers_both_sides_of_every_connection() {
        assert_eq!(fds_needed(4000), 8100);
    }

    #[test]
    fn unknown_user_and_group_are_named() {
        let e = lookup_user("no-such-user-warren")
            .err()
            .map(|e| e.to_string());
        assert_eq!(e.as_deref(), Some("unknown user 'no-such-user-warren'"));
        let e = lookup_group("no-such-group-warren")
            .err()
            .map(|e| e.to_string());
        assert_eq!(e.as_deref(), Some("unknown group 'no-such-group-warren'"));
    }
}
