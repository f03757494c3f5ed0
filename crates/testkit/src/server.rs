//! Running an actix-web server in the background of a test.
//!
//! Only the running and stopping; what the server answers is the caller's
//! app.

use std::io;
use std::net::SocketAddr;

use actix_web::dev::{Server, ServerHandle};
use tokio::task::JoinHandle;

/// A started actix-web server: where it listens and how to stop it.
#[derive(Debug)]
pub(crate) struct Running {
    addr: SocketAddr,
    handle: ServerHandle,
    task: JoinHandle<io::Result<()>>,
}

impl Running {
    /// Runs `server` (bound to `addrs`) on a task of the current tokio
    /// runtime; its workers have threads of their own.
    ///
    /// The caller builds it with `.disable_signals()` (the test runner owns the
    /// signals: a server must not stop on Ctrl-C before its test reported) and
    /// `.shutdown_timeout(0)` (stopping must not wait out a scripted delay).
    pub(crate) fn new(addrs: &[SocketAddr], server: Server) -> io::Result<Self> {
        let addr = addrs
            .first()
            .copied()
            .ok_or_else(|| io::Error::other("the server bound no address"))?;
        let handle = server.handle();
        let task = tokio::spawn(server);
        Ok(Self { addr, handle, task })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, closes connections, and waits until the server ended.
    pub(crate) async fn stop(&self) {
        self.handle.stop(false).await;
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // The command is sent now; the future it returns only waits for it.
        drop(self.handle.stop(false));
        // Dropping the server future also stops its workers and releases the port,
        // even if the runtime never polls the stop command.
        self.task.abort();
    }
}
