//! A fault-injecting TCP proxy on loopback, between kompass and the S3 server.
//!
//! The proxy follows HTTP/1.1 request boundaries on each connection (heads and
//! Content-Length bodies; kompass's client does not pipeline), and each request meets a fate
//! drawn from a seeded stream (request r of connection n draws the same fate for a seed):
//! passed through, delayed (request and answer held up to a bound), reset at once (RST
//! before any byte of it), dropped (swallowed silently for a bounded time, then reset), or
//! cut: reset after a random number of bytes of the request (the server sees a half-sent
//! body) or of the answer (the server did the work, the client never hears). A reset ends
//! the connection, as it would on a real network. The proxy runs on its own runtime thread,
//! so blocking test code cannot starve it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::reliability::Rng;

/// How often each fate is drawn (weights, any scale) and how long the waits may be.
#[derive(Debug, Clone, Copy)]
pub struct FaultMix {
    /// Passed through untouched.
    pub pass: u32,
    /// Every chunk delayed by up to `max_delay`.
    pub delay: u32,
    /// Reset before any byte is forwarded.
    pub reset: u32,
    /// Held without an answer for up to `max_stall`, then reset.
    pub drop: u32,
    /// Reset after a random part of the client's bytes reached the server.
    pub cut_request: u32,
    /// Reset after a random part of the server's answer reached the client.
    pub cut_response: u32,
    /// The longest delay of one chunk.
    pub max_delay: Duration,
    /// The longest silent hold of a dropped connection.
    pub max_stall: Duration,
}

impl FaultMix {
    /// Four requests in five are hit: retries often run out, so outcomes of every kind occur.
    pub fn brutal() -> Self {
        FaultMix { pass: 20, ..FaultMix::harsh() }
    }

    /// Roughly half the connections are hit, in every way.
    pub fn harsh() -> Self {
        FaultMix {
            pass: 50,
            delay: 10,
            reset: 10,
            drop: 5,
            cut_request: 15,
            cut_response: 10,
            max_delay: Duration::from_millis(150),
            max_stall: Duration::from_millis(1500),
        }
    }
}

/// What happens to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Pass,
    Delay,
    Reset,
    Drop(Duration),
    CutRequest(u64),
    CutResponse(u64),
}

/// Request counts by fate.
#[derive(Debug, Default)]
pub struct ProxyStats {
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Requests seen.
    pub requests: AtomicU64,
    /// Passed through.
    pub passed: AtomicU64,
    /// Delayed.
    pub delayed: AtomicU64,
    /// Reset at once.
    pub reset: AtomicU64,
    /// Dropped (held, then reset).
    pub dropped: AtomicU64,
    /// Cut during the request.
    pub cut_request: AtomicU64,
    /// Cut during the response.
    pub cut_response: AtomicU64,
}

impl ProxyStats {
    fn count(&self, fate: Fate) {
        let counter = match fate {
            Fate::Pass => &self.passed,
            Fate::Delay => &self.delayed,
            Fate::Reset => &self.reset,
            Fate::Drop(_) => &self.dropped,
            Fate::CutRequest(_) => &self.cut_request,
            Fate::CutResponse(_) => &self.cut_response,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

impl std::fmt::Display for ProxyStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        write!(
            f,
            "{} requests on {} connections: {} passed, {} delayed, {} reset, {} dropped, {} cut in the request, {} cut in the response",
            g(&self.requests),
            g(&self.connections),
            g(&self.passed),
            g(&self.delayed),
            g(&self.reset),
            g(&self.dropped),
            g(&self.cut_request),
            g(&self.cut_response)
        )
    }
}

/// A running proxy; it stops when dropped.
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`, to use as AWS_ENDPOINT_URL.
    pub url: String,
    /// What it did so far.
    pub stats: Arc<ProxyStats>,
    faults_on: Arc<AtomicBool>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (an `http://host:port` URL) drawing fates from `seed`.
    pub fn start(upstream: &str, seed: u64, mix: FaultMix) -> FaultProxy {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("the upstream is http://IP:PORT");
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", std_listener.local_addr().unwrap());
        let stats = Arc::new(ProxyStats::default());
        let faults_on = Arc::new(AtomicBool::new(true));
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (s, f) = (stats.clone(), faults_on.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = TcpListener::from_std(std_listener).unwrap();
                let root = Rng::new(seed);
                let accept = async {
                    let mut n = 0u64;
                    loop {
                        let Ok((client, _)) = listener.accept().await else { continue };
                        let rng = root.fork(n);
                        n += 1;
                        s.connections.fetch_add(1, Ordering::Relaxed);
                        tokio::spawn(handle(client, upstream, rng, mix, f.clone(), s.clone()));
                    }
                };
                tokio::select! {
                    _ = accept => {}
                    _ = stop_rx => {}
                }
            });
            rt.shutdown_timeout(Duration::from_millis(100));
        });
        FaultProxy { url, stats, faults_on, stop: Some(stop_tx), thread: Some(thread) }
    }

    /// Turns the faults on or off (off: every new connection passes).
    pub fn set_faults(&self, on: bool) {
        self.faults_on.store(on, Ordering::Relaxed);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn draw(rng: &mut Rng, mix: &FaultMix) -> Fate {
    let total = mix.pass + mix.delay + mix.reset + mix.drop + mix.cut_request + mix.cut_response;
    let mut x = rng.below(u64::from(total)) as u32;
    let mut pick = |w: u32| {
        if x < w {
            true
        } else {
            x -= w;
            false
        }
    };
    // Cuts land anywhere from the first byte to deep into a body (small objects are a few KB;
    // a cut beyond the end of a short exchange lets it through, which is fine too).
    if pick(mix.pass) {
        Fate::Pass
    } else if pick(mix.delay) {
        Fate::Delay
    } else if pick(mix.reset) {
        Fate::Reset
    } else if pick(mix.drop) {
        Fate::Drop(Duration::from_millis(rng.below(mix.max_stall.as_millis() as u64 + 1)))
    } else if pick(mix.cut_request) {
        Fate::CutRequest(cut_point(rng))
    } else if rng.chance(0.6) {
        // Most answers (to PUT, HEAD, DELETE) are a few hundred bytes of head.
        Fate::CutResponse(rng.below(300))
    } else {
        Fate::CutResponse(cut_point(rng))
    }
}

/// A byte count: often inside the headers, often inside a body.
fn cut_point(rng: &mut Rng) -> u64 {
    match rng.below(3) {
        0 => rng.below(400),
        1 => rng.range(400, 2_000),
        _ => rng.range(2_000, 40_000),
    }
}

async fn handle(
    client: TcpStream,
    upstream: SocketAddr,
    rng: Rng,
    mix: FaultMix,
    faults_on: Arc<AtomicBool>,
    stats: Arc<ProxyStats>,
) {
    let Ok(server) = TcpStream::connect(upstream).await else { return };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let shared = Arc::new(Downstream::default());
    let mut up = tokio::spawn(requests(cr, sw, rng, mix, faults_on, stats, shared.clone()));
    let mut down = tokio::spawn(responses(sr, cw, shared));
    // When one direction is cut, the other is dropped at once: both sockets reset.
    tokio::select! {
        r = &mut up => {
            if r.unwrap_or(Pumped::Cut) == Pumped::Cut { down.abort(); } else { let _ = down.await; }
        }
        r = &mut down => {
            if r.unwrap_or(Pumped::Cut) == Pumped::Cut { up.abort(); } else { let _ = up.await; }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pumped {
    Eof,
    Cut,
}

/// What the request side tells the response side about the current exchange.
#[derive(Debug)]
struct Downstream {
    /// Response bytes forwarded so far on this connection.
    sent: AtomicU64,
    /// Reset once `sent` reaches this (u64::MAX: never).
    cut_at: AtomicU64,
    /// Hold the next response chunk this many milliseconds.
    delay_ms: AtomicU64,
}

impl Default for Downstream {
    fn default() -> Self {
        Downstream {
            sent: AtomicU64::new(0),
            cut_at: AtomicU64::new(u64::MAX),
            delay_ms: AtomicU64::new(0),
        }
    }
}

/// Resets both sockets this task holds a half of (zero linger, then the halves drop).
fn reset(a: &tokio::net::tcp::OwnedReadHalf, b: tokio::net::tcp::OwnedWriteHalf) -> Pumped {
    let _ = a.as_ref().set_zero_linger();
    let _ = b.as_ref().set_zero_linger();
    b.forget();
    Pumped::Cut
}

/// Where the client's byte stream is: between requests, in a request head (bytes so far), or
/// in a body (bytes left).
enum Parse {
    Idle,
    Head(Vec<u8>),
    Body(u64),
}

/// Client → server, one HTTP/1.1 request at a time (kompass's client never pipelines), each
/// meeting its own fate.
async fn requests(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut rng: Rng,
    mix: FaultMix,
    faults_on: Arc<AtomicBool>,
    stats: Arc<ProxyStats>,
    down: Arc<Downstream>,
) -> Pumped {
    let mut buf = vec![0u8; 16 * 1024];
    let mut state = Parse::Idle;
    let mut fate = Fate::Pass;
    let mut forwarded_in_request = 0u64;
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = to.shutdown().await;
                return Pumped::Eof;
            }
            Ok(n) => n,
        };
        let mut chunk = &buf[..n];
        while !chunk.is_empty() {
            if matches!(state, Parse::Idle) {
                // A new request: its fate.
                fate = if faults_on.load(Ordering::Relaxed) {
                    draw(&mut rng, &mix)
                } else {
                    Fate::Pass
                };
                stats.requests.fetch_add(1, Ordering::Relaxed);
                stats.count(fate);
                forwarded_in_request = 0;
                state = Parse::Head(Vec::new());
                match fate {
                    Fate::Reset => return reset(&from, to),
                    Fate::Drop(hold) => {
                        // Swallow what the client sends, answer nothing, then reset.
                        let _ = tokio::time::timeout(hold, async {
                            while let Ok(n) = from.read(&mut buf).await {
                                if n == 0 {
                                    break;
                                }
                            }
                        })
                        .await;
                        return reset(&from, to);
                    }
                    Fate::Delay => {
                        tokio::time::sleep(Duration::from_millis(
                            rng.below(mix.max_delay.as_millis() as u64 + 1),
                        ))
                        .await;
                        down.delay_ms.store(
                            rng.below(mix.max_delay.as_millis() as u64 + 1),
                            Ordering::Relaxed,
                        );
                    }
                    Fate::CutResponse(k) => {
                        down.cut_at.store(down.sent.load(Ordering::Relaxed) + k, Ordering::Relaxed);
                    }
                    Fate::Pass | Fate::CutRequest(_) => {}
                }
            }
            // How much of the chunk belongs to this request.
            let take = match &mut state {
                Parse::Head(head) => {
                    let before = head.len();
                    head.extend_from_slice(chunk);
                    match head.windows(4).position(|w| w == b"\r\n\r\n") {
                        Some(end) => {
                            let length = content_length(&head[..end]);
                            let take = end + 4 - before;
                            state = if length == 0 { Parse::Idle } else { Parse::Body(length) };
                            take
                        }
                        None => chunk.len(),
                    }
                }
                Parse::Body(left) => {
                    let take = (*left).min(chunk.len() as u64);
                    *left -= take;
                    if *left == 0 {
                        state = Parse::Idle;
                    }
                    take as usize
                }
                Parse::Idle => unreachable!("a request was just started"),
            };
            let (part, rest) = chunk.split_at(take);
            chunk = rest;
            let mut part = part;
            let mut cut = false;
            if let Fate::CutRequest(k) = fate {
                let room = k.saturating_sub(forwarded_in_request) as usize;
                if part.len() >= room {
                    part = &part[..room];
                    cut = true;
                }
            }
            if to.write_all(part).await.is_err() {
                return reset(&from, to);
            }
            forwarded_in_request += part.len() as u64;
            if cut {
                return reset(&from, to);
            }
        }
    }
}

/// Server → client, delayed or cut where the request side said.
async fn responses(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    down: Arc<Downstream>,
) -> Pumped {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = to.shutdown().await;
                return Pumped::Eof;
            }
            Ok(n) => n,
        };
        let delay = down.delay_ms.swap(0, Ordering::Relaxed);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        let sent = down.sent.load(Ordering::Relaxed);
        let room = down.cut_at.load(Ordering::Relaxed).saturating_sub(sent);
        let (part, cut) =
            if n as u64 >= room { (&buf[..room as usize], true) } else { (&buf[..n], false) };
        if to.write_all(part).await.is_err() {
            return reset(&from, to);
        }
        down.sent.fetch_add(part.len() as u64, Ordering::Relaxed);
        if cut {
            return reset(&from, to);
        }
    }
}

/// The Content-Length of a request head (0 when absent or unreadable).
fn content_length(head: &[u8]) -> u64 {
    String::from_utf8_lossy(head)
        .split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}
