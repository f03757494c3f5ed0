//! A PgBouncer of one test's own in transaction-pooling mode, in front of
//! a PostgreSQL server, on a free loopback port: the pooler production may
//! put between the processes and PostgreSQL (docs/pgbouncer.md). The binary
//! is Debian's `pgbouncer`, which `deploy/dev` installs and names in
//! `PGBOUNCER_BIN`; the Debian service is never started.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::database::{OWNER_ROLE, SERVE_ROLE};

/// A running PgBouncer (`pool_mode = transaction`); stopped on drop.
pub struct ScratchPgBouncer {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl ScratchPgBouncer {
    /// Starts PgBouncer in front of the server `upstream_url` names (a
    /// PostgreSQL URL; its host and port are used), lending at most
    /// `pool_size` server connections per database and user: with 1, every
    /// client of one database and role shares one server connection, so
    /// whatever one leaves on it the next one meets. Every database of the
    /// server is reachable under its own name, as its own user; no password
    /// is asked (the test servers trust loopback).
    ///
    /// # Panics
    /// When `PGBOUNCER_BIN` is not set or PgBouncer does not come up.
    pub fn start(upstream_url: &str, pool_size: u32) -> Self {
        let bin = std::env::var_os("PGBOUNCER_BIN").unwrap_or_else(|| {
            panic!(
                "PGBOUNCER_BIN is not set: run `deploy/dev test`, which installs Debian's \
                 pgbouncer and exports it (or set it to the pgbouncer binary)"
            )
        });
        let upstream = url::Url::parse(upstream_url).expect("the upstream URL parses");
        let host = upstream.host_str().unwrap_or("127.0.0.1");
        let upstream_port = upstream.port().unwrap_or(5432);
        let dir = crate::scratch::scratch_dir("pgbouncer");
        let port = crate::scratch::free_port();
        // Trust: PgBouncer still wants every user listed in its auth file.
        let users: String = [SERVE_ROLE, OWNER_ROLE, upstream.username()]
            .iter()
            .filter(|u| !u.is_empty())
            .map(|u| format!("\"{u}\" \"\"\n"))
            .collect();
        std::fs::write(dir.join("userlist.txt"), users).expect("the auth file is written");
        let ini = format!(
            "[databases]\n\
             * = host={host} port={upstream_port}\n\
             [pgbouncer]\n\
             listen_addr = 127.0.0.1\n\
             listen_port = {port}\n\
             unix_socket_dir =\n\
             auth_type = trust\n\
             auth_file = {auth}\n\
             pool_mode = transaction\n\
             default_pool_size = {pool_size}\n\
             max_client_conn = 500\n\
             ignore_startup_parameters = extra_float_digits\n\
             logfile = {log}\n",
            auth = dir.join("userlist.txt").display(),
            log = dir.join("pgbouncer.log").display(),
        );
        let config = dir.join("pgbouncer.ini");
        std::fs::write(&config, ini).expect("the configuration is written");
        let mut command = Command::new(&bin);
        // PgBouncer refuses to run as root; it drops to `postgres` (the
        // user PostgreSQL's packages make) when asked to.
        if crate::scratch::is_root() {
            crate::scratch::give_to_postgres(&dir);
            command.args(["-u", "postgres"]);
        }
        let child = command
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{} does not run: {e}", PathBuf::from(&bin).display()));
        let mut bouncer = Self { child, dir, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            let exit = bouncer.child.try_wait().ok().flatten();
            if exit.is_some() || Instant::now() > deadline {
                let log =
                    std::fs::read_to_string(bouncer.dir.join("pgbouncer.log")).unwrap_or_default();
                panic!("PgBouncer did not come up (exit {exit:?}); its log:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bouncer
    }

    /// `url` (a PostgreSQL URL of the upstream server) with its host and
    /// port turned to PgBouncer's: the same database and user, pooled.
    pub fn url_for(&self, url: &str) -> String {
        let mut url = url::Url::parse(url).expect("a PostgreSQL URL");
        url.set_host(Some("127.0.0.1")).expect("a host can be set");
        url.set_port(Some(self.port)).expect("a port can be set");
        url.to_string()
    }

    /// The port it listens on.
    #[must_use]
    pub const fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for ScratchPgBouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
