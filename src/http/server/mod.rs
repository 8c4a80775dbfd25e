//! The HTTP/1 server loop (docs/contract.md §9): accepts connections up to
//! a cap and closes those whose clients are too slow, so that a few
//! thousand half-sent requests cannot starve real ones.
//!
//! - A connection beyond `HTTP_MAX_CONNECTIONS` is not accepted: it waits
//!   in the kernel's listen backlog until an open one closes. Refusing it
//!   instead would fail every real client while slow ones hold the slots;
//!   waiting serves them in arrival order as the time-outs below free slots.
//! - Each connection is timed by [`connection`]: headers, body and the
//!   wait between requests each have their own time-out.
//! - On shutdown the listener is closed at once, requests in flight are
//!   answered, and connections without one are closed.

mod connection;

pub(crate) use crate::config::HttpLimits as Limits;
use axum::Router;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Connections currently open (gauge).
pub(crate) const OPEN_CONNECTIONS: &str = "rosterd_http_connections_open";
/// Connections closed because the client was too slow, by `timeout`
/// (`header`, `body`, `idle`).
pub(crate) const CLIENT_TIMEOUTS: &str = "rosterd_http_client_timeouts_total";

/// Connections beyond the cap wait here. The kernel lowers it to
/// `net.core.somaxconn` (4096 by default since Linux 5.4); a burst beyond
/// it has SYNs dropped (clients retry them) or answered with SYN cookies.
pub(crate) const LISTEN_BACKLOG: u32 = 4096;

/// Listens on `addr` with [`LISTEN_BACKLOG`] (`TcpListener::bind` keeps
/// 1,024).
pub(crate) fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    // As `bind` does: a restart may reuse the port while the previous
    // process's connections linger in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Serves `app` on `listener` within `limits` until `shutdown` resolves,
/// then stops accepting, answers the requests in flight and returns once
/// every connection is closed.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    describe();
    // Each open connection holds a permit; the semaphore is never closed.
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let stop = CancellationToken::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            biased;
            () = &mut shutdown => break,
            permit = slots.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
        };
        let stream = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) if is_the_clients(&e) => continue,
                Err(e) => {
                    tracing::error!(error = %e, "accepting a connection failed; retrying in 1 s");
                    // Not a busy loop while, say, file descriptors run out.
                    tokio::select! {
                        biased;
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            },
        };
        let slot = Slot::taken(permit);
        let (app, stop) = (app.clone(), stop.clone());
        tokio::spawn(async move {
            connection::serve(stream, app, limits, stop).await;
            // Only now, with the socket closed, may another one be accepted.
            drop(slot);
        });
    }
    // Connections still waiting in the backlog are refused from here on.
    drop(listener);
    stop.cancel();
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _every_connection_closed = slots.acquire_many(all).await;
    Ok(())
}

/// The client hung up before its connection was taken: nothing to do.
fn is_the_clients(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    )
}

/// One connection's place under the cap, counted in the open-connections
/// gauge until it is dropped (also when its task panics).
struct Slot {
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Slot {
    fn taken(permit: tokio::sync::OwnedSemaphorePermit) -> Self {
        ::metrics::gauge!(OPEN_CONNECTIONS).increment(1.0);
        Self { _permit: permit }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        ::metrics::gauge!(OPEN_CONNECTIONS).decrement(1.0);
    }
}

fn describe() {
    ::metrics::describe_gauge!(OPEN_CONNECTIONS, "HTTP connections open now");
    ::metrics::describe_counter!(
        CLIENT_TIMEOUTS,
        "HTTP connections closed because the client was too slow, by timeout (header, body, idle)"
    );
}
