//! One connection: hyper's HTTP/1 state machine, and a clock that closes
//! the connection when its client is too slow.
//!
//! hyper's own `header_read_timeout` restarts whenever a kept-alive
//! connection goes idle, so it would close idle connections at the header
//! time-out. The clock keeps the two apart, as nginx and Go do: a new
//! connection must deliver its first request's headers within the header
//! time-out; a kept-alive one may wait up to the idle time-out for the first
//! byte of its next request, and from that byte has the header time-out for
//! the rest. A body that is late makes the request fail with 408.
//!
//! hyper polls the connection, the service and the bodies all from the
//! connection's one task, so the clock is read right after every poll of
//! the connection and is never out of date when it is checked.

use super::{Limits, CLIENT_TIMEOUTS};
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, Request, Response, StatusCode};
use axum::response::IntoResponse;
use axum::{BoxError, Json, Router};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// Largest request head (request line and headers). Real clients send a
/// few hundred bytes; without a bound, each slow connection could make
/// hyper buffer about 400 KiB.
const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Serves one connection until it is done, its client is too slow, or
/// shutdown finds no request in flight on it.
pub(super) async fn serve(stream: TcpStream, app: Router, limits: Limits, stop: CancellationToken) {
    let clock = Arc::new(Clock::new(limits));
    // Handlers that limit per client read it (`ConnectInfo`, as axum's own
    // server provides it).
    let peer = stream.peer_addr().ok();
    let io = TokioIo::new(Watched {
        stream,
        clock: clock.clone(),
    });
    let service = {
        let clock = clock.clone();
        hyper::service::service_fn(move |mut req: Request<Incoming>| {
            if let Some(peer) = peer {
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
            }
            answer(req, app.clone(), clock.clone(), limits)
        })
    };
    let conn = hyper::server::conn::http1::Builder::new()
        // The clock does this job (see the module's comment).
        .header_read_timeout(None)
        .max_header_size(MAX_HEADER_BYTES)
        .serve_connection(io, service);
    tokio::pin!(conn);
    let timer = tokio::time::sleep_until(Instant::now() + limits.header_read_timeout);
    tokio::pin!(timer);
    let stopped = stop.cancelled();
    tokio::pin!(stopped);
    let mut draining = false;
    loop {
        let woken = poll_fn(|cx| {
            if let Poll::Ready(result) = conn.as_mut().poll(cx) {
                return Poll::Ready(Woken::Done(result));
            }
            if !draining && stopped.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Woken::Stop);
            }
            if let Some((deadline, timeout)) = clock.deadline() {
                if timer.deadline() != deadline {
                    timer.as_mut().reset(deadline);
                }
                if timer.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Woken::Late(timeout));
                }
            }
            Poll::Pending
        })
        .await;
        match woken {
            Woken::Done(Ok(())) => return,
            Woken::Done(Err(e)) => {
                tracing::debug!(error = %e, "HTTP connection ended with an error");
                return;
            }
            Woken::Late(timeout) => {
                // Dropping `conn` closes the socket.
                tracing::debug!(timeout, "closing the connection of a slow client");
                ::metrics::counter!(CLIENT_TIMEOUTS, "timeout" => timeout).increment(1);
                return;
            }
            Woken::Stop => {
                draining = true;
                // A request in flight is answered, then hyper closes.
                conn.as_mut().graceful_shutdown();
                // Half a request head is not a request in flight.
                if matches!(clock.phase(), Phase::Head(_)) {
                    return;
                }
            }
        }
    }
}

enum Woken {
    Done(hyper::Result<()>),
    Stop,
    /// The client missed a deadline: `header` or `idle`.
    Late(&'static str),
}

/// Where a connection is between requests.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Waiting for (the rest of) a request's headers, until then.
    Head(Instant),
    /// Kept alive, waiting for the first byte of the next request, until then.
    Idle(Instant),
    /// A request is being answered; its body has its own deadline.
    Busy,
}

struct Clock {
    phase: Mutex<Phase>,
    limits: Limits,
}

impl Clock {
    fn new(limits: Limits) -> Self {
        Self {
            phase: Mutex::new(Phase::Head(Instant::now() + limits.header_read_timeout)),
            limits,
        }
    }

    fn phase(&self) -> Phase {
        *self.phase.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set(&self, phase: Phase) {
        *self.phase.lock().unwrap_or_else(PoisonError::into_inner) = phase;
    }

    fn deadline(&self) -> Option<(Instant, &'static str)> {
        match self.phase() {
            Phase::Head(at) => Some((at, "header")),
            Phase::Idle(at) => Some((at, "idle")),
            Phase::Busy => None,
        }
    }

    /// Bytes came in: on an idle connection, they start a request.
    fn bytes_arrived(&self) {
        let mut phase = self.phase.lock().unwrap_or_else(PoisonError::into_inner);
        if let Phase::Idle(_) = *phase {
            *phase = Phase::Head(Instant::now() + self.limits.header_read_timeout);
        }
    }

    fn request_started(&self) {
        self.set(Phase::Busy);
    }

    fn response_done(&self) {
        self.set(Phase::Idle(Instant::now() + self.limits.idle_timeout));
    }
}

/// Hands one request to the app, its body bounded by the body time-out.
fn answer(
    req: Request<Incoming>,
    app: Router,
    clock: Arc<Clock>,
    limits: Limits,
) -> impl Future<Output = Result<Response<Answer>, std::convert::Infallible>> {
    clock.request_started();
    let late = Arc::new(AtomicBool::new(false));
    let req = if http_body::Body::is_end_stream(req.body()) {
        req.map(Body::new)
    } else {
        let deadline = Box::pin(tokio::time::sleep(limits.body_read_timeout));
        let late = late.clone();
        req.map(|body| {
            Body::new(DeadlineBody {
                body,
                deadline,
                late,
            })
        })
    };
    async move {
        let Ok(mut response) = app.oneshot(req).await;
        if late.load(Ordering::Relaxed) {
            // The handler saw a failed body read and answered for that;
            // the client should learn why.
            ::metrics::counter!(CLIENT_TIMEOUTS, "timeout" => "body").increment(1);
            response = request_timeout(response.headers().get("x-request-id").cloned());
        }
        Ok(response.map(|body| Answer { body, clock }))
    }
}

/// 408, closing the connection: the rest of the body may still be coming.
fn request_timeout(request_id: Option<HeaderValue>) -> Response<Body> {
    let mut response = (
        StatusCode::REQUEST_TIMEOUT,
        [(header::CONNECTION, HeaderValue::from_static("close"))],
        Json(serde_json::json!({"error": "request_timeout"})),
    )
        .into_response();
    if let Some(id) = request_id {
        response.headers_mut().insert("x-request-id", id);
    }
    response
}

#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within HTTP_BODY_READ_TIMEOUT_SECS")]
struct BodyTimeout;

/// A request body that fails once its deadline has passed. (tower-http's
/// body time-out restarts with every chunk, so a body trickled a byte at a
/// time would never hit it.)
struct DeadlineBody {
    body: Incoming,
    deadline: Pin<Box<Sleep>>,
    late: Arc<AtomicBool>,
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if !this.late.load(Ordering::Relaxed) {
            if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
                return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
            }
            if this.deadline.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.late.store(true, Ordering::Relaxed);
        }
        Poll::Ready(Some(Err(BodyTimeout.into())))
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A response body that puts the connection back to idle once hyper has
/// taken all of it (it drops the body then, or when the connection closes).
struct Answer {
    body: Body,
    clock: Arc<Clock>,
}

impl http_body::Body for Answer {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Answer {
    fn drop(&mut self) {
        self.clock.response_done();
    }
}

/// The socket, telling the clock when bytes arrive.
struct Watched {
    stream: TcpStream,
    clock: Arc<Clock>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let read = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.clock.bytes_arrived();
        }
        read
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
