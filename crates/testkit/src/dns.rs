//! A real DNS server of a test's own: dnsmasq on a free loopback port.
//!
//! It answers only the records a test gives it; it forwards nothing to other
//! servers.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use uuid::Uuid;

/// dnsmasq on a free loopback port, answering from the records the test
/// gives it and nothing else (no upstream, no hosts file; names under
/// `.test` it does not know are NXDOMAIN). The binary comes from Debian's
/// `dnsmasq-base`, which `deploy/dev` installs; `DNSMASQ` may name another.
///
/// Records are lines of dnsmasq's configuration: [`Self::txt_record`],
/// [`Self::cname_record`], [`Self::host_record`].
pub struct DnsServer {
    /// Where it answers (UDP and TCP).
    pub addr: SocketAddr,
    dir: PathBuf,
    fixed: Vec<String>,
    child: Option<Child>,
}

impl DnsServer {
    /// Starts dnsmasq with `records`.
    ///
    /// # Panics
    /// If dnsmasq cannot be found or does not start.
    #[must_use]
    pub fn start(records: &[String]) -> Self {
        Self::with_fixed(Vec::new(), records)
    }

    /// Starts dnsmasq with `fixed` records, kept through
    /// [`Self::set_records`], and `records`.
    ///
    /// # Panics
    /// If dnsmasq cannot be found or does not start.
    #[must_use]
    pub fn with_fixed(fixed: Vec<String>, records: &[String]) -> Self {
        let dir = std::env::temp_dir().join(format!("hg-dns-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("a temporary folder");
        let mut server = Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            dir,
            fixed,
            child: None,
        };
        // A free port may be taken between looking and binding: try a few.
        for _ in 0..10 {
            server.addr = free_port_for_udp_and_tcp();
            if server.run(records) {
                return server;
            }
        }
        panic!("dnsmasq did not start; see {}", server.dir.display());
    }

    /// A TXT record.
    #[must_use]
    pub fn txt_record(name: &str, value: &str) -> String {
        format!("txt-record={name},\"{value}\"")
    }

    /// A CNAME record (the target must be a name dnsmasq knows).
    #[must_use]
    pub fn cname_record(name: &str, target: &str) -> String {
        format!("cname={name},{target}")
    }

    /// An A or AAAA record (IPv4 or IPv6 `address`, in any form dnsmasq reads).
    #[must_use]
    pub fn host_record(name: &str, address: &str) -> String {
        format!("host-record={name},{address}")
    }

    /// Replaces every record but the fixed ones: rewrites the configuration
    /// and restarts dnsmasq on the same port.
    ///
    /// # Panics
    /// If dnsmasq does not restart.
    pub fn set_records(&mut self, records: &[String]) {
        self.stop();
        assert!(
            self.run(records),
            "dnsmasq did not restart; see {}",
            self.dir.display()
        );
    }

    fn binary() -> String {
        if let Ok(path) = std::env::var("DNSMASQ") {
            return path;
        }
        let in_path = Command::new("dnsmasq")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if in_path {
            "dnsmasq".to_owned()
        } else if std::path::Path::new("/usr/sbin/dnsmasq").exists() {
            "/usr/sbin/dnsmasq".to_owned()
        } else {
            panic!(
                "dnsmasq not found: install the Debian package dnsmasq-base (deploy/dev test does)"
            )
        }
    }

    /// Writes the configuration and starts dnsmasq; answers whether it serves.
    fn run(&mut self, records: &[String]) -> bool {
        let conf = self.dir.join("records.conf");
        let mut lines = vec!["local=/test/".to_owned()];
        lines.extend(self.fixed.iter().cloned());
        lines.extend(records.iter().cloned());
        std::fs::write(&conf, lines.join("\n") + "\n").expect("the configuration is written");
        let log = std::fs::File::create(self.dir.join("dnsmasq.log")).expect("a log file");
        let mut child = Command::new(Self::binary())
            .arg("--no-daemon")
            .arg("--no-resolv")
            .arg("--no-hosts")
            .arg(format!("--port={}", self.addr.port()))
            .arg("--listen-address=127.0.0.1")
            .arg("--bind-interfaces")
            .arg(format!("--conf-file={}", conf.display()))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("dnsmasq runs");
        // Ready when it answers a query over UDP, the way resolvers ask. A
        // TCP connect would not do: another test's listener may hold the
        // same port number over TCP while dnsmasq, unable to bind it, exits.
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").expect("a probe socket");
        probe
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("a read timeout");
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut id: u16 = 0;
        while Instant::now() < deadline {
            if child.try_wait().ok().flatten().is_some() {
                return false;
            }
            id = id.wrapping_add(1);
            if answers(&probe, self.addr, id) {
                self.child = Some(child);
                return true;
            }
        }
        drop(child.kill());
        drop(child.wait());
        false
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            drop(child.kill());
            drop(child.wait());
        }
    }
}

/// A loopback port free over both UDP and TCP (dnsmasq binds both).
fn free_port_for_udp_and_tcp() -> SocketAddr {
    loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        let addr = tcp.local_addr().expect("its address");
        if std::net::UdpSocket::bind(addr).is_ok() {
            return addr;
        }
    }
}

/// Whether a DNS server at `server` answers a query (id `id`, for
/// `ready.test`, type A) within the probe's read timeout. Any answer will do,
/// NXDOMAIN included: it is dnsmasq's.
fn answers(probe: &std::net::UdpSocket, server: SocketAddr, id: u16) -> bool {
    let mut query = Vec::with_capacity(32);
    query.extend_from_slice(&id.to_be_bytes());
    // Recursion desired; one question, nothing else.
    query.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in ["ready", "test"] {
        query.push(u8::try_from(label.len()).expect("a short label"));
        query.extend_from_slice(label.as_bytes());
    }
    query.extend_from_slice(&[0, 0, 1, 0, 1]);
    if probe.send_to(&query, server).is_err() {
        return false;
    }
    let mut answer = [0u8; 512];
    // Answers to earlier probes may still arrive: read until this one's or
    // the timeout.
    while let Ok((len, from)) = probe.recv_from(&mut answer) {
        if from == server && len >= 2 && answer[..2] == id.to_be_bytes() {
            return true;
        }
    }
    false
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop();
        drop(std::fs::remove_dir_all(&self.dir));
    }
}
