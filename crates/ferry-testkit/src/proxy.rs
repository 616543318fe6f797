//! A TCP forwarder for network-fault tests: put it between Ferry and a test server, then cut
//! every connection at once ([`TcpProxy::cut`]) or stop forwarding bytes without closing anything
//! ([`TcpProxy::stall`]).
//!
//! It listens on 127.0.0.1 only and forwards only to a loopback upstream (the local test servers).
//! Dropping the proxy closes the listener and every connection.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinHandle};

struct Shared {
    /// The live (or recently finished) connection tasks; aborting one drops both of its sockets.
    conns: Mutex<Vec<AbortHandle>>,
    accepted: AtomicU64,
    stalled: watch::Sender<bool>,
}

impl Shared {
    fn abort_all(&self) {
        let mut conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        for h in conns.drain(..) {
            h.abort();
        }
    }
}

/// A running forwarder from `127.0.0.1:port()` to one upstream address.
pub struct TcpProxy {
    port: u16,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl TcpProxy {
    /// Starts forwarding from a fresh port on 127.0.0.1 to `upstream` (a loopback host).
    pub async fn start(upstream: (impl Into<String>, u16)) -> Result<TcpProxy> {
        let (host, up_port) = (upstream.0.into(), upstream.1);
        if !matches!(host.as_str(), "127.0.0.1" | "localhost" | "::1") {
            bail!("the test proxy forwards to loopback addresses only, not {host}");
        }
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .context("binding the test proxy on 127.0.0.1")?;
        let port = listener.local_addr()?.port();
        let (stalled, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            conns: Mutex::new(Vec::new()),
            accepted: AtomicU64::new(0),
            stalled,
        });
        let sh = shared.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    // Accept errors (e.g. out of descriptors) are momentary; do not spin.
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                };
                sh.accepted.fetch_add(1, Ordering::SeqCst);
                let stall = sh.stalled.subscribe();
                let host = host.clone();
                let task = tokio::spawn(async move {
                    let _ = forward(client, (host.as_str(), up_port), stall).await;
                });
                let mut conns = sh.conns.lock().unwrap_or_else(|p| p.into_inner());
                conns.retain(|h| !h.is_finished());
                conns.push(task.abort_handle());
            }
        });
        Ok(TcpProxy { port, shared, accept })
    }

    /// The port the proxy listens on (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Closes every current connection, both directions, at once. New connections are accepted
    /// as before.
    pub fn cut(&self) {
        self.shared.abort_all();
    }

    /// `true`: stop forwarding bytes in both directions (connections stay open, data waits);
    /// `false`: resume.
    pub fn stall(&self, on: bool) {
        self.shared.stalled.send_replace(on);
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.shared.abort_all();
    }
}

async fn forward(
    client: TcpStream,
    upstream: (&str, u16),
    stall: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let server = TcpStream::connect(upstream).await?;
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    // The first error in either direction ends both (the sockets are dropped together).
    tokio::try_join!(pump(cr, sw, stall.clone()), pump(sr, cw, stall))?;
    Ok(())
}

/// Copies one direction until EOF (then half-closes the other side), holding bytes while stalled.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut stall: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        unstalled(&mut stall).await;
        let n = from.read(&mut buf).await?;
        if n == 0 {
            let _ = to.shutdown().await;
            return Ok(());
        }
        unstalled(&mut stall).await;
        to.write_all(&buf[..n]).await?;
    }
}

async fn unstalled(stall: &mut watch::Receiver<bool>) {
    // The sender lives as long as the proxy, which outlives its connection tasks.
    let _ = stall.wait_for(|s| !*s).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// An echo server on 127.0.0.1 (the upstream of the proxy under test).
    async fn echo_server() -> Result<(u16, JoinHandle<()>)> {
        let l = TcpListener::bind(("127.0.0.1", 0)).await?;
        let port = l.local_addr()?.port();
        let h = tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        Ok((port, h))
    }

    async fn roundtrip(s: &mut TcpStream, msg: &[u8]) -> Result<Vec<u8>> {
        s.write_all(msg).await?;
        let mut got = vec![0u8; msg.len()];
        tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut got))
            .await
            .context("echo timed out")??;
        Ok(got)
    }

    #[tokio::test]
    async fn forwards_cuts_and_stalls() -> Result<()> {
        let (up, echo) = echo_server().await?;
        let p = TcpProxy::start(("127.0.0.1", up)).await?;
        assert_eq!(p.connections(), 0);

        // Forwarding, including a payload bigger than one buffer.
        let mut a = TcpStream::connect(("127.0.0.1", p.port())).await?;
        assert_eq!(roundtrip(&mut a, b"hello").await?, b"hello");
        let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let (mut r, mut w) = a.into_split();
        let big2 = big.clone();
        let writer = tokio::spawn(async move {
            w.write_all(&big2).await?;
            Ok::<_, std::io::Error>(w)
        });
        let mut got = vec![0u8; big.len()];
        tokio::time::timeout(Duration::from_secs(10), r.read_exact(&mut got)).await??;
        assert!(got == big, "the big payload came back intact");
        let mut a = r.reunite(writer.await??)?;
        assert_eq!(p.connections(), 1);

        // Stall: bytes are held, the connection stays open; resume delivers them.
        let mut b = TcpStream::connect(("127.0.0.1", p.port())).await?;
        assert_eq!(roundtrip(&mut b, b"x").await?, b"x");
        p.stall(true);
        b.write_all(b"held").await?;
        let mut buf = [0u8; 4];
        let early = tokio::time::timeout(Duration::from_millis(300), b.read_exact(&mut buf)).await;
        assert!(early.is_err(), "nothing is forwarded while stalled");
        p.stall(false);
        tokio::time::timeout(Duration::from_secs(5), b.read_exact(&mut buf)).await??;
        assert_eq!(&buf, b"held");

        // Cut: both open connections end (EOF or reset), new ones work.
        p.cut();
        for s in [&mut a, &mut b] {
            let mut one = [0u8; 1];
            let r = tokio::time::timeout(Duration::from_secs(5), s.read(&mut one))
                .await
                .context("a cut connection stayed open")?;
            assert!(matches!(r, Ok(0) | Err(_)), "cut connection: {r:?}");
        }
        let mut c = TcpStream::connect(("127.0.0.1", p.port())).await?;
        assert_eq!(roundtrip(&mut c, b"again").await?, b"again");
        assert_eq!(p.connections(), 3);

        // Drop: the listener closes.
        let port = p.port();
        drop(p);
        let mut closed = false;
        for _ in 0..50 {
            if TcpStream::connect(("127.0.0.1", port)).await.is_err() {
                closed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(closed, "the listener closes when the proxy is dropped");
        echo.abort();
        Ok(())
    }

    #[tokio::test]
    async fn refuses_non_loopback_upstreams() {
        assert!(TcpProxy::start(("10.0.0.1", 3306)).await.is_err());
    }
}
