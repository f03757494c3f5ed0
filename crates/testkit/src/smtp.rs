//! `SmtpSink`: a real SMTP server (RFC 5321, plain text, no TLS, no AUTH) that
//! accepts mail on loopback and records it.
//!
//! It speaks what lettre's client needs and what a relay would answer:
//! EHLO/HELO, MAIL, RCPT (several), DATA with dot-unstuffing, RSET, NOOP,
//! VRFY, QUIT; PIPELINING is advertised and honoured (commands that arrive
//! together are answered together, from the same buffer). A connection
//! carries any number of transactions, as lettre's pool reuses them.
//!
//! Failures are switched at run time, between sends: see [`SmtpMode`],
//! [`SmtpSink::refuse_next`] and [`SmtpSink::reject_recipient`].
//!
//! Per message the sink does one pass over the lines of DATA and, in lean
//! mode ([`SinkOptions::lean`]), keeps only the envelope and the Message-ID,
//! so that a benchmark measures the sender rather than the sink.
//!
//! The file passes 700 lines because it is one protocol: the command loop,
//! DATA's parsing and the failure switches share one connection's state, and
//! its tests sit with it.

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufRead, AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::log::Log;
use crate::rfc2047;

/// RFC 5321 allows 512 octets for a command line; a little slack for clients
/// that add parameters.
const MAX_COMMAND_LINE: usize = 4096;
/// Lines of message text are at most 998 octets by RFC 5322; this only stops
/// a runaway client from growing one line without end.
const MAX_TEXT_LINE: usize = 1024 * 1024;

/// How the sink answers, switchable while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpMode {
    /// Accept every transaction (except recipients named by
    /// [`SmtpSink::reject_recipient`]).
    Accept,
    /// Refuse for now, as an overloaded relay does: a new connection is
    /// greeted with `421` and closed; on an open connection `MAIL` is answered
    /// `451`. lettre reports either as a transient error
    /// (`Error::is_transient`).
    RefuseTransient,
    /// Refuse every recipient with `550 5.7.1`: lettre reports a permanent
    /// error (`Error::is_permanent`).
    RefusePermanent,
}

impl SmtpMode {
    fn to_u8(self) -> u8 {
        match self {
            Self::Accept => 0,
            Self::RefuseTransient => 1,
            Self::RefusePermanent => 2,
        }
    }

    fn from_u8(value: u8) -> Self {
        match value {
            1 => Self::RefuseTransient,
            2 => Self::RefusePermanent,
            _ => Self::Accept,
        }
    }
}

/// What the sink keeps of each accepted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkOptions {
    /// Keep every header (unfolded) and the decoded subject. Without it only
    /// the envelope and the Message-ID are kept.
    pub record_headers: bool,
    /// Keep the whole message as it was sent, after dot-unstuffing.
    pub record_raw: bool,
    /// Messages larger than this are answered `552` and not recorded; it is
    /// also what EHLO advertises as `SIZE`.
    pub max_message_bytes: usize,
}

impl Default for SinkOptions {
    /// Everything is kept: what most tests want to look at.
    fn default() -> Self {
        Self {
            record_headers: true,
            record_raw: true,
            max_message_bytes: 10 * 1024 * 1024,
        }
    }
}

impl SinkOptions {
    /// Only the envelope and the Message-ID: for benchmarks.
    #[must_use]
    pub fn lean() -> Self {
        Self {
            record_headers: false,
            record_raw: false,
            ..Self::default()
        }
    }
}

/// One message the sink accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    /// The envelope sender (`MAIL FROM`), empty for the null sender `<>`.
    pub from: String,
    /// The envelope recipients (`RCPT TO`) that were accepted, in order.
    pub recipients: Vec<String>,
    /// The `Message-ID` header as written, angle brackets included.
    pub message_id: Option<String>,
    /// The `Subject` header with RFC 2047 encoded words decoded; `None` in
    /// lean mode.
    pub subject: Option<String>,
    /// Every header in order, names as written, values unfolded and
    /// trimmed but not decoded; empty in lean mode.
    pub headers: Vec<(String, String)>,
    /// The whole message after dot-unstuffing (CRLF line ends as sent), when
    /// [`SinkOptions::record_raw`] is set.
    pub raw: Option<Vec<u8>>,
    /// When the final `.` of DATA arrived.
    pub received_at: Instant,
}

impl ReceivedMail {
    /// The first header named `name` (case-insensitive), unfolded.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether `address` is among the recipients (case-insensitive).
    #[must_use]
    pub fn is_for(&self, address: &str) -> bool {
        self.recipients
            .iter()
            .any(|r| r.eq_ignore_ascii_case(address))
    }
}

#[derive(Debug)]
struct Shared {
    options: SinkOptions,
    ehlo: Vec<u8>,
    mode: AtomicU8,
    refuse_next: AtomicUsize,
    // Lower-cased addresses.
    rejected: RwLock<HashSet<String>>,
    mail: Log<ReceivedMail>,
    connections: AtomicUsize,
    noops: AtomicUsize,
    pipelined: AtomicUsize,
    data_pipelined: AtomicUsize,
    refused_transient: AtomicUsize,
    refused_permanent: AtomicUsize,
    queue_id: AtomicUsize,
    accepted_bytes: AtomicUsize,
}

impl Shared {
    fn mode(&self) -> SmtpMode {
        SmtpMode::from_u8(self.mode.load(Ordering::Relaxed))
    }

    /// Takes one of the transactions `refuse_next` asked to refuse, if any are left.
    fn take_refusal(&self) -> bool {
        self.refuse_next
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok()
    }

    fn is_rejected(&self, address: &str) -> bool {
        let rejected = self.rejected.read().unwrap_or_else(PoisonError::into_inner);
        !rejected.is_empty() && rejected.contains(&address.to_ascii_lowercase())
    }
}

/// A real SMTP server on `127.0.0.1`, recording what it accepts.
///
/// Dropping it stops it, as [`SmtpSink::stop`] does without waiting.
#[derive(Debug)]
pub struct SmtpSink {
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

impl SmtpSink {
    /// Starts a sink that keeps everything ([`SinkOptions::default`]).
    ///
    /// Must be called within a tokio runtime; the sink's tasks run on it.
    ///
    /// # Errors
    /// When no loopback port can be bound.
    pub async fn start() -> io::Result<Self> {
        Self::start_with(SinkOptions::default()).await
    }

    /// Starts a sink that keeps what `options` say.
    ///
    /// # Errors
    /// When no loopback port can be bound.
    pub async fn start_with(options: SinkOptions) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let ehlo = format!(
            "250-localhost greets you\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n250 SIZE {}\r\n",
            options.max_message_bytes
        )
        .into_bytes();
        let shared = Arc::new(Shared {
            options,
            ehlo,
            mode: AtomicU8::new(SmtpMode::Accept.to_u8()),
            refuse_next: AtomicUsize::new(0),
            rejected: RwLock::new(HashSet::new()),
            mail: Log::default(),
            connections: AtomicUsize::new(0),
            noops: AtomicUsize::new(0),
            pipelined: AtomicUsize::new(0),
            data_pipelined: AtomicUsize::new(0),
            refused_transient: AtomicUsize::new(0),
            refused_permanent: AtomicUsize::new(0),
            queue_id: AtomicUsize::new(0),
            accepted_bytes: AtomicUsize::new(0),
        });
        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        tasks.spawn(accept(
            listener,
            Arc::clone(&shared),
            shutdown.clone(),
            tasks.clone(),
        ));
        Ok(Self {
            shared,
            addr,
            shutdown,
            tasks,
        })
    }

    /// The URL for lettre: `smtp://127.0.0.1:PORT`.
    ///
    /// With the `smtp` scheme and no `tls` query parameter,
    /// `AsyncSmtpTransport::from_url` builds a transport with `Tls::None`:
    /// plain SMTP, no STARTTLS attempted, no authentication. (`?tls=required`
    /// and `?tls=opportunistic` would ask for STARTTLS; `smtps://` for TLS
    /// from the first byte; the sink speaks neither.)
    #[must_use]
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// The address the sink listens on.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Switches how the sink answers from the next command on.
    pub fn set_mode(&self, mode: SmtpMode) {
        self.shared.mode.store(mode.to_u8(), Ordering::Relaxed);
    }

    /// The current mode.
    #[must_use]
    pub fn mode(&self) -> SmtpMode {
        self.shared.mode()
    }

    /// Answers `451` to the `MAIL` of the next `n` transactions (in any mode),
    /// then goes back to the mode's answers. Replaces a previous count.
    pub fn refuse_next(&self, n: usize) {
        self.shared.refuse_next.store(n, Ordering::Release);
    }

    /// Answers `550 5.1.1` to `RCPT TO` for `address` (case-insensitive),
    /// as a relay does for a mailbox that does not exist.
    pub fn reject_recipient(&self, address: &str) {
        self.shared
            .rejected
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(address.to_ascii_lowercase());
    }

    /// Accepts `address` again after [`SmtpSink::reject_recipient`].
    pub fn accept_recipient(&self, address: &str) {
        self.shared
            .rejected
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&address.to_ascii_lowercase());
    }

    /// Every message accepted so far, in the order their DATA ended.
    #[must_use]
    pub fn messages(&self) -> Vec<ReceivedMail> {
        self.shared.mail.snapshot()
    }

    /// How many messages were accepted.
    #[must_use]
    pub fn count(&self) -> usize {
        self.shared.mail.len()
    }

    /// The size of the accepted messages together, in octets after
    /// dot-unstuffing (headers and body, CRLF line ends): kept in every mode,
    /// so that a benchmark can say how large the messages it timed were.
    #[must_use]
    pub fn accepted_bytes(&self) -> usize {
        self.shared.accepted_bytes.load(Ordering::Relaxed)
    }

    /// How many accepted messages had `address` among their recipients.
    #[must_use]
    pub fn count_for(&self, address: &str) -> usize {
        self.shared
            .mail
            .with(|mail| mail.iter().filter(|m| m.is_for(address)).count())
    }

    /// The Message-IDs of the accepted messages for `address`, in order
    /// (messages without one are left out).
    #[must_use]
    pub fn message_ids_for(&self, address: &str) -> Vec<String> {
        self.shared.mail.with(|mail| {
            mail.iter()
                .filter(|m| m.is_for(address))
                .filter_map(|m| m.message_id.clone())
                .collect()
        })
    }

    /// The Message-IDs of the accepted messages, by recipient (lower-cased),
    /// in order; a message without one counts as an empty id. One pass over
    /// what was accepted, for tests that check thousands of recipients.
    #[must_use]
    pub fn message_ids_by_recipient(&self) -> HashMap<String, Vec<String>> {
        self.shared.mail.with(|mail| {
            let mut by = HashMap::<String, Vec<String>>::new();
            for m in mail {
                for to in &m.recipients {
                    by.entry(to.to_ascii_lowercase())
                        .or_default()
                        .push(m.message_id.clone().unwrap_or_default());
                }
            }
            by
        })
    }

    /// Waits until at least `n` messages were accepted; false if `timeout`
    /// passed first.
    pub async fn wait_for_count(&self, n: usize, timeout: Duration) -> bool {
        self.shared.mail.wait_for(n, timeout).await
    }

    /// How many connections were opened to the sink (refused ones included).
    #[must_use]
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::Relaxed)
    }

    /// `NOOP` commands received (a client checking a pooled connection).
    #[must_use]
    pub fn noops(&self) -> usize {
        self.shared.noops.load(Ordering::Relaxed)
    }

    /// Commands that arrived with more already behind them (RFC 2920
    /// pipelining: the client did not wait for each reply).
    #[must_use]
    pub fn pipelined_commands(&self) -> usize {
        self.shared.pipelined.load(Ordering::Relaxed)
    }

    /// Messages whose end of data (`.`) arrived with the next commands
    /// behind it: a client pipelining from one message into the next.
    #[must_use]
    pub fn pipelined_data_ends(&self) -> usize {
        self.shared.data_pipelined.load(Ordering::Relaxed)
    }

    /// How many times the sink answered a transient refusal: a `421`
    /// greeting or a `451` to `MAIL`. Each is one failed send for lettre.
    #[must_use]
    pub fn refused_transient(&self) -> usize {
        self.shared.refused_transient.load(Ordering::Relaxed)
    }

    /// How many `RCPT TO` the sink answered `550` (by the mode or by
    /// [`SmtpSink::reject_recipient`]).
    #[must_use]
    pub fn refused_permanent(&self) -> usize {
        self.shared.refused_permanent.load(Ordering::Relaxed)
    }

    /// Closes the listener and every connection, and waits until they are
    /// closed: afterwards a connection attempt is refused.
    pub async fn stop(&self) {
        self.shutdown.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        // The tasks end at their next poll; nothing here can wait for them.
        self.shutdown.cancel();
    }
}

async fn accept(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
) {
    loop {
        let stream = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Running out of descriptors under load: let the client retry.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
            },
        };
        shared.connections.fetch_add(1, Ordering::Relaxed);
        let shared = Arc::clone(&shared);
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            tokio::select! {
                () = shutdown.cancelled() => {}
                // An I/O error is the client going away: nothing to record.
                _ = serve(stream, &shared) => {}
            }
        });
    }
}

enum Line {
    Complete,
    TooLong,
    Eof,
}

/// Reads one line (up to and including `\n`) into `line`. Longer lines are
/// consumed and dropped, and reported as `TooLong`.
async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
    limit: usize,
) -> io::Result<Line> {
    line.clear();
    let mut too_long = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(Line::Eof);
        }
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..=i], true),
            None => (available, false),
        };
        let used = chunk.len();
        if !too_long {
            if line.len() + chunk.len() > limit {
                too_long = true;
                line.clear();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        reader.consume(used);
        if done {
            return Ok(if too_long {
                Line::TooLong
            } else {
                Line::Complete
            });
        }
    }
}

fn trim_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The address in `<…>` after `FROM:` or `TO:` (parameters after it are
/// ignored); `None` when the argument does not start with `prefix`.
fn path_argument(argument: &[u8], prefix: &[u8]) -> Option<String> {
    let head = argument.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = argument[prefix.len()..].trim_ascii_start();
    let address = match rest.strip_prefix(b"<") {
        Some(inner) => &inner[..inner.iter().position(|&b| b == b'>')?],
        None => rest
            .split(u8::is_ascii_whitespace)
            .next()
            .unwrap_or_default(),
    };
    Some(String::from_utf8_lossy(address).into_owned())
}

#[derive(Default)]
struct Transaction {
    from: Option<String>,
    recipients: Vec<String>,
}

async fn serve(mut stream: TcpStream, shared: &Shared) -> io::Result<()> {
    // Replies are small and each is awaited by the client: without this,
    // Nagle's algorithm and delayed ACKs add tens of milliseconds to each.
    stream.set_nodelay(true)?;
    let (read, write) = stream.split();
    let mut reader = BufReader::with_capacity(64 * 1024, read);
    let mut writer = BufWriter::with_capacity(8 * 1024, write);

    if shared.mode() == SmtpMode::RefuseTransient {
        shared.refused_transient.fetch_add(1, Ordering::Relaxed);
        writer
            .write_all(b"421 4.3.2 SmtpSink refuses for now, try again later\r\n")
            .await?;
        return writer.flush().await;
    }
    writer
        .write_all(b"220 localhost ESMTP heliograph-testkit SmtpSink\r\n")
        .await?;

    let mut line = Vec::with_capacity(512);
    let mut greeted = false;
    let mut transaction = Transaction::default();
    loop {
        // Replies to pipelined commands go out together, once the commands
        // that arrived together are all answered (RFC 2920).
        if reader.buffer().is_empty() {
            writer.flush().await?;
        }
        match read_line(&mut reader, &mut line, MAX_COMMAND_LINE).await? {
            Line::Complete => {}
            Line::TooLong => {
                writer.write_all(b"500 5.5.2 Line too long\r\n").await?;
                continue;
            }
            Line::Eof => return Ok(()),
        }
        if !reader.buffer().is_empty() {
            // The client sent on without waiting for this command's reply.
            shared.pipelined.fetch_add(1, Ordering::Relaxed);
        }
        let command = trim_line_end(&line);
        let (verb, argument) = match command.iter().position(|&b| b == b' ') {
            Some(i) => (&command[..i], command[i + 1..].trim_ascii()),
            None => (command, &b""[..]),
        };
        let is = |name: &[u8]| verb.eq_ignore_ascii_case(name);

        if is(b"EHLO") {
            greeted = true;
            transaction = Transaction::default();
            writer.write_all(&shared.ehlo).await?;
        } else if is(b"HELO") {
            greeted = true;
            transaction = Transaction::default();
            writer.write_all(b"250 localhost\r\n").await?;
        } else if is(b"MAIL") {
            if !greeted {
                writer
                    .write_all(b"503 5.5.1 Send HELO or EHLO first\r\n")
                    .await?;
            } else if transaction.from.is_some() {
                writer
                    .write_all(b"503 5.5.1 Nested MAIL command\r\n")
                    .await?;
            } else if let Some(from) = path_argument(argument, b"FROM:") {
                if shared.take_refusal() || shared.mode() == SmtpMode::RefuseTransient {
                    shared.refused_transient.fetch_add(1, Ordering::Relaxed);
                    writer
                        .write_all(b"451 4.3.0 SmtpSink refuses for now, try again later\r\n")
                        .await?;
                } else {
                    transaction.from = Some(from);
                    writer.write_all(b"250 2.1.0 Ok\r\n").await?;
                }
            } else {
                writer
                    .write_all(b"501 5.5.4 Syntax: MAIL FROM:<address>\r\n")
                    .await?;
            }
        } else if is(b"RCPT") {
            if transaction.from.is_none() {
                writer.write_all(b"503 5.5.1 Need MAIL first\r\n").await?;
            } else if let Some(to) = path_argument(argument, b"TO:") {
                if shared.mode() == SmtpMode::RefusePermanent {
                    shared.refused_permanent.fetch_add(1, Ordering::Relaxed);
                    writer
                        .write_all(b"550 5.7.1 SmtpSink refuses every recipient\r\n")
                        .await?;
                } else if shared.is_rejected(&to) {
                    shared.refused_permanent.fetch_add(1, Ordering::Relaxed);
                    writer
                        .write_all(b"550 5.1.1 Recipient address rejected: no such user\r\n")
                        .await?;
                } else {
                    transaction.recipients.push(to);
                    writer.write_all(b"250 2.1.5 Ok\r\n").await?;
                }
            } else {
                writer
                    .write_all(b"501 5.5.4 Syntax: RCPT TO:<address>\r\n")
                    .await?;
            }
        } else if is(b"DATA") {
            if transaction.from.is_none() {
                writer.write_all(b"503 5.5.1 Need MAIL first\r\n").await?;
            } else if transaction.recipients.is_empty() {
                // With pipelining the client sends DATA even when every RCPT failed.
                writer
                    .write_all(b"554 5.5.1 No valid recipients\r\n")
                    .await?;
            } else {
                writer
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                writer.flush().await?;
                let transaction = std::mem::take(&mut transaction);
                let Some(reply) = receive(&mut reader, &mut line, shared, transaction).await?
                else {
                    return Ok(());
                };
                if !reader.buffer().is_empty() {
                    // The next commands came with this message's end of data.
                    shared.data_pipelined.fetch_add(1, Ordering::Relaxed);
                }
                writer.write_all(reply.as_bytes()).await?;
            }
        } else if is(b"RSET") {
            transaction = Transaction::default();
            writer.write_all(b"250 2.0.0 Ok\r\n").await?;
        } else if is(b"NOOP") {
            shared.noops.fetch_add(1, Ordering::Relaxed);
            writer.write_all(b"250 2.0.0 Ok\r\n").await?;
        } else if is(b"VRFY") {
            writer
                .write_all(b"252 2.5.0 Cannot VRFY, but will accept the message\r\n")
                .await?;
        } else if is(b"QUIT") {
            writer.write_all(b"221 2.0.0 Bye\r\n").await?;
            return writer.flush().await;
        } else {
            writer
                .write_all(b"500 5.5.2 Command not recognized\r\n")
                .await?;
        }
    }
}

/// Reads the message text after `354` up to the lone `.`, records it, and
/// returns the reply; `None` when the client went away mid-message.
async fn receive<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
    shared: &Shared,
    transaction: Transaction,
) -> io::Result<Option<String>> {
    let options = &shared.options;
    let mut header_block = Vec::with_capacity(1024);
    let mut raw = options.record_raw.then(Vec::new);
    let mut in_headers = true;
    let mut size = 0_usize;
    loop {
        match read_line(reader, line, MAX_TEXT_LINE).await? {
            Line::Complete => {}
            // Not a mail any relay would take: refused as too large.
            Line::TooLong => {
                size = options.max_message_bytes.saturating_add(1);
                raw = None;
                continue;
            }
            Line::Eof => return Ok(None),
        }
        if line.as_slice() == b".\r\n" || line.as_slice() == b".\n" {
            break;
        }
        // Dot-unstuffing (RFC 5321 §4.5.2): a leading dot was doubled by the client.
        let text = line.strip_prefix(b".").unwrap_or(line);
        size += text.len();
        if size > options.max_message_bytes {
            // Read on to the end so that the connection stays in step.
            raw = None;
            continue;
        }
        if in_headers {
            if trim_line_end(text).is_empty() {
                in_headers = false;
            } else {
                header_block.extend_from_slice(text);
            }
        }
        if let Some(raw) = raw.as_mut() {
            raw.extend_from_slice(text);
        }
    }
    if size > options.max_message_bytes {
        return Ok(Some(
            "552 5.3.4 Message size exceeds fixed limit\r\n".to_owned(),
        ));
    }

    let headers = unfold_headers(&header_block, |name| {
        options.record_headers || name.eq_ignore_ascii_case("message-id")
    });
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let message_id = find("message-id");
    let (subject, headers) = if options.record_headers {
        (find("subject").map(|s| rfc2047::decode(&s)), headers)
    } else {
        (None, Vec::new())
    };
    shared.accepted_bytes.fetch_add(size, Ordering::Relaxed);
    shared.mail.push(ReceivedMail {
        from: transaction.from.unwrap_or_default(),
        recipients: transaction.recipients,
        message_id,
        subject,
        headers,
        raw,
        received_at: Instant::now(),
    });
    let id = shared.queue_id.fetch_add(1, Ordering::Relaxed) + 1;
    Ok(Some(format!("250 2.0.0 Ok: queued as {id:08X}\r\n")))
}

/// Splits a header block into `(name, value)` pairs, unfolding continuation
/// lines (RFC 5322 §2.2.3: the line break goes, the whitespace stays), and
/// keeps only the headers `keep` wants.
fn unfold_headers(block: &[u8], keep: impl Fn(&str) -> bool) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = Vec::new();
    // Whether the header being continued was kept.
    let mut current_kept = false;
    for raw_line in block.split_inclusive(|&b| b == b'\n') {
        let text = trim_line_end(raw_line);
        if text.first().is_some_and(|&b| b == b' ' || b == b'\t') {
            if current_kept && let Some((_, value)) = headers.last_mut() {
                value.push_str(&String::from_utf8_lossy(text));
            }
            continue;
        }
        let Some(colon) = text.iter().position(|&b| b == b':') else {
            current_kept = false;
            continue;
        };
        let name = String::from_utf8_lossy(text[..colon].trim_ascii());
        current_kept = keep(&name);
        if current_kept {
            let value = String::from_utf8_lossy(text[colon + 1..].trim_ascii_start());
            headers.push((name.into_owned(), value.into_owned()));
        }
    }
    for (_, value) in &mut headers {
        let trimmed = value.trim_end().len();
        value.truncate(trimmed);
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::{path_argument, unfold_headers};

    #[test]
    fn folded_headers_are_unfolded_and_unwanted_ones_skipped() {
        let block = b"Subject: a long\r\n subject\r\n\tline\r\nX-Skip: yes\r\n more\r\nMessage-ID: <1@x>\r\n";
        let all = unfold_headers(block, |_| true);
        assert_eq!(
            all,
            vec![
                ("Subject".to_owned(), "a long subject\tline".to_owned()),
                ("X-Skip".to_owned(), "yes more".to_owned()),
                ("Message-ID".to_owned(), "<1@x>".to_owned()),
            ]
        );
        let some = unfold_headers(block, |n| n.eq_ignore_ascii_case("message-id"));
        assert_eq!(some, vec![("Message-ID".to_owned(), "<1@x>".to_owned())]);
    }

    #[test]
    fn paths_are_read_with_or_without_brackets_and_parameters() {
        assert_eq!(
            path_argument(b"FROM:<a@x.test> BODY=8BITMIME", b"FROM:").as_deref(),
            Some("a@x.test")
        );
        assert_eq!(path_argument(b"from: <>", b"FROM:").as_deref(), Some(""));
        assert_eq!(
            path_argument(b"TO:b@y.test", b"TO:").as_deref(),
            Some("b@y.test")
        );
        assert_eq!(path_argument(b"TO:<b@y.test", b"TO:"), None);
        assert_eq!(path_argument(b"FOO", b"FROM:"), None);
    }
}
