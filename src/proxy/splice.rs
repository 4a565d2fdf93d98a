//! Zero-copy forwarding with splice(2): socket → pipe → socket, the bytes never entering
//! user space. Used in tcp mode for bulk transfers (HAProxy's `option splice-auto` idea);
//! AMQP mode must see the bytes, so it copies.
//!
//! Pipes cost two file descriptors and a kernel buffer each, so a session holds one only
//! while data sits in it: an emptied pipe goes back to a small per-thread pool, as HAProxy
//! does with its pipe pool. Idle sessions hold no pipe.

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use tokio::io::Interest;
use tokio::net::TcpStream;

/// Largest amount moved by one splice (the default pipe capacity on Linux is 64 KiB; a
/// larger request just returns less).
const CHUNK: usize = 256 * 1024;

/// Capacity asked for each pipe (Linux allows up to `/proc/sys/fs/pipe-max-size`, 1 MiB by
/// default); pages are only allocated while data sits in the pipe.
const PIPE_SIZE: libc::c_int = 256 * 1024;

/// Pipes kept per worker thread for reuse.
const POOL: usize = 64;

thread_local! {
    static PIPES: RefCell<Vec<Pipe>> = const { RefCell::new(Vec::new()) };
}

/// A kernel pipe: read end, write end.
#[derive(Debug)]
pub struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
}

impl Pipe {
    /// One from the pool, or a new one.
    pub fn get() -> io::Result<Pipe> {
        if let Some(p) = PIPES.with(|pool| pool.borrow_mut().pop()) {
            return Ok(p);
        }
        let mut fds = [0 as RawFd; 2];
        // SAFETY: pipe2 writes two fds into the array we own.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both fds were just created and are owned by nobody else.
        let pipe = unsafe {
            Pipe {
                read: OwnedFd::from_raw_fd(fds[0]),
                write: OwnedFd::from_raw_fd(fds[1]),
            }
        };
        // A bigger pipe moves more per splice; if the system refuses, the default works too.
        // SAFETY: fcntl on a pipe fd we own.
        unsafe { libc::fcntl(pipe.write.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_SIZE) };
        Ok(pipe)
    }

    /// Returns an empty pipe to the pool (or closes it when the pool is full).
    pub fn put(self) {
        PIPES.with(|pool| {
            let mut pool = pool.borrow_mut();
            if pool.len() < POOL {
                pool.push(self);
            }
        });
    }
}

fn splice(from: RawFd, to: RawFd, len: usize) -> io::Result<usize> {
    // SAFETY: plain splice(2) between fds we own; null offsets (sockets and pipes).
    let n = unsafe {
        libc::splice(
            from,
            std::ptr::null_mut(),
            to,
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Moves what `src` has into `pipe`; 0 means EOF. `WouldBlock` when `src` has nothing
/// (tokio's readiness is cleared, so the next `readable()` waits).
pub fn fill(src: &TcpStream, pipe: &Pipe) -> io::Result<usize> {
    src.try_io(Interest::READABLE, || {
        splice(src.as_raw_fd(), pipe.write.as_raw_fd(), CHUNK)
    })
}

/// Moves up to `len` bytes from `pipe` into `dst`.
pub fn drain(pipe: &Pipe, dst: &TcpStream, len: usize) -> io::Result<usize> {
    dst.try_io(Interest::WRITABLE, || {
        splice(pipe.read.as_raw_fd(), dst.as_raw_fd(), len)
    })
}
