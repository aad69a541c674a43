//! A fault-injecting TCP proxy on loopback, between kompass and the S3 server.
//!
//! Each accepted connection gets one fate, drawn from a seeded stream (connection n always
//! draws the same fate for a seed): passed through untouched, delayed (every chunk held up to
//! a bound), reset at once (RST before any byte), dropped (held silently for a bounded time,
//! then reset), or cut: reset after a random number of bytes of the request (the server sees a
//! half-sent body) or of the response (the server did the work, the client never hears). The
//! proxy runs on its own runtime thread, so blocking test code cannot starve it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::Rng;

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

/// What happened to one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Pass,
    Delay,
    Reset,
    Drop(Duration),
    CutRequest(u64),
    CutResponse(u64),
}

/// Connection counts by fate.
#[derive(Debug, Default)]
pub struct ProxyStats {
    /// Connections accepted.
    pub connections: AtomicU64,
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

impl std::fmt::Display for ProxyStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        write!(
            f,
            "{} connections: {} passed, {} delayed, {} reset, {} dropped, {} cut in the request, {} cut in the response",
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
                        let mut rng = root.fork(n);
                        n += 1;
                        s.connections.fetch_add(1, Ordering::Relaxed);
                        let fate = if f.load(Ordering::Relaxed) { draw(&mut rng, &mix) } else { Fate::Pass };
                        let stats = s.clone();
                        tokio::spawn(async move {
                            handle(client, upstream, fate, rng, mix, &stats).await;
                        });
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
    fate: Fate,
    mut rng: Rng,
    mix: FaultMix,
    stats: &ProxyStats,
) {
    let counter = match fate {
        Fate::Pass => &stats.passed,
        Fate::Delay => &stats.delayed,
        Fate::Reset => &stats.reset,
        Fate::Drop(_) => &stats.dropped,
        Fate::CutRequest(_) => &stats.cut_request,
        Fate::CutResponse(_) => &stats.cut_response,
    };
    counter.fetch_add(1, Ordering::Relaxed);
    // A zero linger makes every close of a faulted connection a reset, not an orderly FIN.
    if fate != Fate::Pass && fate != Fate::Delay {
        let _ = client.set_zero_linger();
    }
    match fate {
        Fate::Reset => return,
        Fate::Drop(hold) => {
            // Read (and discard) what the client sends, answer nothing.
            let mut client = client;
            let mut sink = [0u8; 8192];
            let _ = tokio::time::timeout(hold, async {
                while let Ok(n) = client.read(&mut sink).await {
                    if n == 0 {
                        break;
                    }
                }
            })
            .await;
            return;
        }
        _ => {}
    }
    let Ok(server) = TcpStream::connect(upstream).await else { return };
    if matches!(fate, Fate::CutRequest(_) | Fate::CutResponse(_)) {
        let _ = server.set_zero_linger();
    }
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let delay = (fate == Fate::Delay).then_some(mix.max_delay);
    let up_limit = match fate {
        Fate::CutRequest(n) => Some(n),
        _ => None,
    };
    let down_limit = match fate {
        Fate::CutResponse(n) => Some(n),
        _ => None,
    };
    let (r1, r2) = (rng.fork(1), rng.fork(2));
    rng.next_u64();
    let mut up = tokio::spawn(pump(cr, sw, up_limit, delay, r1));
    let mut down = tokio::spawn(pump(sr, cw, down_limit, delay, r2));
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

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    limit: Option<u64>,
    delay: Option<Duration>,
    mut rng: Rng,
) -> Pumped {
    let mut buf = vec![0u8; 16 * 1024];
    let mut sent = 0u64;
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = to.shutdown().await;
                return Pumped::Eof;
            }
            Ok(n) => n,
        };
        if let Some(d) = delay {
            tokio::time::sleep(Duration::from_millis(rng.below(d.as_millis() as u64 + 1))).await;
        }
        let mut chunk = &buf[..n];
        let mut cut = false;
        if let Some(limit) = limit {
            let room = limit.saturating_sub(sent) as usize;
            if chunk.len() >= room {
                chunk = &chunk[..room];
                cut = true;
            }
        }
        if to.write_all(chunk).await.is_err() {
            to.forget();
            return Pumped::Cut;
        }
        sent += chunk.len() as u64;
        if cut {
            // No FIN: the socket goes with a reset when the other direction is dropped.
            to.forget();
            return Pumped::Cut;
        }
    }
}
