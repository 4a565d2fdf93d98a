//! DNS in the configuration: `resolvers` sections, and what a server written with a name
//! (not an IP) needs to be followed at run time (`init-addr`, `resolvers`, `resolve-prefer`,
//! `server-template`). Shared by both syntaxes.
//!
//! The address a server starts with is settled here, when the file is loaded, by trying
//! the `init-addr` methods in order as HAProxy does (`srv_iterate_initaddr`): `libc` is the
//! system resolver, an IP is taken as written, `none` starts the server in maintenance
//! ("MAINT (resolution)") until a `resolvers` section finds it. `last` is the address the
//! running process had for the server: only a reload can know it, so the runtime applies it
//! (warren has no server-state file; across a reload the state itself is carried over).

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// One `resolvers <name>` section.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolvers {
    pub name: String,
    /// `nameserver <name> <ip>:<port>`: every query goes to all of them; the first valid
    /// answer wins, as in HAProxy.
    pub nameservers: Vec<Nameserver>,
    /// `parse-resolv-conf`: the `nameserver` lines of `/etc/resolv.conf` are added (read
    /// when the runtime starts resolving, so a rewritten file counts after a reload).
    pub parse_resolv_conf: bool,
    /// `resolve_retries`: queries sent before a resolution ends in a timeout (default 3).
    pub resolve_retries: u32,
    /// `timeout resolve`: how often a name is resolved again (default 1 s).
    pub timeout_resolve: Duration,
    /// `timeout retry`: how long to wait for an answer before sending the query again
    /// (default 1 s).
    pub timeout_retry: Duration,
    pub hold: Hold,
    /// `accepted_payload_size`: the UDP answer size announced with EDNS0 (512 to 65535;
    /// default 512, no EDNS0 then). Large SRV answers need more.
    pub accepted_payload_size: u16,
}

/// `nameserver <name> <ip>:<port>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nameserver {
    pub name: String,
    pub addr: SocketAddr,
}

/// The `hold` periods: how long a bad answer is tolerated after the last valid one before
/// the servers using the name go to maintenance, as HAProxy (`snr_set_srv_down`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hold {
    /// Not used to pace queries in warren (`timeout resolve` does); kept for `convert`.
    pub valid: Duration,
    pub nx: Duration,
    pub timeout: Duration,
    pub refused: Duration,
    pub other: Duration,
    /// How long a record gone from an answer keeps its server (templates and SRV).
    pub obsolete: Duration,
}

/// HAProxy's defaults (`resolvers_new` in `src/resolvers.c`).
impl Default for Hold {
    fn default() -> Hold {
        Hold {
            valid: Duration::from_secs(10),
            nx: Duration::from_secs(30),
            timeout: Duration::from_secs(30),
            refused: Duration::from_secs(30),
            other: Duration::from_secs(30),
            obsolete: Duration::ZERO,
        }
    }
}

impl Resolvers {
    /// A section with HAProxy's defaults and no nameserver yet.
    pub fn new(name: &str) -> Resolvers {
        Resolvers {
            name: name.to_string(),
            nameservers: Vec::new(),
            parse_resolv_conf: false,
            resolve_retries: 3,
            timeout_resolve: Duration::from_secs(1),
            timeout_retry: Duration::from_secs(1),
            hold: Hold::default(),
            accepted_payload_size: 512,
        }
    }
}

/// The `hold` keys, in HAProxy's spelling.
pub const HOLD_KEYS: [&str; 6] = ["valid", "nx", "timeout", "refused", "other", "obsolete"];

impl Hold {
    /// Sets `hold <key> <time>`; false for an unknown key.
    pub fn set(&mut self, key: &str, value: Duration) -> bool {
        let slot = match key {
            "valid" => &mut self.valid,
            "nx" => &mut self.nx,
            "timeout" => &mut self.timeout,
            "refused" => &mut self.refused,
            "other" => &mut self.other,
            "obsolete" => &mut self.obsolete,
            _ => return false,
        };
        *slot = value;
        true
    }

    pub fn get(&self, key: &str) -> Option<Duration> {
        Some(match key {
            "valid" => self.valid,
            "nx" => self.nx,
            "timeout" => self.timeout,
            "refused" => self.refused,
            "other" => self.other,
            "obsolete" => self.obsolete,
            _ => return None,
        })
    }
}

/// One `init-addr` method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitAddr {
    Last,
    Libc,
    None,
    Ip(IpAddr),
}

impl InitAddr {
    /// Parses `last,libc,none,10.0.0.1`.
    pub fn parse_list(text: &str) -> Result<Vec<InitAddr>, String> {
        let mut out = Vec::new();
        for word in text.split(',') {
            let method = match word {
                "last" => InitAddr::Last,
                "libc" => InitAddr::Libc,
                "none" => InitAddr::None,
                ip => InitAddr::Ip(ip.parse().map_err(|_| {
                    format!("unknown init-addr method '{ip}': use 'last', 'libc', 'none' or an IP address")
                })?),
            };
            if out.contains(&method) {
                return Err(format!("init-addr method '{word}' is given twice"));
            }
            out.push(method);
        }
        Ok(out)
    }

    pub fn list_text(list: &[InitAddr]) -> String {
        let words: Vec<String> = list
            .iter()
            .map(|m| match m {
                InitAddr::Last => "last".to_string(),
                InitAddr::Libc => "libc".to_string(),
                InitAddr::None => "none".to_string(),
                InitAddr::Ip(ip) => ip.to_string(),
            })
            .collect();
        words.join(",")
    }
}

/// Which address family a name is resolved to first (`resolve-prefer`; HAProxy's default
/// is IPv6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Family {
    Ipv4,
    #[default]
    Ipv6,
}

impl Family {
    pub fn parse(text: &str) -> Result<Family, String> {
        match text {
            "ipv4" => Ok(Family::Ipv4),
            "ipv6" => Ok(Family::Ipv6),
            other => Err(format!(
                "resolve-prefer takes 'ipv4' or 'ipv6', not '{other}'"
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Family::Ipv4 => "ipv4",
            Family::Ipv6 => "ipv6",
        }
    }

    pub fn matches(self, ip: &IpAddr) -> bool {
        matches!(
            (self, ip),
            (Family::Ipv4, IpAddr::V4(_)) | (Family::Ipv6, IpAddr::V6(_))
        )
    }
}

/// A server written with a name instead of an IP.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerDns {
    /// The name as written (without the port); a name starting with `_` is an SRV query.
    pub fqdn: String,
    /// `init-addr` as written; empty means HAProxy's default (`last,libc`, plus `none`
    /// when `resolvers` is set).
    pub init_addr: Vec<InitAddr>,
    /// The method that settled the start-up address: `Some(None)` when `none` did (no
    /// address, maintenance); `None` for a template slot that the answer did not fill.
    pub resolved_by: Option<InitAddr>,
    /// `resolvers <id>`: the section that keeps the address up to date at run time.
    pub resolvers: Option<String>,
    pub prefer: Family,
    /// Set on the servers a `server-template` line made.
    pub template: Option<Template>,
}

impl ServerDns {
    /// Whether the server starts with an address.
    pub fn has_address(&self) -> bool {
        matches!(self.resolved_by, Some(m) if m != InitAddr::None)
    }

    /// An SRV name (`_amqp._tcp.rabbitmq.svc`): ports and weights come from the records.
    pub fn is_srv(&self) -> bool {
        self.fqdn.starts_with('_')
    }

    /// The methods in force: as written, or HAProxy's default.
    pub fn methods(&self) -> Vec<InitAddr> {
        if !self.init_addr.is_empty() {
            return self.init_addr.clone();
        }
        let mut m = vec![InitAddr::Last, InitAddr::Libc];
        if self.resolvers.is_some() {
            m.push(InitAddr::None);
        }
        m
    }
}

/// `server-template <prefix> <num | first-last> ...`: which servers one line made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub prefix: String,
    pub first: u32,
    pub last: u32,
}

impl Template {
    /// `3` (prefix1..prefix3) or `5-7`.
    pub fn parse(prefix: &str, text: &str) -> Result<Template, String> {
        let bad = || {
            format!("server-template needs a number of servers or a range like '1-5', not '{text}'")
        };
        let (first, last) = match text.split_once('-') {
            Some((a, b)) => (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?),
            None => (1, text.parse().map_err(|_| bad())?),
        };
        if first == 0 || first > last || last - first >= MAX_TEMPLATE_SLOTS {
            return Err(format!("server-template range '{text}' must run from 1 up, with at most {MAX_TEMPLATE_SLOTS} servers"));
        }
        Ok(Template {
            prefix: prefix.to_string(),
            first,
            last,
        })
    }

    pub fn slots(&self) -> impl Iterator<Item = u32> {
        self.first..=self.last
    }

    pub fn range_text(&self) -> String {
        if self.first == 1 {
            self.last.to_string()
        } else {
            format!("{}-{}", self.first, self.last)
        }
    }
}

/// A bound on template slots, so a typo cannot make a million servers.
pub const MAX_TEMPLATE_SLOTS: u32 = 1024;

/// What a server address turned into when the file was loaded.
#[derive(Debug, Clone, PartialEq)]
pub struct Initial {
    /// The address to start with; `0.0.0.0:<port>` when there is none.
    pub addr: SocketAddr,
    pub resolved_by: Option<InitAddr>,
}

/// Applies the `init-addr` methods to `host` (a name, not an IP). `slot` is the position of
/// a template server among its siblings: the system resolver's answer is dealt out, one
/// address per slot, and a slot left without one starts in maintenance.
pub fn initial(
    host: &str,
    port: u16,
    dns: &ServerDns,
    slot: Option<usize>,
) -> Result<Initial, String> {
    let none = SocketAddr::new(IpAddr::from([0u8; 4]), port);
    let mut errors = Vec::new();
    for method in dns.methods() {
        match method {
            // The running process's address: applied by the runtime on a reload.
            InitAddr::Last => {}
            // An SRV name has no address of its own (HAProxy skips libc for it too).
            InitAddr::Libc if dns.is_srv() => {}
            InitAddr::Libc => match libc(host, port, dns.prefer) {
                Ok(ips) => match ips.get(slot.unwrap_or(0)) {
                    Some(ip) => {
                        return Ok(Initial {
                            addr: SocketAddr::new(*ip, port),
                            resolved_by: Some(InitAddr::Libc),
                        })
                    }
                    None => {
                        return Ok(Initial {
                            addr: none,
                            resolved_by: None,
                        })
                    }
                },
                Err(e) => errors.push(e),
            },
            InitAddr::None => {
                return Ok(Initial {
                    addr: none,
                    resolved_by: Some(InitAddr::None),
                })
            }
            InitAddr::Ip(ip) => {
                return Ok(Initial {
                    addr: SocketAddr::new(ip, port),
                    resolved_by: Some(method),
                })
            }
        }
    }
    if slot.is_some() && dns.resolvers.is_some() {
        // A template slot waits for the resolvers whatever the methods said.
        return Ok(Initial {
            addr: none,
            resolved_by: None,
        });
    }
    let why = if errors.is_empty() {
        "no init-addr method gives an address at start-up".to_string()
    } else {
        errors.join("; ")
    };
    Err(format!(
        "could not resolve address '{host}' ({why}); add 'init-addr last,libc,none' to start the server in maintenance until it resolves"
    ))
}

/// The system resolver's addresses for `host`, the preferred family first.
fn libc(host: &str, port: u16, prefer: Family) -> Result<Vec<IpAddr>, String> {
    // A fuzzer invents millions of names: each would be a query nobody asked for.
    if cfg!(fuzzing) {
        return Err(format!(
            "cannot resolve '{host}': name resolution is off in fuzzing builds"
        ));
    }
    let addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve '{host}': {e}"))?;
    let mut ips: Vec<IpAddr> = Vec::new();
    for a in addrs {
        if !ips.contains(&a.ip()) {
            ips.push(a.ip());
        }
    }
    ips.sort_by_key(|ip| !prefer.matches(ip));
    if ips.is_empty() {
        return Err(format!("'{host}' resolves to no address"));
    }
    Ok(ips)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dns(init: &str, resolvers: bool) -> ServerDns {
        ServerDns {
            fqdn: "x".into(),
            init_addr: if init.is_empty() {
                Vec::new()
            } else {
                InitAddr::parse_list(init).unwrap()
            },
            resolved_by: None,
            resolvers: resolvers.then(|| "dns".to_string()),
            prefer: Family::Ipv4,
            template: None,
        }
    }

    #[test]
    fn methods_in_order() {
        let d = dns("", true);
        assert_eq!(
            d.methods(),
            vec![InitAddr::Last, InitAddr::Libc, InitAddr::None]
        );
        let i = initial("localhost", 5672, &dns("libc", false), None).unwrap();
        assert!(i.addr.ip().is_loopback());
        assert_eq!(i.resolved_by, Some(InitAddr::Libc));
        let i = initial("no-such.invalid", 5672, &dns("libc,10.0.0.9", false), None).unwrap();
        assert_eq!(i.addr, "10.0.0.9:5672".parse().unwrap());
        let i = initial("no-such.invalid", 5672, &dns("last,libc,none", false), None).unwrap();
        assert_eq!(i.resolved_by, Some(InitAddr::None));
        let e = initial("no-such.invalid", 5672, &dns("last,libc", false), None).unwrap_err();
        assert!(
            e.contains("could not resolve address 'no-such.invalid'"),
            "{e}"
        );
    }

    #[test]
    fn parse_forms() {
        assert!(InitAddr::parse_list("libc,bogus")
            .unwrap_err()
            .contains("'bogus'"));
        assert!(InitAddr::parse_list("none,none").is_err());
        assert_eq!(Template::parse("r", "3").unwrap().slots().count(), 3);
        assert_eq!(Template::parse("r", "5-7").unwrap().first, 5);
        assert!(Template::parse("r", "0").is_err());
        assert!(Template::parse("r", "7-5").is_err());
    }
}
