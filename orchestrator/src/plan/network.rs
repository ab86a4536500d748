//! A task's `network`: `"none"`, `"full"`, or the list of hosts it may
//! reach (`["crates.io", "127.0.0.2:8000"]`) through the coordinator's
//! egress proxy (`run::local::egress`). A list's entries are checked here
//! when the plan is read ([`Allowed::parse`]); the proxy asks
//! [`AllowList::allows`] of every request, and a subtask's or a replan
//! fix's list must lie [`AllowList::within`] its parent's.
//!
//! An entry is a host name (case and a trailing dot do not matter),
//! `*.` and a domain (its subdomains, not the domain itself), or an IP
//! address (IPv6 in brackets when a port follows), each with `:port` or
//! without, which allows 80 and 443, the ports of `http://` and `https://`
//! URLs. A name allows that name only, never an address it resolves to,
//! and an address allows that address only, never a name resolving to it:
//! the proxy resolves names itself, so what the list says is what a task
//! reaches (as far as the name's DNS is trusted).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The ports an entry without one allows: `http://` and `https://`.
pub const DEFAULT_PORTS: [u16; 2] = [80, 443];

/// A task's network, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TaskNetwork {
    /// No network at all.
    #[default]
    None,
    /// The host's network.
    Full,
    /// Only these hosts, through the coordinator's egress proxy.
    Hosts(AllowList),
}

impl TaskNetwork {
    /// Whether `self` (a child's) reaches further than `allowed` (its
    /// parent's): `none` < a list < `full`, and a list is narrower than
    /// another only if each host and port it allows, the other does.
    pub fn wider_than(&self, allowed: &TaskNetwork) -> bool {
        match (self, allowed) {
            (_, TaskNetwork::Full) | (TaskNetwork::None, _) => false,
            (TaskNetwork::Full, _) | (TaskNetwork::Hosts(_), TaskNetwork::None) => true,
            (TaskNetwork::Hosts(asked), TaskNetwork::Hosts(parent)) => !asked.within(parent),
        }
    }

    /// The list, for a task with one.
    pub fn hosts(&self) -> Option<&AllowList> {
        match self {
            TaskNetwork::Hosts(list) => Some(list),
            TaskNetwork::None | TaskNetwork::Full => None,
        }
    }
}

impl fmt::Display for TaskNetwork {
    /// As a plan writes it: `"none"`, `"full"`, `["a.example", "b:8080"]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskNetwork::None => f.write_str("\"none\""),
            TaskNetwork::Full => f.write_str("\"full\""),
            TaskNetwork::Hosts(list) => write!(f, "{list}"),
        }
    }
}

/// The hosts a task may reach: never empty (`"none"` says that).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowList(Vec<Allowed>);

impl AllowList {
    /// The list of `entries`; `None` if there are none.
    pub fn new(entries: Vec<Allowed>) -> Option<Self> {
        (!entries.is_empty()).then_some(Self(entries))
    }

    /// Whether a request for `host` on `port` may pass.
    pub fn allows(&self, host: &RequestHost, port: u16) -> bool {
        self.0
            .iter()
            .any(|entry| entry.ports().contains(&port) && entry.host.matches(host))
    }

    /// Whether every host and port `self` allows, `parent` allows too.
    pub fn within(&self, parent: &AllowList) -> bool {
        self.0.iter().all(|entry| {
            entry.ports().iter().all(|port| {
                parent
                    .0
                    .iter()
                    .any(|p| p.ports().contains(port) && p.host.covers(&entry.host))
            })
        })
    }
}

impl fmt::Display for AllowList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, entry) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "\"{entry}\"")?;
        }
        f.write_str("]")
    }
}

/// One entry of a list: a host and its port, or 80 and 443.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowed {
    host: Host,
    port: Option<u16>,
}

/// What an entry names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Host {
    /// This name only (lowercase, no trailing dot).
    Name(String),
    /// Every name below this domain (`*.example.com`), not the domain.
    Under(String),
    /// This address only.
    Ip(IpAddr),
}

impl Allowed {
    /// The entry `text` as a plan writes it, or why it is none (a phrase
    /// to follow the entry: "is a URL, not a host: ...").
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.contains("://") {
            let host = text.split("://").nth(1).unwrap_or_default();
            let host = host.split(['/', '?', '#']).next().unwrap_or_default();
            return Err(format!(
                "is a URL, not a host: write the host (and port, if it is not 80 or 443), e.g. \"{host}\""
            ));
        }
        if let Some(c) = text
            .chars()
            .find(|c| matches!(c, '/' | '@' | '?' | '#' | ' ' | '\t'))
        {
            return Err(format!(
                "holds `{c}`: an entry is a host name, `*.domain` or an IP address, with `:port` or without"
            ));
        }
        let (host, port) = split_authority(text)
            .ok_or_else(|| "is no host, `host:port` or `[IPv6]:port`".to_string())?;
        let port = match port {
            None => None,
            Some(p) => Some(
                p.parse::<u16>()
                    .ok()
                    .filter(|&p| p > 0)
                    .ok_or_else(|| format!("has no port number between 1 and 65535 (`{p}`)"))?,
            ),
        };
        let host = if let Some(ip) = ip_literal(host) {
            Host::Ip(ip)
        } else if let Some(domain) = host.strip_prefix("*.") {
            Host::Under(name(domain)?)
        } else if host.contains('*') {
            return Err("has a `*` that is not its first label: `*.example.com` allows every name below example.com".into());
        } else {
            Host::Name(name(host)?)
        };
        Ok(Self { host, port })
    }

    /// The ports it allows.
    fn ports(&self) -> Vec<u16> {
        match self.port {
            Some(p) => vec![p],
            None => DEFAULT_PORTS.to_vec(),
        }
    }
}

impl fmt::Display for Allowed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Host::Name(n) => f.write_str(n)?,
            Host::Under(d) => write!(f, "*.{d}")?,
            Host::Ip(IpAddr::V4(ip)) => write!(f, "{ip}")?,
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]")?,
        }
        match self.port {
            Some(p) => write!(f, ":{p}"),
            None => Ok(()),
        }
    }
}

impl Host {
    /// Whether a request for `host` is one this entry allows.
    fn matches(&self, host: &RequestHost) -> bool {
        match (self, host) {
            (Host::Name(own), RequestHost::Name(asked)) => own == asked,
            (Host::Under(domain), RequestHost::Name(asked)) => below(asked, domain),
            (Host::Ip(own), RequestHost::Ip(asked)) => own.to_canonical() == asked.to_canonical(),
            _ => false,
        }
    }

    /// Whether everything `other` allows, `self` allows.
    fn covers(&self, other: &Host) -> bool {
        match (self, other) {
            (Host::Name(a), Host::Name(b)) => a == b,
            (Host::Under(domain), Host::Name(name)) => below(name, domain),
            (Host::Under(domain), Host::Under(inner)) => inner == domain || below(inner, domain),
            (Host::Ip(a), Host::Ip(b)) => a.to_canonical() == b.to_canonical(),
            _ => false,
        }
    }
}

/// Whether `name` lies below `domain` (`a.b.example` below `example`).
fn below(name: &str, domain: &str) -> bool {
    name.strip_suffix(domain)
        .is_some_and(|rest| rest.len() > 1 && rest.ends_with('.'))
}

/// The host a request names, as the proxy reads it: a name (lowercase, no
/// trailing dot) or an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestHost {
    Name(String),
    Ip(IpAddr),
}

impl RequestHost {
    /// `host` (no port; an IPv6 address with or without brackets), or
    /// `None` if it is neither a host name nor an address.
    pub fn parse(host: &str) -> Option<Self> {
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if let Some(ip) = ip_literal(bare) {
            return Some(RequestHost::Ip(ip));
        }
        name(host).ok().map(RequestHost::Name)
    }
}

impl fmt::Display for RequestHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestHost::Name(n) => f.write_str(n),
            RequestHost::Ip(IpAddr::V4(ip)) => write!(f, "{ip}"),
            RequestHost::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
        }
    }
}

/// `host` and `port` of `host:port`, `host`, `[v6]:port`, `[v6]` or a bare
/// IPv6 address (no port: its colons are the address's); `None` for what
/// is none of those (an unclosed bracket, text after it).
pub fn split_authority(text: &str) -> Option<(&str, Option<&str>)> {
    if let Some(rest) = text.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        return match after {
            "" => Some((inside, None)),
            _ => after.strip_prefix(':').map(|port| (inside, Some(port))),
        };
    }
    match text.matches(':').count() {
        0 => Some((text, None)),
        1 => text.split_once(':').map(|(h, p)| (h, Some(p))),
        _ => Some((text, None)),
    }
}

/// `text` as an IP address: four decimal numbers, or IPv6 (brackets
/// taken off by [`split_authority`]). Not the other forms C's
/// `inet_aton` reads (`127.1`, `0x7f000001`): [`name`] refuses those.
fn ip_literal(text: &str) -> Option<IpAddr> {
    if let Ok(ip) = text.parse::<Ipv4Addr>() {
        return Some(IpAddr::V4(ip));
    }
    text.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
}

/// `text` as a host name: lowercase, without its trailing dot; or why it
/// is none.
fn name(text: &str) -> Result<String, String> {
    if !text.is_ascii() {
        return Err(
            "is not ASCII: write an internationalized name in its ASCII form (`xn--...`)".into(),
        );
    }
    let lower = text.to_ascii_lowercase();
    let name = lower.strip_suffix('.').unwrap_or(&lower);
    if name.is_empty() || name.len() > 253 {
        return Err("is no host name (1 to 253 characters)".into());
    }
    for label in name.split('.') {
        let fine = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !fine {
            return Err(format!(
                "is no host name (`{label}`: a name's parts are letters, digits, `-` and `_`, 1 to 63 of them)"
            ));
        }
    }
    // `127.1`, `2130706433` or `0x7f.1` are addresses to a resolver, not
    // names: a list holding one would allow an address it does not show.
    let last = name.rsplit('.').next().unwrap_or_default();
    let numeric = last.bytes().all(|b| b.is_ascii_digit())
        || (last.starts_with("0x") && last[2..].bytes().all(|b| b.is_ascii_hexdigit()));
    if numeric {
        return Err(
            "is neither a host name (whose last part is not a number) nor an IP address: write an IPv4 address as four numbers, `127.0.0.1`".into(),
        );
    }
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> AllowList {
        AllowList::new(entries.iter().map(|e| Allowed::parse(e).unwrap()).collect()).unwrap()
    }

    fn host(text: &str) -> RequestHost {
        RequestHost::parse(text).unwrap()
    }

    #[test]
    fn entries_read_as_names_domains_and_addresses_with_or_without_ports() {
        for (text, shown) in [
            ("Example.COM", "example.com"),
            ("example.com.", "example.com"),
            ("example.com:8443", "example.com:8443"),
            ("*.crates.io", "*.crates.io"),
            ("127.0.0.2", "127.0.0.2"),
            ("127.0.0.2:8000", "127.0.0.2:8000"),
            ("::1", "[::1]"),
            ("[::1]", "[::1]"),
            ("[2001:db8::1]:443", "[2001:db8::1]:443"),
            ("my_host", "my_host"),
        ] {
            assert_eq!(Allowed::parse(text).unwrap().to_string(), shown, "{text}");
        }
    }

    #[test]
    fn what_is_no_entry_says_why() {
        for (text, why) in [
            ("https://example.com/x", "is a URL, not a host"),
            ("example.com/path", "holds `/`"),
            ("user@example.com", "holds `@`"),
            ("example.com:0", "no port number"),
            ("example.com:99999", "no port number"),
            ("example.com:http", "no port number"),
            ("", "is no host name"),
            ("a..b", "is no host name"),
            ("-a.example", "is no host name"),
            ("a.*.example", "`*` that is not its first label"),
            ("*", "`*` that is not its first label"),
            ("127.1", "nor an IP address"),
            ("2130706433", "nor an IP address"),
            ("0x7f.1", "nor an IP address"),
            ("127.000.0.1", "nor an IP address"),
            ("[::1", "is no host"),
            ("[::1]x", "is no host"),
            ("bücher.example", "not ASCII"),
            ("exa mple.com", "holds ` `"),
        ] {
            let err = Allowed::parse(text).unwrap_err();
            assert!(err.contains(why), "{text:?}: {err}");
        }
    }

    #[test]
    fn a_name_allows_itself_on_80_and_443_and_nothing_else() {
        let l = list(&["example.com"]);
        assert!(l.allows(&host("example.com"), 443));
        assert!(l.allows(&host("EXAMPLE.com."), 80));
        assert!(!l.allows(&host("example.com"), 8080));
        assert!(!l.allows(&host("www.example.com"), 443));
        assert!(!l.allows(&host("example.com.evil"), 443));
        assert!(!l.allows(&host("93.184.215.14"), 443));
    }

    #[test]
    fn a_port_narrows_and_an_address_allows_only_itself() {
        let l = list(&["127.0.0.2:8000", "[::1]:9000"]);
        assert!(l.allows(&host("127.0.0.2"), 8000));
        assert!(!l.allows(&host("127.0.0.2"), 80));
        assert!(!l.allows(&host("127.0.0.3"), 8000));
        assert!(!l.allows(&host("localhost"), 8000));
        assert!(l.allows(&host("::1"), 9000));
        assert!(l.allows(&host("[::1]"), 9000));
        // The same address written as IPv4-mapped IPv6.
        assert!(l.allows(&host("::ffff:127.0.0.2"), 8000));
        assert_eq!(RequestHost::parse("127.1"), None);
        assert_eq!(RequestHost::parse("evil/x"), None);
    }

    #[test]
    fn a_domain_allows_the_names_below_it_only() {
        let l = list(&["*.example.com"]);
        assert!(l.allows(&host("a.example.com"), 443));
        assert!(l.allows(&host("a.b.example.com"), 443));
        assert!(!l.allows(&host("example.com"), 443));
        assert!(!l.allows(&host("badexample.com"), 443));
        assert!(!l.allows(&host("a.example.com.evil"), 443));
    }

    #[test]
    fn a_list_is_within_another_when_each_host_and_port_is() {
        let parent = list(&["example.com", "*.crates.io", "127.0.0.2:8000"]);
        for inside in [
            &["example.com"][..],
            &["example.com:443"],
            &["static.crates.io", "*.a.crates.io"],
            &["127.0.0.2:8000"],
            &["*.crates.io"],
        ] {
            assert!(list(inside).within(&parent), "{inside:?}");
        }
        for outside in [
            &["example.com:8080"][..],
            &["www.example.com"],
            &["crates.io"],
            &["127.0.0.2"],
            &["127.0.0.3:8000"],
            &["example.com", "other.com"],
        ] {
            assert!(!list(outside).within(&parent), "{outside:?}");
        }
        // 80 and 443 given apart cover a bare name.
        assert!(list(&["a.com"]).within(&list(&["a.com:80", "a.com:443"])));
    }

    #[test]
    fn none_a_list_and_full_are_ordered() {
        let hosts = TaskNetwork::Hosts(list(&["a.com"]));
        let more = TaskNetwork::Hosts(list(&["a.com", "b.com"]));
        assert!(!TaskNetwork::None.wider_than(&hosts));
        assert!(hosts.wider_than(&TaskNetwork::None));
        assert!(!hosts.wider_than(&TaskNetwork::Full));
        assert!(TaskNetwork::Full.wider_than(&hosts));
        assert!(more.wider_than(&hosts));
        assert!(!hosts.wider_than(&more));
        assert_eq!(more.to_string(), "[\"a.com\", \"b.com\"]");
    }
}
