//! SMTP sessions, reused: a fixed number of sessions per relay, each
//! carrying many messages one after another, with RFC 2920 pipelining where
//! the server offers it.
//!
//! lettre's own pool asks an idle connection `NOOP` before every message
//! (one more round trip each) and sends `MAIL`, `RCPT` and `DATA` one reply
//! at a time. Here a session is taken from the pool once for a run of
//! messages; with `PIPELINING`, a message's `MAIL FROM`, `RCPT TO` and
//! `DATA` go in one write and their three replies are read after it, so a
//! message costs two round trips instead of four (five with the `NOOP`).
//! lettre still does the rest: connecting, implicit TLS and STARTTLS,
//! `EHLO`, `AUTH`, dot-stuffing, and parsing replies.
//!
//! - At most [`SmtpSettings::pool_size`] sessions are in use at once
//!   (`SMTP_POOL_SIZE`, default 2): callers beyond wait their turn, first come first
//!   served.
//! - A session carries at most [`SmtpSettings::max_messages_per_session`]
//!   messages (`SMTP_MAX_MESSAGES_PER_SESSION`), then says `QUIT`; a new
//!   one is opened for the next message.
//! - A session idle for more than [`IDLE_FOR_AT_MOST`] is closed rather
//!   than reused (servers drop idle clients). Should a reused session turn
//!   out dead before the server took anything of a message, the message is
//!   tried once more on a new session at once: nothing was sent.
//! - Every message is bounded by [`SmtpSettings::timeout`]; a session that
//!   times out or breaks is dropped, never reused.
//!
//! The file is long (over 700 lines) because it is one protocol: the pool,
//! a session's single sends and its pipelined runs share the connection's
//! state, its refusals' classification and the rule for when a session is
//! to be dropped.

use std::borrow::Cow;
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lettre::Address;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Tls, TlsParameters};
use lettre::transport::smtp::commands::{Data, Ehlo, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::email::SendError;

/// How long a session may stay idle in the pool and still be reused.
pub const IDLE_FOR_AT_MOST: Duration = Duration::from_secs(30);

/// How sessions are shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmtpSettings {
    /// Sessions in use at once, at most.
    pub pool_size: usize,
    /// Messages a session carries before it is closed.
    pub max_messages_per_session: usize,
    /// How long one message (connecting included) may take.
    pub timeout: Duration,
}

impl Default for SmtpSettings {
    fn default() -> Self {
        Self {
            pool_size: 2,
            max_messages_per_session: 100,
            timeout: Duration::from_secs(15),
        }
    }
}

/// Where the sessions go, read from an `smtp://` or `smtps://` URL with
/// the meaning lettre gives it (`AsyncSmtpTransport::from_url`): `smtp://`
/// is plain unless `?tls=required` or `?tls=opportunistic` (STARTTLS),
/// `smtps://` is TLS from the start; credentials may be in the URL, and a
/// path names the client in `EHLO`.
#[derive(Clone)]
struct Relay {
    host: String,
    port: u16,
    tls: Tls,
    credentials: Option<Credentials>,
    hello: ClientId,
}

impl fmt::Debug for Relay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // No credentials in any output.
        f.debug_struct("Relay")
            .field("host", &self.host)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// Why an SMTP URL cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SmtpUrlError(String);

impl Relay {
    fn parse(url: &str) -> Result<Self, SmtpUrlError> {
        let bad = |what: &str| SmtpUrlError(what.to_owned());
        let url = url::Url::parse(url).map_err(|e| SmtpUrlError(e.to_string()))?;
        let host = url.host_str().ok_or_else(|| bad("the URL has no host"))?;
        // `[::1]` in a URL is `::1` on the wire.
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let tls_param = url
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.into_owned());
        let params = || TlsParameters::new(host.clone()).map_err(|e| SmtpUrlError(e.to_string()));
        let (port, tls) = match (url.scheme(), tls_param.as_deref()) {
            ("smtp", None) => (url.port().unwrap_or(25), Tls::None),
            ("smtp", Some("required")) => (url.port().unwrap_or(587), Tls::Required(params()?)),
            ("smtp", Some("opportunistic")) => {
                (url.port().unwrap_or(587), Tls::Opportunistic(params()?))
            }
            ("smtps", _) => (url.port().unwrap_or(465), Tls::Wrapper(params()?)),
            (scheme, tls) => {
                return Err(SmtpUrlError(format!(
                    "unknown scheme {scheme:?} or tls parameter {tls:?}"
                )));
            }
        };
        let hello = if url.path().len() > 1 {
            ClientId::Domain(url.path().trim_matches('/').to_owned())
        } else {
            ClientId::default()
        };
        let decode = |s: &str| -> Result<String, SmtpUrlError> {
            percent_decode(s).ok_or_else(|| bad("the credentials are not valid UTF-8"))
        };
        let credentials = url
            .password()
            .map(|password| {
                Ok::<_, SmtpUrlError>(Credentials::new(decode(url.username())?, decode(password)?))
            })
            .transpose()?;
        Ok(Self {
            host,
            port,
            tls,
            credentials,
            hello,
        })
    }

    /// A new session: connected, encrypted as asked, authenticated; with
    /// whether the server offers `PIPELINING` (lettre does not keep that
    /// keyword of its `EHLO` reply, so the session asks once more, before
    /// `AUTH`).
    async fn connect(
        &self,
        timeout: Duration,
    ) -> Result<Connection, lettre::transport::smtp::Error> {
        let wrapper = match &self.tls {
            Tls::Wrapper(params) => Some(params.clone()),
            _ => None,
        };
        let mut conn = AsyncSmtpConnection::connect_tokio1(
            (self.host.as_str(), self.port),
            Some(timeout),
            &self.hello,
            wrapper,
            None,
        )
        .await?;
        match &self.tls {
            Tls::Required(params) => conn.starttls(params.clone(), &self.hello).await?,
            Tls::Opportunistic(params) if conn.can_starttls() => {
                conn.starttls(params.clone(), &self.hello).await?;
            }
            _ => {}
        }
        let keywords = conn.command(Ehlo::new(self.hello.clone())).await?;
        let pipelining = keywords
            .message()
            .any(|line| line.split_whitespace().next() == Some("PIPELINING"));
        if let Some(credentials) = &self.credentials {
            conn.auth(DEFAULT_MECHANISMS, credentials).await?;
        }
        Ok(Connection { conn, pipelining })
    }
}

/// An open session and what its server offers beyond what lettre reads.
struct Connection {
    conn: AsyncSmtpConnection,
    pipelining: bool,
}

/// `%xx` sequences decoded, as UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(Cow::into_owned)
}

/// A session resting in the pool.
struct Idle {
    conn: Connection,
    sent: usize,
    since: Instant,
}

/// Sessions to one relay, shared by every sender of a process.
pub struct SmtpPool {
    relay: Relay,
    settings: SmtpSettings,
    idle: Mutex<Vec<Idle>>,
    permits: Semaphore,
    opened: AtomicU64,
}

impl fmt::Debug for SmtpPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpPool")
            .field("relay", &self.relay)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl SmtpPool {
    /// A pool for `url` (see [`Relay`]'s rules); nothing is connected yet.
    pub fn new(url: &str, settings: SmtpSettings) -> Result<Self, SmtpUrlError> {
        if settings.pool_size == 0 || settings.max_messages_per_session == 0 {
            return Err(SmtpUrlError(
                "the pool size and the messages per session must be at least 1".to_owned(),
            ));
        }
        Ok(Self {
            relay: Relay::parse(url)?,
            settings,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(settings.pool_size),
            opened: AtomicU64::new(0),
        })
    }

    /// How sessions are shared.
    #[must_use]
    pub const fn settings(&self) -> SmtpSettings {
        self.settings
    }

    /// Sessions opened since the pool was made (for tests and metrics).
    #[must_use]
    pub fn sessions_opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    /// A session for a run of messages: waits while `pool_size` are in use.
    /// Connects lazily, at the first message.
    pub async fn session(&self) -> Session<'_> {
        let permit = self
            .permits
            .acquire()
            .await
            .expect("the pool's semaphore is never closed");
        let idle = {
            let mut idle = self
                .idle
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // Stale ones are dropped (closing their sockets) rather than reused.
            idle.retain(|s| s.since.elapsed() < IDLE_FOR_AT_MOST);
            idle.pop()
        };
        let (conn, sent) = idle.map_or((None, 0), |s| (Some(s.conn), s.sent));
        Session {
            pool: self,
            conn,
            sent,
            _permit: permit,
        }
    }
}

/// A session taken from the pool; it goes back when dropped.
pub struct Session<'a> {
    pool: &'a SmtpPool,
    conn: Option<Connection>,
    /// Messages the connection has carried.
    sent: usize,
    _permit: SemaphorePermit<'a>,
}

impl fmt::Debug for Session<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("connected", &self.conn.is_some())
            .field("sent", &self.sent)
            .finish_non_exhaustive()
    }
}

/// How far a message got before it failed.
enum Failed {
    /// The server took nothing of it (no reply to `MAIL` was read): on a
    /// reused session, it may be tried again on a new one.
    Untouched(lettre::transport::smtp::Error),
    /// Anything later.
    After(lettre::transport::smtp::Error),
    /// Not sent: this server cannot take it as it is (nothing was written).
    Refused(&'static str),
}

/// `MAIL FROM`, `RCPT TO` and `DATA` in one write (RFC 2920).
struct Pipelined<'a>(&'a Mail, &'a Rcpt);

impl fmt::Display for Pipelined<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{}", self.0, self.1, Data)
    }
}

impl Session<'_> {
    /// Sends `message` (formatted, lines ending in CRLF) from `from` to `to`.
    /// Answers how the server took it: a refusal for good is
    /// [`SendError::Permanent`], anything that may pass later
    /// [`SendError::Transient`].
    pub async fn send(
        &mut self,
        from: &Address,
        to: &Address,
        message: &[u8],
    ) -> Result<(), SendError> {
        let timeout = self.pool.settings.timeout;
        let result = tokio::time::timeout(timeout, self.send_now(from, to, message)).await;
        match result {
            Ok(result) => result,
            Err(_) => {
                // Whatever state the session is in, it is not to be reused.
                self.conn = None;
                Err(SendError::Transient(format!(
                    "the SMTP server did not answer within {} s",
                    timeout.as_secs()
                )))
            }
        }
    }

    async fn send_now(
        &mut self,
        from: &Address,
        to: &Address,
        message: &[u8],
    ) -> Result<(), SendError> {
        let mut reused = self.conn.is_some();
        loop {
            if self.conn.is_none() {
                let conn = self
                    .pool
                    .relay
                    .connect(self.pool.settings.timeout)
                    .await
                    .map_err(classify)?;
                self.pool.opened.fetch_add(1, Ordering::Relaxed);
                self.conn = Some(conn);
                self.sent = 0;
            }
            let Connection { conn, pipelining } = self.conn.as_mut().expect("connected above");
            match transfer(conn, *pipelining, from, to, message).await {
                Ok(()) => {
                    self.sent += 1;
                    if self.sent >= self.pool.settings.max_messages_per_session
                        && let Some(mut done) = self.conn.take()
                    {
                        // The message is sent; a failed QUIT changes nothing.
                        drop(done.conn.quit().await);
                    }
                    return Ok(());
                }
                Err(Failed::Refused(why)) => return Err(SendError::Permanent(why.to_owned())),
                Err(Failed::Untouched(_)) if reused => {
                    // A reused session died while idle: nothing was sent.
                    self.conn = None;
                    reused = false;
                }
                Err(Failed::Untouched(e) | Failed::After(e)) => {
                    if conn.has_broken() || !replied(&e) {
                        self.conn = None;
                    } else if conn.command(Rset).await.is_err() {
                        // The refusal leaves a transaction half open: RSET
                        // ends it, or the session goes.
                        self.conn = None;
                    }
                    return Err(classify(e));
                }
            }
        }
    }
}

impl Session<'_> {
    /// Sends each of `messages` (its recipient and its formatted bytes)
    /// from `from`, in order, and answers each one's outcome in the same
    /// order. Where the server offers `PIPELINING`, a message's end of data
    /// goes in the same write as the next message's `MAIL`, `RCPT` and
    /// `DATA` (RFC 2920 § 3.1), so a run costs one round trip a message;
    /// elsewhere (or for a message that needs an extension the server
    /// lacks) each goes as [`Session::send`] sends it.
    pub async fn send_all(
        &mut self,
        from: &Address,
        messages: &[(Address, Vec<u8>)],
    ) -> Vec<Result<(), SendError>> {
        let mut results = Vec::with_capacity(messages.len());
        let mut rest = messages;
        let mut reused = self.conn.is_some();
        while !rest.is_empty() {
            if self.conn.is_none() {
                match self.pool.relay.connect(self.pool.settings.timeout).await {
                    Ok(conn) => {
                        self.pool.opened.fetch_add(1, Ordering::Relaxed);
                        self.conn = Some(conn);
                        self.sent = 0;
                    }
                    // A server that does not answer fails the whole run;
                    // one that refuses (421, a closed port) fails this
                    // message, and the next tries a connection of its own,
                    // as it would have alone.
                    Err(e) if e.is_timeout() => {
                        let e = classify(e);
                        results.extend(rest.iter().map(|_| Err(e.clone())));
                        return results;
                    }
                    Err(e) => {
                        results.push(Err(classify(e)));
                        rest = &rest[1..];
                        continue;
                    }
                }
            }
            let Connection { conn, pipelining } = self.conn.as_mut().expect("connected above");
            let Some(envelopes) = envelopes(conn, *pipelining, from, rest) else {
                // Not for pipelining: one at a time.
                for (to, message) in rest {
                    results.push(self.send(from, to, message).await);
                }
                return results;
            };
            let quota = self
                .pool
                .settings
                .max_messages_per_session
                .saturating_sub(self.sent)
                .max(1);
            let take = quota.min(rest.len());
            let (run, later) = rest.split_at(take);
            let bound = self
                .pool
                .settings
                .timeout
                .saturating_mul(u32::try_from(take).unwrap_or(u32::MAX));
            let outcome =
                tokio::time::timeout(bound, pipelined(conn, run, &envelopes[..take])).await;
            let outcome = outcome.unwrap_or_else(|_| Run {
                results: Vec::new(),
                broken: true,
                untouched: false,
                why: format!(
                    "the SMTP server did not answer within {} s",
                    bound.as_secs()
                ),
            });
            if outcome.untouched && reused {
                // A reused session died while idle: nothing was sent.
                self.conn = None;
                reused = false;
                continue;
            }
            reused = true;
            let done = outcome.results.len();
            results.extend(outcome.results);
            // Those the run could not tell about may or may not have gone:
            // tried again later, under the same Message-ID.
            results.extend(
                run[done..]
                    .iter()
                    .map(|_| Err(SendError::Transient(outcome.why.clone()))),
            );
            self.sent += take;
            if outcome.broken {
                self.conn = None;
            } else if self.sent >= self.pool.settings.max_messages_per_session
                && let Some(mut done) = self.conn.take()
            {
                drop(done.conn.quit().await);
            }
            rest = later;
        }
        results
    }
}

/// The `MAIL`, `RCPT` and `DATA` lines of each of `messages`; none when
/// the session does not pipeline or a message needs an extension this
/// server lacks (then [`transfer`] says so, message by message).
fn envelopes(
    conn: &AsyncSmtpConnection,
    pipelining: bool,
    from: &Address,
    messages: &[(Address, Vec<u8>)],
) -> Option<Vec<String>> {
    if !pipelining {
        return None;
    }
    let info = conn.server_info();
    messages
        .iter()
        .map(|(to, message)| {
            // The message goes through lettre's `command`, as text.
            std::str::from_utf8(message).ok()?;
            let mut options = Vec::new();
            if !message.is_ascii() {
                info.supports_feature(Extension::EightBitMime)
                    .then_some(())?;
                options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
            }
            let ascii = |a: &Address| AsRef::<str>::as_ref(a).is_ascii();
            if !ascii(from) || !ascii(to) {
                info.supports_feature(Extension::SmtpUtfEight)
                    .then_some(())?;
                options.push(MailParameter::SmtpUtfEight);
            }
            Some(format!(
                "{}{}{}",
                Mail::new(Some(from.clone()), options),
                Rcpt::new(to.clone(), Vec::new()),
                Data
            ))
        })
        .collect()
}

/// What a pipelined run came to.
struct Run {
    /// The outcomes of the first messages of the run, in order (all of
    /// them unless the session broke).
    results: Vec<Result<(), SendError>>,
    /// Whether the session is to be dropped.
    broken: bool,
    /// Whether it broke before the server took anything of the run.
    untouched: bool,
    /// Why the rest of the run has no outcome, when it has none.
    why: String,
}

/// `run` over `conn`, pipelined: the first envelope in one write; then
/// each message's body and end of data with the next envelope behind it.
async fn pipelined(
    conn: &mut AsyncSmtpConnection,
    run: &[(Address, Vec<u8>)],
    envelopes: &[String],
) -> Run {
    let mut results = Vec::with_capacity(run.len());
    let broke = |results: Vec<Result<(), SendError>>, e: &lettre::transport::smtp::Error| Run {
        untouched: false,
        broken: true,
        why: format!("the session broke: {e}"),
        results,
    };
    // The reply to the first command of what was last written.
    let reply = conn.command(envelopes[0].as_str()).await;
    if let Err(e) = &reply
        && !replied(e)
    {
        return Run {
            results,
            broken: true,
            untouched: true,
            why: format!("the session broke: {e}"),
        };
    }
    let mut first = Some(reply);
    // Whether the last write began with RSET (its reply comes first).
    let mut after_rset = false;
    for (i, (_, message)) in run.iter().enumerate() {
        if after_rset {
            if let Some(Err(e)) = &first {
                return broke(results, e);
            }
            first = Some(conn.read_response().await);
        }
        let Some(mail) = first.take() else {
            break;
        };
        let rcpt = conn.read_response().await;
        let data = conn.read_response().await;
        for reply in [&mail, &rcpt, &data] {
            if let Err(e) = reply
                && !replied(e)
            {
                return broke(results, e);
            }
        }
        let next = envelopes.get(i + 1);
        if data.is_ok() {
            if let Err(e) = mail.and(rcpt) {
                // `DATA` taken without a sender or recipient: out of step.
                conn.abort().await;
                return broke(results, &e);
            }
            let text = std::str::from_utf8(message).unwrap_or_default();
            let mut write = stuffed(text);
            write.push_str(".\r\n");
            if let Some(next) = next {
                write.push_str(next);
            }
            match conn.command(write.as_str()).await {
                Ok(_) => results.push(Ok(())),
                Err(e) if replied(&e) => results.push(Err(classify(e))),
                Err(e) => return broke(results, &e),
            }
            after_rset = false;
            if next.is_some() {
                first = Some(conn.read_response().await);
            }
        } else {
            let refused = mail.and(rcpt).and(data).expect_err("one reply refused");
            results.push(Err(classify(refused)));
            // The refusal may leave a transaction open: RSET ends it,
            // pipelined with the next envelope.
            let mut write = String::from("RSET\r\n");
            if let Some(next) = next {
                write.push_str(next);
            }
            let reply = conn.command(write.as_str()).await;
            if next.is_none()
                && let Err(e) = &reply
            {
                return broke(results, e);
            }
            first = Some(reply);
            after_rset = true;
        }
    }
    Run {
        results,
        broken: false,
        untouched: false,
        why: String::new(),
    }
}

/// `text` made ready to follow `DATA` (RFC 5321 § 4.5.2): a line that
/// begins with a dot gets a second one, and the text ends in CRLF.
fn stuffed(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.split_inclusive('\n') {
        if line.starts_with('.') {
            out.push('.');
        }
        out.push_str(line);
    }
    if !out.ends_with("\r\n") {
        out.push_str("\r\n");
    }
    out
}

/// One message over `conn`.
async fn transfer(
    conn: &mut AsyncSmtpConnection,
    pipelining: bool,
    from: &Address,
    to: &Address,
    message: &[u8],
) -> Result<(), Failed> {
    let info = conn.server_info();
    let mut options = Vec::new();
    if !message.is_ascii() {
        if !info.supports_feature(Extension::EightBitMime) {
            return Err(Failed::Refused(
                "the message is not ASCII and the server has no 8BITMIME",
            ));
        }
        options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    let ascii = |a: &Address| AsRef::<str>::as_ref(a).is_ascii();
    if !ascii(from) || !ascii(to) {
        if !info.supports_feature(Extension::SmtpUtfEight) {
            return Err(Failed::Refused(
                "the address is not ASCII and the server has no SMTPUTF8",
            ));
        }
        options.push(MailParameter::SmtpUtfEight);
    }
    let mail = Mail::new(Some(from.clone()), options);
    let rcpt = Rcpt::new(to.clone(), Vec::new());
    if pipelining {
        // Three replies come back in order, whatever each says: all three
        // are read, so the session stays in step even after a refusal.
        let mail_reply = conn.command(Pipelined(&mail, &rcpt)).await;
        let mail_reply = match mail_reply {
            Err(e) if !replied(&e) => return Err(Failed::Untouched(e)),
            other => other,
        };
        let rcpt_reply = conn.read_response().await;
        let data_reply = conn.read_response().await;
        match (mail_reply, rcpt_reply, data_reply) {
            (Ok(_), Ok(_), Ok(_)) => {}
            (Err(e), _, Ok(_)) | (_, Err(e), Ok(_)) => {
                // `DATA` accepted without a sender or recipient: the
                // server is out of step with us, so the session goes.
                conn.abort().await;
                return Err(Failed::After(e));
            }
            (Err(e), _, Err(_)) | (Ok(_), Err(e), Err(_)) | (Ok(_), Ok(_), Err(e)) => {
                return Err(Failed::After(e));
            }
        }
    } else {
        match conn.command(&mail).await {
            Ok(_) => {}
            Err(e) if !replied(&e) => return Err(Failed::Untouched(e)),
            Err(e) => return Err(Failed::After(e)),
        }
        conn.command(&rcpt).await.map_err(Failed::After)?;
        conn.command(Data).await.map_err(Failed::After)?;
    }
    conn.message(message).await.map_err(Failed::After)?;
    Ok(())
}

/// Whether the server answered (a 4xx or 5xx reply), rather than the
/// connection failing or the reply being unreadable.
fn replied(e: &lettre::transport::smtp::Error) -> bool {
    e.is_permanent() || e.is_transient()
}

/// A lettre error as a [`SendError`]: permanent when the server refused
/// for good (5xx) or the message cannot be sent as it is; transient otherwise.
fn classify(e: lettre::transport::smtp::Error) -> SendError {
    if e.is_permanent() || e.is_client() {
        SendError::Permanent(e.to_string())
    } else {
        SendError::Transient(e.to_string())
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            if conn.conn.has_broken() {
                return;
            }
            let mut idle = self
                .pool
                .idle
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            idle.push(Idle {
                conn,
                sent: self.sent,
                since: Instant::now(),
            });
        }
    }
}
