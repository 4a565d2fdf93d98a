//! Where a server is now, and whether DNS keeps it in maintenance.
//!
//! A server written with a name may move at run time: the resolvers change its address
//! (`crate::dns`), the connect path reads it once per connection (one atomic load, no
//! lock), so new connections go to the new address while open sessions keep their socket.
//! HAProxy keeps a resolution maintenance flag (RMAINT) apart from the operator's: a DNS
//! answer never undoes `disable server`, and `enable server` does not bring back a name
//! that does not resolve. The same here: [`Address::maint`] is separate from `AdminState`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use crate::config::Server;

#[derive(Debug)]
pub struct Address {
    current: ArcSwap<SocketAddr>,
    /// In maintenance because DNS gave no address (checked on every pick, so an atomic).
    maint: AtomicBool,
    /// Why, for the stats page and the log ("DNS NX status", ...).
    reason: Mutex<String>,
}

impl Address {
    /// The start-up address of `config`: a name that `init-addr` could not resolve starts
    /// in maintenance, as HAProxy's `init-addr none`.
    pub fn new(config: &Server) -> Address {
        let unresolved = config.dns.as_ref().filter(|d| !d.has_address());
        Address {
            current: ArcSwap::from_pointee(config.addr),
            maint: AtomicBool::new(unresolved.is_some()),
            reason: Mutex::new(
                unresolved
                    .map(|d| format!("no address yet for '{}'", d.fqdn))
                    .unwrap_or_default(),
            ),
        }
    }

    /// The address a new connection goes to.
    pub fn get(&self) -> SocketAddr {
        **self.current.load()
    }

    pub fn set(&self, addr: SocketAddr) {
        self.current.store(Arc::new(addr));
    }

    pub fn in_maint(&self) -> bool {
        self.maint.load(Ordering::Acquire)
    }

    /// Why DNS keeps the server in maintenance; `None` when it does not.
    pub fn maint_reason(&self) -> Option<String> {
        self.in_maint()
            .then(|| super::server::lock(&self.reason).clone())
    }

    /// Enters (`Some(reason)`) or leaves (`None`) resolution maintenance; true if that
    /// changed anything.
    pub fn set_maint(&self, reason: Option<&str>) -> bool {
        let mut stored = super::server::lock(&self.reason);
        if let Some(r) = reason {
            *stored = r.to_string();
        }
        let was = self.maint.swap(reason.is_some(), Ordering::AcqRel);
        was != reason.is_some()
    }

    /// Takes over what `old` knew (a reload that keeps following the same name).
    pub fn copy_from(&self, old: &Address) {
        self.set(old.get());
        let reason = old.maint_reason();
        self.set_maint(reason.as_deref());
    }
}
