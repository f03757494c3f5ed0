//! The outbound address guard: what an HTTP request of ours may connect to.
//!
//! Every HTTP client the platform builds (webhooks, Slack and Teams
//! messages, the SMS provider) is built by [`Guard::client_builder`], so
//! every connection goes through it. A tenant's subscriber names the URL of
//! a webhook; without a guard it could make our worker fetch the cloud's
//! metadata service (credentials), our own admin endpoints, or anything in
//! the private network (SSRF).
//!
//! The rules, by address (see [`classify`]):
//!
//! - **Always refused**, whatever the operator allows: cloud metadata and
//!   host-service addresses (AWS `169.254.169.254`, `169.254.170.2`,
//!   `169.254.170.23`, `fd00:ec2::254`, `fd00:ec2::23`; Google Cloud
//!   `fd20:ce::254`; Alibaba `100.100.100.200`; Oracle `192.0.0.192`;
//!   Azure's WireServer `168.63.129.16`), link-local (`169.254.0.0/16`,
//!   `fe80::/10`), the unspecified and "this network" addresses
//!   (`0.0.0.0/8`, `::`), shared address space (`100.64.0.0/10`), IETF
//!   protocol assignments (`192.0.0.0/24`, `2001::/23`, Teredo among them),
//!   documentation (`192.0.2.0/24`, `198.51.100.0/24`, `203.0.113.0/24`,
//!   `2001:db8::/32`, `3fff::/20`), benchmarking (`198.18.0.0/15`), the
//!   6to4 relay anycast (`192.88.99.0/24`), multicast, `240.0.0.0/4` and
//!   broadcast, deprecated site-local (`fec0::/10`), and every IPv6 address
//!   outside global unicast (`2000::/3`) that the rules below do not name.
//! - **Loopback** (`127.0.0.0/8`, `::1`) only when the operator allows it
//!   (tests, single-machine setups); **private** (RFC 1918, `fc00::/7`)
//!   only when the operator allows that.
//! - **IPv6 forms of an IPv4 address** are judged by the IPv4 address they
//!   carry: IPv4-mapped `::ffff:a.b.c.d` (on a dual-stack socket this *is*
//!   the IPv4 address, so it gets the same allowances); IPv4-compatible
//!   `::a.b.c.d`, SIIT-translated `::ffff:0:a.b.c.d`, NAT64 `64:ff9b::/96`
//!   and 6to4 `2002::/16` reach the address through a translator or a
//!   tunnel, so they pass only when the address they carry is public. The
//!   local-use NAT64 prefix `64:ff9b:1::/48` (and the rest of
//!   `64:ff9b::/32`) is refused: where it puts the IPv4 address is the
//!   site's choice, and it leads into the site.
//!
//! Where it is checked: a URL's host is parsed as a WHATWG URL parser does
//! (reqwest's), which turns every IPv4 spelling (`2130706433`, `0x7f.1`,
//! `0177.0.0.1`) into dotted form and every IPv6 spelling into its
//! canonical form, exactly what the connector then connects to; a literal
//! host is checked before anything is sent. A name is resolved by the
//! client's resolver, which is ours: it resolves once and hands the
//! connector only the addresses the guard accepts, so a name cannot answer
//! a public address to a check and a metadata address to the connection
//! (DNS rebinding). Proxies are off (a proxy would resolve names for us,
//! out of the guard's sight) and redirects are not followed (they would
//! reach a host nobody checked).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect::Policy;

/// What the operator lets outbound requests reach besides the public internet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AllowedTargets {
    /// 127.0.0.0/8 and ::1 (for tests and single-machine setups).
    pub loopback: bool,
    /// RFC 1918 and unique-local addresses (for receivers inside a private
    /// network). Metadata addresses among them stay refused.
    pub private: bool,
}

impl AllowedTargets {
    /// Loopback and private addresses: for a target the operator names
    /// itself (the SMS provider), which may well run inside its network.
    /// What is refused always stays refused.
    pub const OPERATOR: Self = Self {
        loopback: true,
        private: true,
    };
}

/// What kind of destination an address is, for the guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    /// Reachable on the public internet: allowed.
    Public,
    /// The machine itself: allowed only with [`AllowedTargets::loopback`].
    Loopback,
    /// A private network: allowed only with [`AllowedTargets::private`].
    Private,
    /// Never allowed: metadata, link-local, reserved, and the like.
    Forbidden,
}

/// Cloud metadata and host-service addresses in IPv4: refused even where
/// their range would be allowed (and named even where the range is refused
/// anyway, so that a change of the range rules cannot let them through).
const METADATA_V4: [Ipv4Addr; 6] = [
    Ipv4Addr::new(169, 254, 169, 254), // AWS, Azure, GCP, DigitalOcean, OpenStack…
    Ipv4Addr::new(169, 254, 170, 2),   // AWS ECS task metadata and credentials
    Ipv4Addr::new(169, 254, 170, 23),  // AWS EKS Pod Identity agent
    Ipv4Addr::new(100, 100, 100, 200), // Alibaba Cloud
    Ipv4Addr::new(192, 0, 0, 192),     // Oracle Cloud
    Ipv4Addr::new(168, 63, 129, 16),   // Azure WireServer (a public-looking address)
];

/// Cloud metadata addresses in IPv6 (unique-local, so private would allow them).
const METADATA_V6: [Ipv6Addr; 3] = [
    Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254), // AWS IMDS
    Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0023), // AWS EKS Pod Identity agent
    Ipv6Addr::new(0xfd20, 0x00ce, 0, 0, 0, 0, 0, 0x0254), // Google Cloud
];

/// Whether `ip` lies in `net/len`.
fn in_v4(ip: Ipv4Addr, net: [u8; 4], len: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

/// Whether `ip` lies in `net/len`.
fn in_v6(ip: Ipv6Addr, net: Ipv6Addr, len: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
    u128::from(ip) & mask == u128::from(net) & mask
}

/// The class of an IPv4 address.
#[must_use]
pub fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    use AddressClass::{Forbidden, Loopback, Private, Public};
    if METADATA_V4.contains(&ip) {
        return Forbidden;
    }
    if in_v4(ip, [127, 0, 0, 0], 8) {
        return Loopback;
    }
    if in_v4(ip, [10, 0, 0, 0], 8)
        || in_v4(ip, [172, 16, 0, 0], 12)
        || in_v4(ip, [192, 168, 0, 0], 16)
    {
        return Private;
    }
    const FORBIDDEN: [([u8; 4], u32); 12] = [
        ([0, 0, 0, 0], 8),       // "this network", 0.0.0.0
        ([169, 254, 0, 0], 16),  // link-local, where metadata services live
        ([100, 64, 0, 0], 10),   // shared address space (carrier-grade NAT)
        ([192, 0, 0, 0], 24),    // IETF protocol assignments
        ([192, 0, 2, 0], 24),    // documentation
        ([198, 51, 100, 0], 24), // documentation
        ([203, 0, 113, 0], 24),  // documentation
        ([192, 88, 99, 0], 24),  // 6to4 relay anycast (deprecated)
        ([198, 18, 0, 0], 15),   // benchmarking
        ([224, 0, 0, 0], 4),     // multicast
        ([240, 0, 0, 0], 4),     // reserved, and the broadcast address
        ([255, 255, 255, 255], 32),
    ];
    if FORBIDDEN.iter().any(|&(net, len)| in_v4(ip, net, len)) {
        return Forbidden;
    }
    Public
}

/// The IPv4 address an IPv6 address carries, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Embedded {
    /// `::ffff:a.b.c.d`: the IPv4 address itself, on a dual-stack socket.
    Mapped(Ipv4Addr),
    /// Compatible, translated, NAT64, 6to4: reached through something else.
    Carried(Ipv4Addr),
}

fn embedded_v4(ip: Ipv6Addr) -> Option<Embedded> {
    let bits = u128::from(ip);
    let s = ip.segments();
    let low = Ipv4Addr::from((u32::from(s[6]) << 16) | u32::from(s[7]));
    let zero = Ipv6Addr::UNSPECIFIED;
    if in_v6(ip, Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), 96) {
        return Some(Embedded::Mapped(low));
    }
    // `::` and `::1` are not IPv4-compatible addresses (RFC 4291 §2.5.5.1).
    if in_v6(ip, zero, 96) && bits > 1 {
        return Some(Embedded::Carried(low));
    }
    if in_v6(ip, Ipv6Addr::new(0, 0, 0, 0, 0xffff, 0, 0, 0), 96) // SIIT, RFC 2765
        || in_v6(ip, Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96)
    {
        return Some(Embedded::Carried(low));
    }
    if in_v6(ip, Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16) {
        let [_, hi, lo, ..] = ip.segments();
        return Some(Embedded::Carried(Ipv4Addr::from(
            (u32::from(hi) << 16) | u32::from(lo),
        )));
    }
    None
}

/// The class of an IPv6 address.
#[must_use]
pub fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    use AddressClass::{Forbidden, Loopback, Private, Public};
    if METADATA_V6.contains(&ip) {
        return Forbidden;
    }
    if ip == Ipv6Addr::LOCALHOST {
        return Loopback;
    }
    match embedded_v4(ip) {
        Some(Embedded::Mapped(v4)) => return classify_v4(v4),
        Some(Embedded::Carried(v4)) => {
            return match classify_v4(v4) {
                Public => Public,
                _ => Forbidden,
            };
        }
        None => {}
    }
    let net = |s: [u16; 2]| Ipv6Addr::new(s[0], s[1], 0, 0, 0, 0, 0, 0);
    if in_v6(ip, net([0xfc00, 0]), 7) {
        return Private;
    }
    // Everything outside global unicast: the unspecified address, the rest
    // of ::/8, 64:ff9b::/32 beyond the NAT64 /96 (64:ff9b:1::/48 among it),
    // 100::/64 (discard), link-local fe80::/10, site-local fec0::/10,
    // multicast ff00::/8, and all that is unassigned.
    if !in_v6(ip, net([0x2000, 0]), 3) {
        return Forbidden;
    }
    if in_v6(ip, net([0x2001, 0]), 23) // IETF protocol assignments, Teredo among them
        || in_v6(ip, net([0x2001, 0x0db8]), 32) // documentation
        || in_v6(ip, net([0x3fff, 0]), 20)
    // documentation (RFC 9637)
    {
        return Forbidden;
    }
    Public
}

/// The class of an address.
#[must_use]
pub fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

/// Whether an outbound request may connect to `ip` under `allow`.
#[must_use]
pub fn address_allowed(ip: IpAddr, allow: AllowedTargets) -> bool {
    match classify(ip) {
        AddressClass::Public => true,
        AddressClass::Loopback => allow.loopback,
        AddressClass::Private => allow.private,
        AddressClass::Forbidden => false,
    }
}

/// Why the guard refused a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The URL does not parse.
    #[error("the target is not a valid URL")]
    InvalidUrl,
    /// Neither `http` nor `https`.
    #[error("the target's scheme is not http or https")]
    Scheme,
    /// No host in it.
    #[error("the target URL has no host")]
    NoHost,
    /// Its host is, or resolves to, an address the guard refuses.
    #[error(
        "the target resolves to an address that is not allowed (loopback/private/link-local/metadata)"
    )]
    Address,
}

/// A name that resolved to no address at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the target's host name has no address")]
pub struct NoAddress;

/// The guard: what outbound requests may reach, and how names are resolved.
#[derive(Clone)]
pub struct Guard {
    allow: AllowedTargets,
    lookup: Option<Arc<dyn Resolve>>,
}

impl fmt::Debug for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("allow", &self.allow)
            .field("system_resolver", &self.lookup.is_none())
            .finish()
    }
}

impl Guard {
    /// A guard allowing `allow` besides public addresses, resolving names
    /// with the system's resolver (`getaddrinfo`: hosts file, search
    /// domains and all).
    #[must_use]
    pub fn new(allow: AllowedTargets) -> Self {
        Self {
            allow,
            lookup: None,
        }
    }

    /// The same guard, with names looked up by `lookup` instead of the
    /// system's resolver (tests point it at a DNS server of their own).
    /// Only the lookup changes: every address it answers is still filtered.
    #[must_use]
    pub fn with_lookup(mut self, lookup: Arc<dyn Resolve>) -> Self {
        self.lookup = Some(lookup);
        self
    }

    /// What it allows.
    #[must_use]
    pub const fn allowed(&self) -> AllowedTargets {
        self.allow
    }

    /// `raw` as the URL a client would request, if it may be requested as
    /// far as can be told without resolving it: `http` or `https`, with a
    /// host that, if it is an address, is one the guard accepts.
    pub fn check_url(&self, raw: &str) -> Result<Url, Refusal> {
        let url = Url::parse(raw.trim()).map_err(|_| Refusal::InvalidUrl)?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refusal::Scheme);
        }
        let host = url.host_str().ok_or(Refusal::NoHost)?;
        // The parser has turned every spelling of an address into the form
        // the connector parses (dotted IPv4, bracketed canonical IPv6); a
        // host that parses here is connected to without any resolver.
        let literal = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host)
            .parse::<IpAddr>();
        if let Ok(ip) = literal
            && !address_allowed(ip, self.allow)
        {
            return Err(Refusal::Address);
        }
        Ok(url)
    }

    /// A client builder whose connections go only where the guard allows:
    /// names resolved by the guard's resolver (which drops refused
    /// addresses), no proxy, no redirects. Callers add timeouts and the
    /// like, and must still pass each URL through [`Self::check_url`]
    /// (literal addresses never reach a resolver).
    pub fn client_builder(&self) -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .redirect(Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver {
                allow: self.allow,
                lookup: self.lookup.clone(),
            }))
    }
}

/// The resolver that keeps only allowed addresses.
struct GuardedResolver {
    allow: AllowedTargets,
    lookup: Option<Arc<dyn Resolve>>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow;
        let lookup = self.lookup.clone();
        Box::pin(async move {
            let found: Vec<SocketAddr> = match lookup {
                Some(lookup) => lookup.resolve(name).await?.collect(),
                None => tokio::net::lookup_host((name.as_str(), 0)).await?.collect(),
            };
            let kept = allowed_addresses(found, allow)?;
            Ok(Box::new(kept.into_iter()) as Addrs)
        })
    }
}

/// The addresses of `found` that may be connected to; an error when there
/// were none, or when every one was refused.
fn allowed_addresses(
    found: Vec<SocketAddr>,
    allow: AllowedTargets,
) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
    if found.is_empty() {
        return Err(Box::new(NoAddress));
    }
    let kept: Vec<SocketAddr> = found
        .into_iter()
        .filter(|a| address_allowed(a.ip(), allow))
        .collect();
    if kept.is_empty() {
        return Err(Box::new(Refusal::Address));
    }
    Ok(kept)
}

/// Whether an error of type `T` is in `e`'s chain of sources.
pub(crate) fn has_cause<T: std::error::Error + 'static>(
    e: &(dyn std::error::Error + 'static),
) -> bool {
    let mut current = Some(e);
    while let Some(err) = current {
        if err.is::<T>() {
            return true;
        }
        current = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        SocketAddr::new(s.parse().unwrap(), 0)
    }

    fn refused_always(ip: &str) {
        let ip: IpAddr = ip.parse().unwrap();
        assert!(
            !address_allowed(ip, AllowedTargets::OPERATOR),
            "{ip} must be refused even with loopback and private allowed"
        );
    }

    #[test]
    fn only_allowed_addresses_are_handed_to_the_connection() {
        let none = AllowedTargets::default();
        let kept = allowed_addresses(vec![addr("10.0.0.1"), addr("93.184.216.34")], none).unwrap();
        assert_eq!(kept, vec![addr("93.184.216.34")]);
        let refused =
            allowed_addresses(vec![addr("127.0.0.1"), addr("169.254.169.254")], none).unwrap_err();
        assert_eq!(refused.downcast_ref::<Refusal>(), Some(&Refusal::Address));
        let nothing = allowed_addresses(vec![], none).unwrap_err();
        assert!(nothing.downcast_ref::<NoAddress>().is_some());
    }

    #[test]
    fn internal_addresses_are_refused_unless_allowed() {
        let none = AllowedTargets::default();
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.1",
            "198.18.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "fc00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2001:db8::1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(!address_allowed(ip, none), "{ip} must be refused");
        }
        for ip in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(address_allowed(ip, none), "{ip} is public");
        }
        let loopback = AllowedTargets {
            loopback: true,
            private: false,
        };
        assert!(address_allowed("127.0.0.1".parse().unwrap(), loopback));
        assert!(address_allowed("::1".parse().unwrap(), loopback));
        assert!(!address_allowed("10.0.0.1".parse().unwrap(), loopback));
        assert!(!address_allowed(
            "169.254.169.254".parse().unwrap(),
            AllowedTargets {
                loopback: true,
                private: true
            }
        ));
    }

    #[test]
    fn metadata_addresses_are_refused_even_with_private_and_loopback_allowed() {
        for ip in [
            "169.254.169.254",
            "169.254.170.2",
            "169.254.170.23",
            "100.100.100.200",
            "192.0.0.192",
            "168.63.129.16",
            "fd00:ec2::254",
            "fd00:ec2::23",
            "fd20:ce::254",
            "::ffff:169.254.169.254",
            "::169.254.169.254",
            "64:ff9b::169.254.169.254",
            "2002:a9fe:a9fe::",
        ] {
            refused_always(ip);
        }
        // Their neighbours in the private ranges are private, not forbidden.
        for ip in ["fd00:ec2::253", "fd20:ce::1", "10.0.0.1"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(address_allowed(ip, AllowedTargets::OPERATOR), "{ip}");
            assert!(!address_allowed(ip, AllowedTargets::default()), "{ip}");
        }
    }

    #[test]
    fn reserved_and_special_ranges_are_refused_always() {
        for ip in [
            "0.0.0.0",
            "0.1.2.3",
            "169.254.1.1",
            "100.64.0.1",
            "192.0.0.1",
            "192.0.0.170",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "192.88.99.1",
            "198.18.0.1",
            "198.19.255.255",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::2:0:0:1",
            "100::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "feff::1",
            "ff02::1",
            "64:ff9b:1::a00:1",
            "64:ff9b:1::5db8:d822",
            "64:ff9b:0:1::1",
            "2001::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:2::1",
            "2001:db8::1",
            "3fff::1",
            "4000::1",
            "::0.0.0.2",
            "::ffff:0:10.0.0.1",
        ] {
            refused_always(ip);
        }
    }

    #[test]
    fn ipv6_forms_of_an_ipv4_address_are_judged_by_that_address() {
        let none = AllowedTargets::default();
        let loopback = AllowedTargets {
            loopback: true,
            private: false,
        };
        let check = |ip: &str, allow| address_allowed(ip.parse().unwrap(), allow);
        // Mapped: the address itself, with its allowances.
        assert!(!check("::ffff:127.0.0.1", none));
        assert!(check("::ffff:127.0.0.1", loopback));
        assert!(!check("::ffff:10.1.2.3", none));
        assert!(check("::ffff:93.184.216.34", none));
        // Carried through something else: only public addresses pass.
        for form in [
            "::127.0.0.1",
            "::10.0.0.1",
            "::ffff:0:127.0.0.1",
            "64:ff9b::127.0.0.1",
            "64:ff9b::10.0.0.1",
            "2002:7f00:1::",
            "2002:c0a8:101::1",
        ] {
            assert!(!check(form, none), "{form}");
            refused_always(form);
        }
        for form in [
            "::93.184.216.34",
            "64:ff9b::93.184.216.34",
            "2002:5db8:d822::1",
        ] {
            assert!(check(form, none), "{form} carries a public address");
        }
    }

    #[test]
    fn loopback_and_private_depend_on_what_is_allowed() {
        let none = AllowedTargets::default();
        for ip in ["127.0.0.1", "127.255.0.9", "::1"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(classify(ip), AddressClass::Loopback, "{ip}");
            assert!(!address_allowed(ip, none));
        }
        for ip in [
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "fc00::1",
            "fd12::1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(classify(ip), AddressClass::Private, "{ip}");
            assert!(!address_allowed(ip, none));
        }
        for ip in [
            "93.184.216.34",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700:4700::1111",
            "2a00:1450::1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(classify(ip), AddressClass::Public, "{ip}");
            assert!(address_allowed(ip, none));
        }
    }

    #[test]
    fn urls_are_checked_by_the_address_the_connector_will_use() {
        let guard = Guard::new(AllowedTargets::default());
        for url in [
            "http://2130706433/",
            "http://0x7f.1/",
            "http://0177.0.0.1/",
            "http://127.1:8080/",
            "http://[::ffff:7f00:1]/",
            "http://[0:0:0:0:0:FFFF:127.0.0.1]/",
            "http://[fd00:ec2::254]/latest",
            "https://169.254.169.254./",
        ] {
            assert_eq!(guard.check_url(url).unwrap_err(), Refusal::Address, "{url}");
        }
        assert_eq!(
            guard.check_url("ftp://example.com/").unwrap_err(),
            Refusal::Scheme
        );
        assert_eq!(
            guard.check_url("not a url").unwrap_err(),
            Refusal::InvalidUrl
        );
        assert!(guard.check_url("https://hooks.example.com/x").is_ok());
        assert!(guard.check_url("http://93.184.216.34/").is_ok());
    }

    #[test]
    fn the_refusal_names_the_rule_and_nothing_else() {
        assert_eq!(
            Refusal::Address.to_string(),
            "the target resolves to an address that is not allowed (loopback/private/link-local/metadata)"
        );
    }
}
