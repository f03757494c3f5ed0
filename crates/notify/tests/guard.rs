//! The SSRF guard, fed every textual form of forbidden addresses: as the
//! literal host of a URL (decimal, hexadecimal and octal IPv4 spellings,
//! short forms, IPv6 with every zero compression, upper-case hex, IPv4
//! tails, and the mapped, compatible, translated, NAT64 and 6to4 forms of
//! IPv4 addresses), and as the address a name resolves to, through a real
//! DNS server (dnsmasq) the guard's resolver asks.
//!
//! What a sender does with a refusal is tested in `webhook_http` and `sms`.

#![allow(
    clippy::unwrap_used,
    reason = "a test that cannot go on should fail loudly where it stopped"
)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use heliograph_notify::{AllowedTargets, Guard, HttpOutcome, Refusal, WebhookClient};
use heliograph_testkit::DnsServer;
use proptest::prelude::*;
use reqwest::Url;

mod common;
use common::AskServer;

const REFUSED: &str =
    "the target resolves to an address that is not allowed (loopback/private/link-local/metadata)";

/// Allowances under which an address must be refused: everything the
/// operator can allow, for what is forbidden always; nothing, for loopback
/// and private addresses.
const OPERATOR: AllowedTargets = AllowedTargets::OPERATOR;
const NOTHING: AllowedTargets = AllowedTargets {
    loopback: false,
    private: false,
};

/// IPv4 ranges refused whatever the operator allows, with the metadata
/// addresses as ranges of one.
const FORBIDDEN_V4: &[([u8; 4], u32)] = &[
    ([169, 254, 169, 254], 32),
    ([169, 254, 170, 2], 32),
    ([169, 254, 170, 23], 32),
    ([100, 100, 100, 200], 32),
    ([192, 0, 0, 192], 32),
    ([168, 63, 129, 16], 32),
    ([0, 0, 0, 0], 8),
    ([169, 254, 0, 0], 16),
    ([100, 64, 0, 0], 10),
    ([192, 0, 0, 0], 24),
    ([192, 0, 2, 0], 24),
    ([198, 51, 100, 0], 24),
    ([203, 0, 113, 0], 24),
    ([192, 88, 99, 0], 24),
    ([198, 18, 0, 0], 15),
    ([224, 0, 0, 0], 4),
    ([240, 0, 0, 0], 4),
];

/// IPv4 ranges refused unless the operator allows them.
const INTERNAL_V4: &[([u8; 4], u32)] = &[
    ([127, 0, 0, 0], 8),
    ([10, 0, 0, 0], 8),
    ([172, 16, 0, 0], 12),
    ([192, 168, 0, 0], 16),
];

/// IPv6 ranges refused whatever the operator allows.
const FORBIDDEN_V6: &[(&str, u32)] = &[
    ("fd00:ec2::254", 128),
    ("fd00:ec2::23", 128),
    ("fd20:ce::254", 128),
    ("::", 128),
    ("fe80::", 10),
    ("fec0::", 10),
    ("ff00::", 8),
    ("64:ff9b:1::", 48),
    ("100::", 64),
    ("2001::", 23),
    ("2001:db8::", 32),
    ("3fff::", 20),
];

/// IPv6 ranges refused unless the operator allows them.
const INTERNAL_V6: &[(&str, u32)] = &[("::1", 128), ("fc00::", 7)];

fn v4_in(net: [u8; 4], len: u32, bits: u32) -> Ipv4Addr {
    let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
    Ipv4Addr::from((u32::from(Ipv4Addr::from(net)) & mask) | (bits & !mask))
}

fn v6_in(net: &str, len: u32, bits: u128) -> Ipv6Addr {
    let net: Ipv6Addr = net.parse().unwrap();
    let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
    Ipv6Addr::from((u128::from(net) & mask) | (bits & !mask))
}

/// An address of one of `ranges`.
fn v4_of(ranges: &'static [([u8; 4], u32)]) -> impl Strategy<Value = Ipv4Addr> {
    (0..ranges.len(), any::<u32>()).prop_map(move |(i, bits)| {
        let (net, len) = ranges[i];
        v4_in(net, len, bits)
    })
}

/// An address of one of `ranges`.
fn v6_of(ranges: &'static [(&'static str, u32)]) -> impl Strategy<Value = Ipv6Addr> {
    // Host bits with long runs of zeros now and then, so that compression
    // has something to compress.
    let bits = prop_oneof![
        any::<u128>(),
        (any::<u16>(), 0..8_u32).prop_map(|(v, at)| u128::from(v) << (16 * at)),
        Just(0_u128),
    ];
    (0..ranges.len(), bits).prop_map(move |(i, bits)| {
        let (net, len) = ranges[i];
        v6_in(net, len, bits)
    })
}

/// Every spelling of an IPv4 address a WHATWG URL parser reads as that
/// address: dotted, one number (decimal, hex, octal), two or three parts
/// with the last one wide, hex and octal parts, upper-case hex, a trailing dot.
fn v4_hosts(ip: Ipv4Addr) -> Vec<String> {
    let [a, b, c, d] = ip.octets();
    let n = u32::from(ip);
    let dec = |v: u32| v.to_string();
    let hex = |v: u32| format!("0x{v:x}");
    let hex_upper = |v: u32| format!("0X{v:X}");
    let oct = |v: u32| format!("0{v:o}");
    let [a, b, c, d] = [a, b, c, d].map(u32::from);
    let mut hosts = vec![format!("{a}.{b}.{c}.{d}"), format!("{a}.{b}.{c}.{d}.")];
    for f in [dec, hex, hex_upper, oct] {
        hosts.push(f(n));
        hosts.push(format!("{}.{}", f(a), f((b << 16) | (c << 8) | d)));
        hosts.push(format!("{}.{}.{}", f(a), f(b), f((c << 8) | d)));
        hosts.push(format!("{}.{}.{}.{}", f(a), f(b), f(c), f(d)));
    }
    // Mixed bases in one address.
    hosts.push(format!("{}.{}.{}.{}", hex(a), oct(b), dec(c), hex_upper(d)));
    hosts.push(format!("{}.{}", oct(a), hex((b << 16) | (c << 8) | d)));
    hosts
}

/// Every spelling of an IPv6 address, bracketed: each run of zero groups
/// compressed (or none), groups in lower case, upper case and padded to four
/// digits, and with the last 32 bits as a dotted IPv4 tail.
fn v6_hosts(ip: Ipv6Addr) -> Vec<String> {
    let s = ip.segments();
    let styles: [fn(u16) -> String; 3] = [
        |g| format!("{g:x}"),
        |g| format!("{g:X}"),
        |g| format!("{g:04x}"),
    ];
    let tail = {
        let [.., a, b, c, d] = ip.octets();
        format!("{a}.{b}.{c}.{d}")
    };
    let mut hosts = Vec::new();
    for style in styles {
        // `groups` plain groups, then possibly the dotted tail.
        for (groups, tail) in [(8, None), (6, Some(&tail))] {
            let g: Vec<String> = s[..groups].iter().map(|&v| style(v)).collect();
            let end = |parts: &[String]| {
                let mut p = parts.to_vec();
                if let Some(t) = tail {
                    p.push(t.clone());
                }
                p
            };
            hosts.push(format!("[{}]", end(&g).join(":")));
            for i in 0..groups {
                for j in i + 1..=groups {
                    if s[i..j].iter().any(|&v| v != 0) {
                        break;
                    }
                    let left = g[..i].join(":");
                    let right = end(&g[j..]).join(":");
                    hosts.push(format!("[{left}::{right}]"));
                }
            }
        }
    }
    hosts.push(format!("[{ip}]"));
    hosts.sort();
    hosts.dedup();
    hosts
}

/// The IPv6 forms of an IPv4 address: mapped, compatible, SIIT-translated,
/// NAT64 (well-known and local-use prefixes) and 6to4.
fn v6_forms_of(v4: Ipv4Addr) -> Vec<Ipv6Addr> {
    let n = u128::from(u32::from(v4));
    let mut forms = vec![
        v4.to_ipv6_mapped(),
        Ipv6Addr::from((0xffff_u128 << 32) | n),
        Ipv6Addr::from((0x0064_ff9b_u128 << 96) | n),
        Ipv6Addr::from((0x0064_ff9b_0001_u128 << 80) | n),
        Ipv6Addr::from((0x2002_u128 << 112) | (n << 80)),
        Ipv6Addr::from((0x2002_u128 << 112) | (n << 80) | 1),
    ];
    // `::` and `::1` are the unspecified and loopback addresses, not
    // IPv4-compatible forms of 0.0.0.0 and 0.0.0.1.
    if n > 1 {
        forms.push(v4.to_ipv6_compatible());
    }
    forms
}

/// Every URL host spelling `ip`, IPv6 forms of an IPv4 address included.
fn all_hosts(ip: IpAddr) -> Vec<String> {
    match ip {
        IpAddr::V4(v4) => {
            let mut hosts = v4_hosts(v4);
            for form in v6_forms_of(v4) {
                hosts.extend(v6_hosts(form));
            }
            hosts
        }
        IpAddr::V6(v6) => v6_hosts(v6),
    }
}

/// A runtime and a webhook client per allowance, built once: building a
/// client loads the TLS roots, which would cost more than the cases.
struct Senders {
    runtime: tokio::runtime::Runtime,
    operator: WebhookClient,
    nothing: WebhookClient,
}

static SENDERS: std::sync::LazyLock<Senders> = std::sync::LazyLock::new(|| {
    drop(rustls::crypto::ring::default_provider().install_default());
    let client = |allow| WebhookClient::new(allow, Duration::from_secs(2), "guard-test").unwrap();
    Senders {
        runtime: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
        operator: client(OPERATOR),
        nothing: client(NOTHING),
    }
});

/// Checks that every spelling of `ip` is a URL the parser reads, and that
/// the guard refuses it, before sending and through the webhook client.
fn assert_every_spelling_refused(ip: IpAddr, allow: AllowedTargets, port: u16) {
    let guard = Guard::new(allow);
    let senders = &*SENDERS;
    let client = if allow == OPERATOR {
        &senders.operator
    } else {
        &senders.nothing
    };
    for host in all_hosts(ip) {
        let url = format!("http://{host}:{port}/latest/meta-data/");
        let parsed = Url::parse(&url);
        assert!(parsed.is_ok(), "{url} must be a URL the parser accepts");
        if let (IpAddr::V4(v4), Some(h)) = (ip, parsed.as_ref().unwrap().host_str())
            && !h.starts_with('[')
        {
            assert_eq!(h, v4.to_string(), "{url} spells {ip}");
        }
        assert_eq!(guard.check_url(&url), Err(Refusal::Address), "{url}");
        let sent = senders.runtime.block_on(client.post_json(
            url.as_str(),
            Vec::<(&str, &str)>::new(),
            b"{}",
        ));
        assert_eq!(sent.outcome, HttpOutcome::Permanent, "{url}: {sent:?}");
        assert_eq!(sent.error.as_deref(), Some(REFUSED), "{url}");
    }
}

proptest! {
    // Each IPv4 address has hundreds of spellings (its IPv6 forms with
    // every compression): fewer addresses, each tried in all of them.
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_spelling_of_a_forbidden_ipv4_address_is_refused(
        ip in v4_of(FORBIDDEN_V4),
        port in 1..=u16::MAX,
    ) {
        assert_every_spelling_refused(IpAddr::V4(ip), OPERATOR, port);
    }

    #[test]
    fn every_spelling_of_a_loopback_or_private_ipv4_address_is_refused_unless_allowed(
        ip in v4_of(INTERNAL_V4),
        port in 1..=u16::MAX,
    ) {
        assert_every_spelling_refused(IpAddr::V4(ip), NOTHING, port);
    }
}

proptest! {
    #[test]
    fn every_spelling_of_a_forbidden_ipv6_address_is_refused(
        ip in v6_of(FORBIDDEN_V6),
        port in 1..=u16::MAX,
    ) {
        assert_every_spelling_refused(IpAddr::V6(ip), OPERATOR, port);
    }

    #[test]
    fn every_spelling_of_a_loopback_or_private_ipv6_address_is_refused_unless_allowed(
        ip in v6_of(INTERNAL_V6),
        port in 1..=u16::MAX,
    ) {
        assert_every_spelling_refused(IpAddr::V6(ip), NOTHING, port);
    }
}

/// Forbidden addresses as a name's A or AAAA record: the address itself,
/// and for IPv4 its IPv6 forms.
fn forbidden_answers() -> impl Strategy<Value = Vec<IpAddr>> {
    let one = prop_oneof![
        v4_of(FORBIDDEN_V4).prop_flat_map(|v4| {
            let mut forms: Vec<IpAddr> = vec![IpAddr::V4(v4)];
            forms.extend(v6_forms_of(v4).into_iter().map(IpAddr::V6));
            proptest::sample::select(forms)
        }),
        v6_of(FORBIDDEN_V6).prop_map(IpAddr::V6),
    ];
    proptest::collection::vec(one, 1..8)
}

proptest! {
    // Each case starts a DNS server of its own: fewer cases, several names each.
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn a_name_resolving_to_a_forbidden_address_is_refused(
        answers in forbidden_answers(),
        port in 1..=u16::MAX,
    ) {
        let records: Vec<String> = answers
            .iter()
            .enumerate()
            .map(|(i, ip)| DnsServer::host_record(&format!("h{i}.guard.test"), &ip.to_string()))
            .collect();
        let dns = DnsServer::start(&records);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        drop(rustls::crypto::ring::default_provider().install_default());
        runtime.block_on(async {
            let guard = Guard::new(OPERATOR).with_lookup(AskServer::new(dns.addr));
            let client = WebhookClient::with_guard(guard, Duration::from_secs(5), "guard-test").unwrap();
            for (i, ip) in answers.iter().enumerate() {
                let url = format!("http://h{i}.guard.test:{port}/");
                let sent = client.post_json(&url, Vec::<(&str, &str)>::new(), b"{}").await;
                assert_eq!(sent.outcome, HttpOutcome::Permanent, "{url} ({ip}): {sent:?}");
                assert_eq!(sent.error.as_deref(), Some(REFUSED), "{url} ({ip})");
            }
        });
    }
}

#[actix_web::test]
async fn a_name_resolving_to_an_allowed_address_is_reached_through_the_same_lookup() {
    // The counterpart of the property above: the lookup works, so the
    // refusals there are the guard's and not a resolver's failure.
    let receiver = heliograph_testkit::HttpReceiver::start().await.unwrap();
    let port = receiver.addr().port();
    let dns = DnsServer::start(&[
        DnsServer::host_record("hook.guard.test", "127.0.0.1"),
        DnsServer::host_record("meta.guard.test", "169.254.169.254"),
    ]);
    drop(rustls::crypto::ring::default_provider().install_default());
    let guard = Guard::new(AllowedTargets {
        loopback: true,
        private: false,
    })
    .with_lookup(AskServer::new(dns.addr));
    let client = WebhookClient::with_guard(guard, Duration::from_secs(5), "guard-test").unwrap();
    let reached = client
        .post_json(
            &format!("http://hook.guard.test:{port}/in"),
            Vec::<(&str, &str)>::new(),
            b"{}",
        )
        .await;
    assert_eq!(reached.outcome, HttpOutcome::Delivered, "{reached:?}");
    let refused = client
        .post_json(
            &format!("http://meta.guard.test:{port}/"),
            Vec::<(&str, &str)>::new(),
            b"{}",
        )
        .await;
    assert_eq!(refused.error.as_deref(), Some(REFUSED));
    assert_eq!(
        receiver.requests().len(),
        1,
        "only the allowed name was reached"
    );
}
