//! `/metrics` of the worker, in Prometheus' text format: the depth of each
//! queue of `JOBS` by state, how long the oldest unsent notification has waited,
//! deliveries by channel and state, texts refused (velocity limits,
//! budgets, the plan's limit, SMS off) and emails refused (the plan's
//! limit). What a pager needs to tell "notifications
//! are stuck" from "notifications are slow".
//!
//! Served by a few lines of HTTP/1.1 on a plain socket rather than a web
//! framework: one read-only endpoint, scraped every few seconds.

use std::fmt::Write as _;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{Context, JOBS, SmsRefusal};

/// The metrics as Prometheus text. A source that cannot be read is left
/// out (and logged) rather than failing the scrape.
pub async fn render(ctx: &Context) -> String {
    let mut queues = Vec::new();
    for (queue, depth) in JOBS.depths(&ctx.queues).await {
        match depth {
            Ok(d) => queues.push((queue, d)),
            Err(err) => {
                tracing::warn!(job.name = queue, error = %err, "metrics: queue depth unavailable");
            }
        }
    }
    let mut out = String::new();
    out.push_str("# HELP heliograph_queue_jobs Jobs in each queue by state.\n");
    out.push_str("# TYPE heliograph_queue_jobs gauge\n");
    for (queue, d) in &queues {
        for (state, n) in [
            ("ready", d.ready),
            ("scheduled", d.scheduled),
            ("in_flight", d.in_flight),
            ("done", d.done),
            ("dead", d.dead),
        ] {
            let _ = writeln!(
                out,
                "heliograph_queue_jobs{{queue=\"{queue}\",state=\"{state}\"}} {n}"
            );
        }
    }
    match ctx.store.oldest_unsent_delivery_seconds().await {
        Ok(age) => {
            out.push_str("# HELP heliograph_oldest_unsent_delivery_seconds How long the oldest pending or failed delivery has waited.\n");
            out.push_str("# TYPE heliograph_oldest_unsent_delivery_seconds gauge\n");
            let _ = writeln!(out, "heliograph_oldest_unsent_delivery_seconds {age:.3}");
        }
        Err(err) => tracing::warn!(error = %err, "metrics: delivery age unavailable"),
    }
    match ctx.store.unrelayed_events().await {
        Ok(n) => {
            out.push_str(
                "# HELP heliograph_outbox_unrelayed Outbox events not yet relayed to the queues.\n",
            );
            out.push_str("# TYPE heliograph_outbox_unrelayed gauge\n");
            let _ = writeln!(out, "heliograph_outbox_unrelayed {n}");
        }
        Err(err) => tracing::warn!(error = %err, "metrics: outbox count unavailable"),
    }
    out.push_str("# HELP heliograph_sms_refused_total Texts not sent since the worker started, by why (SMS off for the page, a velocity limit, a spent budget, the plan's limit).\n");
    out.push_str("# TYPE heliograph_sms_refused_total counter\n");
    for refusal in SmsRefusal::ALL {
        let _ = writeln!(
            out,
            "heliograph_sms_refused_total{{reason=\"{}\"}} {}",
            refusal.label(),
            ctx.channels.sms_refused.get(refusal)
        );
    }
    out.push_str("# HELP heliograph_emails_refused_total Notification emails not sent since the worker started, by why (the plan's emails_per_month).\n");
    out.push_str("# TYPE heliograph_emails_refused_total counter\n");
    let _ = writeln!(
        out,
        "heliograph_emails_refused_total{{reason=\"plan_limit\"}} {}",
        ctx.channels
            .emails_over_plan
            .load(std::sync::atomic::Ordering::Relaxed)
    );
    match ctx.store.delivery_counts().await {
        Ok(rows) => {
            out.push_str("# HELP heliograph_deliveries Deliveries by channel and state.\n");
            out.push_str("# TYPE heliograph_deliveries gauge\n");
            for (channel, status, n) in rows {
                let _ = writeln!(
                    out,
                    "heliograph_deliveries{{channel=\"{channel}\",state=\"{status}\"}} {n}"
                );
            }
        }
        Err(err) => tracing::warn!(error = %err, "metrics: delivery counts unavailable"),
    }
    out
}

/// Answers `GET /metrics` on `listener` until `shutdown`.
pub async fn serve(ctx: Context, listener: TcpListener, shutdown: CancellationToken) {
    loop {
        let (mut socket, _) = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(err) => {
                    tracing::warn!(error = %err, "metrics: accept failed");
                    continue;
                }
            },
        };
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let mut request = Vec::with_capacity(1024);
            let mut buf = [0u8; 1024];
            // The request line and headers; a scraper sends no body.
            while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 8192 {
                match tokio::time::timeout(std::time::Duration::from_secs(5), socket.read(&mut buf))
                    .await
                {
                    Ok(Ok(n)) if n > 0 => request.extend_from_slice(&buf[..n]),
                    _ => return,
                }
            }
            let line = String::from_utf8_lossy(&request);
            let (status, body) = if line.starts_with("GET /metrics ") {
                ("200 OK", render(&ctx).await)
            } else {
                ("404 Not Found", "not found\n".to_owned())
            };
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
            let _ = socket.shutdown().await;
        });
    }
}
