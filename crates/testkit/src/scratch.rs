//! PostgreSQL and Redis servers of a test's own, on free loopback ports, so
//! the test can stop and start them without touching the shared instances
//! other tests run on. The binaries are the ones `deploy/dev` installs.
//!
//! Besides stopping (a refusal: connections are reset), a server can be
//! *frozen*: SIGSTOP on every one of its processes, as a network partition or
//! an overloaded server looks from a client. The kernel still accepts
//! connections and acknowledges bytes, so nothing fails; nothing answers
//! either, and only the client's own timeouts notice. A frozen server is
//! thawed (SIGCONT) before it is stopped or dropped, so no test leaves a
//! stopped process behind, even when it panics.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

pub(crate) fn scratch_dir(kind: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hg-{kind}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

fn wait_for_port(port: u16, up: bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() != up {
        assert!(
            Instant::now() < deadline,
            "port {port} did not go {}",
            if up { "up" } else { "down" }
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends `signal` (`STOP` or `CONT`) to each process in `pids`; answers
/// whether it reached every one (a process may have ended meanwhile).
fn signal(signal: &str, pids: &[u32]) -> bool {
    if pids.is_empty() {
        return true;
    }
    Command::new("kill")
        .arg(format!("-{signal}"))
        .arg("--")
        .args(pids.iter().map(u32::to_string))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("kill runs")
        .success()
}

/// The processes whose parent is `parent`, from `/proc`.
fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            // `pid (comm) state ppid …`; comm may hold spaces and parentheses.
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    let (_, rest) = stat.rsplit_once(')')?;
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(parent)
        })
        .collect()
}

/// Whether we run as root (PostgreSQL then runs as the `postgres` user).
pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Gives `dir` (and all in it) to the `postgres` user, which the servers
/// that refuse root (PostgreSQL, PgBouncer) run as.
pub(crate) fn give_to_postgres(dir: &std::path::Path) {
    let status = Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(dir)
        .status()
        .expect("chown runs");
    assert!(
        status.success(),
        "the scratch directory is given to postgres"
    );
}

/// A PostgreSQL cluster of one test's own.
pub struct ScratchPostgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    /// The processes [`ScratchPostgres::freeze`] stopped, to thaw.
    frozen: std::sync::Mutex<Vec<u32>>,
}

impl ScratchPostgres {
    /// `initdb` and start a cluster (trust authentication, loopback only).
    pub fn start() -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL is installed (deploy/dev installs it)")
            .filter_map(Result::ok)
            .map(|e| e.path().join("bin"))
            .find(|b| b.join("initdb").exists())
            .expect("an initdb under /usr/lib/postgresql/*/bin");
        let dir = scratch_dir("pg");
        if is_root() {
            give_to_postgres(&dir);
        }
        let pg = Self {
            bin,
            dir,
            port: free_port(),
            frozen: std::sync::Mutex::default(),
        };
        pg.run(
            "initdb",
            &[
                "-D",
                &pg.data(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ],
        );
        pg.start_server();
        pg
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn run(&self, program: &str, args: &[&str]) {
        let path = self.bin.join(program);
        let mut command = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        let output = command
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{program} runs: {e}"));
        assert!(
            output.status.success(),
            "{program} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn start_server(&self) {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -c port={} -c unix_socket_directories={} -c fsync=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("postgres.log").display().to_string();
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-l",
                &log,
                "-o",
                &options,
                "-w",
                "start",
            ],
        );
        wait_for_port(self.port, true);
    }

    /// The superuser's URL (its own database `postgres`).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The postmaster's process id, from `postmaster.pid`.
    fn postmaster(&self) -> u32 {
        let pidfile = self.dir.join("data").join("postmaster.pid");
        std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|s| s.lines().next()?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{} names the running postmaster", pidfile.display()))
    }

    /// Freezes the whole cluster: the postmaster first (so it forks no new
    /// backend), then every process it started (the backends of open
    /// connections, the checkpointer, the WAL writer, …). New connections
    /// then wait in the listen backlog and open ones get no answer, as in a
    /// partition; nothing is refused.
    pub fn freeze(&self) {
        let mut frozen = self
            .frozen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        assert!(frozen.is_empty(), "the server is frozen already");
        let postmaster = self.postmaster();
        assert!(signal("STOP", &[postmaster]), "the postmaster is stopped");
        frozen.push(postmaster);
        // A backend forked just before the STOP shows up on a second look.
        loop {
            let new: Vec<u32> = children_of(postmaster)
                .into_iter()
                .filter(|pid| !frozen.contains(pid))
                .collect();
            if new.is_empty() {
                break;
            }
            // A backend that ended meanwhile needs no stopping.
            signal("STOP", &new);
            frozen.extend(new);
        }
    }

    /// Lets a frozen cluster run again: what waited is answered then.
    pub fn thaw(&self) {
        let mut frozen = self
            .frozen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Backends first, the postmaster last: the reverse of the freeze.
        // A process that ended meanwhile is no error.
        for pid in frozen.drain(..).rev() {
            signal("CONT", &[pid]);
        }
    }

    /// Stops the server at once, as a crash would.
    pub fn stop(&self) {
        self.thaw();
        self.run(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
        wait_for_port(self.port, false);
    }

    /// Starts it again on the same port and data.
    pub fn restart(&self) {
        self.start_server();
    }
}

impl Drop for ScratchPostgres {
    fn drop(&mut self) {
        self.thaw();
        let path = self.bin.join("pg_ctl");
        let data = self.data();
        let mut command = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        let _ = command
            .args(["-D", &data, "-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Redis server of one test's own.
pub struct ScratchRedis {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
    frozen: bool,
}

impl ScratchRedis {
    /// Starts `redis-server` on a free loopback port, persisting nothing.
    pub fn start() -> Self {
        let mut redis = Self {
            dir: scratch_dir("redis"),
            port: free_port(),
            child: None,
            frozen: false,
        };
        redis.restart();
        redis
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Freezes the server (SIGSTOP): connections are accepted and commands
    /// sent, and nothing answers, as in a partition.
    pub fn freeze(&mut self) {
        assert!(!self.frozen, "the server is frozen already");
        let pid = self.child.as_ref().expect("the server runs").id();
        assert!(signal("STOP", &[pid]), "the server is stopped");
        self.frozen = true;
    }

    /// Lets a frozen server run again: it then answers what waited.
    pub fn thaw(&mut self) {
        if std::mem::take(&mut self.frozen)
            && let Some(child) = &self.child
        {
            // No assertion: this runs in `drop` too, maybe while unwinding.
            signal("CONT", &[child.id()]);
        }
    }

    /// Kills the server.
    pub fn stop(&mut self) {
        self.thaw();
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        wait_for_port(self.port, false);
    }

    /// Starts it (again) on the same port.
    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
            ])
            .arg(Path::new(&self.dir))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (deploy/dev installs it)");
        self.child = Some(child);
        wait_for_port(self.port, true);
    }
}

impl Drop for ScratchRedis {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
