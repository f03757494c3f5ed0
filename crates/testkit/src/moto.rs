//! An S3-compatible server for the page export tests: moto's server mode
//! (`moto[server]` from PyPI, pinned in `deploy/moto/requirements.txt`), one
//! per test, on a free loopback port; stopped (and able to be started again,
//! empty, on the same port) by the test.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// moto's server on loopback. Dropping it kills it.
#[derive(Debug)]
pub struct MotoServer {
    addr: SocketAddr,
    child: Option<Child>,
}

const INSTALL_HINT: &str = "run `deploy/dev test`, which installs it (pinned in \
     deploy/moto/requirements.txt) into .local/moto and sets MOTO_SERVER_BIN, or set \
     MOTO_SERVER_BIN to a moto_server executable";

fn moto_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("MOTO_SERVER_BIN") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "MOTO_SERVER_BIN names {}, which is not a file: {INSTALL_HINT}",
            path.display()
        );
        return path;
    }
    let installed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.local/moto/bin/moto_server");
    assert!(installed.is_file(), "moto_server not found: {INSTALL_HINT}");
    installed
}

impl MotoServer {
    /// Starts moto's server on a free loopback port and waits until it
    /// answers.
    ///
    /// # Panics
    /// If moto cannot be found or does not start.
    #[must_use]
    pub fn start() -> Self {
        // A free port may be taken between looking and binding: try a few.
        for _ in 0..10 {
            let addr = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free loopback port");
            if let Some(child) = run(addr) {
                return Self {
                    addr,
                    child: Some(child),
                };
            }
        }
        panic!("moto_server ({}) did not start", moto_binary().display());
    }

    /// `http://127.0.0.1:PORT`: the endpoint (`AWS_ENDPOINT_URL`).
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops it (SIGKILL): requests to its port are refused from now on.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            drop(child.kill());
            drop(child.wait());
        }
    }

    /// Starts it again on the same port, empty.
    ///
    /// # Panics
    /// If it does not start.
    pub fn restart(&mut self) {
        self.stop();
        let started = Instant::now();
        // The port was ours a moment ago; the kernel may hold it briefly.
        loop {
            if let Some(child) = run(self.addr) {
                self.child = Some(child);
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "moto_server did not start again on {}",
                self.addr
            );
        }
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts moto on `addr`; `None` when it exits first (the port was taken)
/// or does not answer within a minute.
fn run(addr: SocketAddr) -> Option<Child> {
    let mut child = Command::new(moto_binary())
        .arg("-H")
        .arg(addr.ip().to_string())
        .arg("-p")
        .arg(addr.port().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("moto_server does not run: {e}"));
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if child.try_wait().ok().flatten().is_some() {
            return None;
        }
        // Connecting is not enough (another process may hold the port): the
        // child must be alive and the port answering.
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            if child.try_wait().ok().flatten().is_none() {
                return Some(child);
            }
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(child.kill());
    drop(child.wait());
    None
}
