//! One side of a session: a TCP socket, plain or carrying TLS.
//!
//! The forwarding loop is readiness-driven (wait until readable, then read what is there
//! without blocking), so TLS is done here with rustls's sans-I/O API rather than through an
//! `AsyncRead` wrapper: records are read from the socket when it is readable and decrypted
//! into rustls's buffer; written plaintext is encrypted into rustls's buffer and flushed
//! when the socket takes it. [`Stream::wants_flush`] tells the loop that encrypted bytes
//! still wait for the socket, so it waits for writability on their behalf.
//!
//! For the code that reads and writes a few bytes at a session's edges (protocol header,
//! `connection.close`, health checks), `Stream` is also `AsyncRead + AsyncWrite`.

use std::io::{self, ErrorKind, Read, Write};
use std::net::Shutdown;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// A session's socket.
#[derive(Debug)]
pub enum Stream {
    Plain(TcpStream),
    /// Boxed: rustls's state is large and only TLS sessions pay for it.
    Tls(Box<Tls>),
}

/// TLS over a TCP socket, driven without blocking.
#[derive(Debug)]
pub struct Tls {
    tcp: TcpStream,
    conn: rustls::Connection,
    /// Decrypted bytes waiting in rustls: readable without touching the socket.
    buffered: usize,
    /// The peer sent `close_notify` or its FIN.
    peer_closed: bool,
    /// Our side was shut down: `close_notify` is queued, the FIN follows it once flushed.
    closing: bool,
    fin_sent: bool,
}

/// The socket as `std::io` sees it, for rustls; `WouldBlock` clears tokio's readiness.
struct Io<'a>(&'a TcpStream);

impl Read for Io<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
}

impl Write for Io<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.0.try_write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Stream {
    /// The TCP socket underneath (socket options, addresses).
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(tcp) => tcp,
            Stream::Tls(tls) => &tls.tcp,
        }
    }

    /// The SNI a TLS client sent (`ssl_fc_sni`); `None` for plain TCP or no SNI.
    pub fn server_name(&self) -> Option<&str> {
        match self {
            Stream::Plain(_) => None,
            Stream::Tls(t) => match &t.conn {
                rustls::Connection::Server(c) => c.server_name(),
                rustls::Connection::Client(_) => None,
            },
        }
    }

    /// The socket when no TLS is in the way: bytes may be spliced.
    pub fn plain(&self) -> Option<&TcpStream> {
        match self {
            Stream::Plain(tcp) => Some(tcp),
            Stream::Tls(_) => None,
        }
    }

    /// Ready when a read may return something (data, EOF or an error). The poll form
    /// keeps the waker in the socket's own slot: a session's task holds no waiter node.
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Stream::Plain(tcp) => tcp.poll_read_ready(cx),
            Stream::Tls(tls) if tls.buffered > 0 || tls.peer_closed => Poll::Ready(Ok(())),
            Stream::Tls(tls) => tls.tcp.poll_read_ready(cx),
        }
    }

    pub fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.tcp().poll_write_ready(cx)
    }

    /// Reads what is there without blocking; `WouldBlock` when nothing is.
    pub fn try_read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(tcp) => read_plain(tcp, buf),
            Stream::Tls(tls) => tls.try_read(buf),
        }
    }

    /// Writes what the socket (or rustls's buffer) takes without blocking.
    pub fn try_write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(tcp) => tcp.try_write(buf),
            Stream::Tls(tls) => tls.try_write(buf),
        }
    }

    /// Encrypted bytes (or a FIN) still wait for the socket.
    pub fn wants_flush(&self) -> bool {
        match self {
            Stream::Plain(_) => false,
            Stream::Tls(tls) => tls.conn.wants_write() || (tls.closing && !tls.fin_sent),
        }
    }

    /// Pushes what waits to the socket; `WouldBlock` if some still waits.
    pub fn try_flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(_) => Ok(()),
            Stream::Tls(tls) => tls.try_flush(),
        }
    }

    /// Half-close: the peer reads EOF once what was written is delivered (TLS: after a
    /// `close_notify`).
    pub fn shutdown_write(&mut self) {
        match self {
            Stream::Plain(tcp) => {
                let _ = socket2::SockRef::from(&*tcp).shutdown(Shutdown::Write);
            }
            Stream::Tls(tls) => {
                if !tls.closing {
                    tls.conn.send_close_notify();
                    tls.closing = true;
                }
                let _ = tls.try_flush();
            }
        }
    }
}

/// One read; a short read shows the socket was drained, so tokio's readiness is cleared
/// at once (as tokio's own `poll_read` does) instead of costing another `recvfrom` that
/// returns `EAGAIN`. The clear is tied to the readiness seen before the read, so data
/// arriving meanwhile is not missed, and a FIN's readiness is never cleared.
fn read_plain(tcp: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    let mut short = None;
    let result = tcp.try_io(Interest::READABLE, || {
        let n = (&*socket2::SockRef::from(tcp)).read(buf)?;
        if n > 0 && n < buf.len() {
            short = Some(n);
            return Err(ErrorKind::WouldBlock.into());
        }
        Ok(n)
    });
    match (result, short) {
        (_, Some(n)) => Ok(n),
        (r, None) => r,
    }
}

impl Tls {
    /// Completes the handshake on a connected socket (accepting or connecting).
    pub async fn handshake(
        tcp: TcpStream,
        conn: impl Into<rustls::Connection>,
    ) -> io::Result<Stream> {
        let mut tls = Tls {
            tcp,
            conn: conn.into(),
            buffered: 0,
            peer_closed: false,
            closing: false,
            fin_sent: false,
        };
        while tls.conn.is_handshaking() {
            match tls.try_flush() {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    tls.tcp.writable().await?;
                    continue;
                }
                Err(e) => return Err(e),
            }
            if !tls.conn.is_handshaking() {
                break;
            }
            if tls.conn.wants_read() {
                match tls.read_records() {
                    Ok(0) => {
                        return Err(io::Error::new(
                            ErrorKind::UnexpectedEof,
                            "the peer closed during the TLS handshake",
                        ))
                    }
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => tls.tcp.readable().await?,
                    Err(e) => return Err(e),
                }
            }
        }
        // Session tickets and the like, queued as the handshake ended.
        let _ = tls.try_flush();
        Ok(Stream::Tls(Box::new(tls)))
    }

    /// Accepts a TLS client on `tcp`.
    pub async fn accept(tcp: TcpStream, config: &Arc<rustls::ServerConfig>) -> io::Result<Stream> {
        let conn = rustls::ServerConnection::new(Arc::clone(config)).map_err(io::Error::other)?;
        Tls::handshake(tcp, conn).await
    }

    /// Starts TLS towards a server on `tcp`.
    pub async fn connect(
        tcp: TcpStream,
        config: &Arc<rustls::ClientConfig>,
        name: rustls_pki_types::ServerName<'static>,
    ) -> io::Result<Stream> {
        let conn =
            rustls::ClientConnection::new(Arc::clone(config), name).map_err(io::Error::other)?;
        Tls::handshake(tcp, conn).await
    }

    /// Reads records from the socket and decrypts them; 0 at the socket's EOF.
    fn read_records(&mut self) -> io::Result<usize> {
        let n = self.conn.read_tls(&mut Io(&self.tcp))?;
        if n == 0 {
            self.peer_closed = true;
        }
        match self.conn.process_new_packets() {
            Ok(state) => {
                self.buffered = state.plaintext_bytes_to_read();
                self.peer_closed |= state.peer_has_closed();
            }
            Err(e) => {
                // rustls queued an alert telling the peer why; send it if the socket takes it.
                let _ = self.try_flush();
                return Err(io::Error::new(ErrorKind::InvalidData, e));
            }
        }
        if self.conn.wants_write() {
            match self.try_flush() {
                Err(e) if e.kind() != ErrorKind::WouldBlock => return Err(e),
                _ => {}
            }
        }
        Ok(n)
    }

    fn try_read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.buffered > 0 {
                match self.conn.reader().read(buf) {
                    Ok(n) => {
                        self.buffered = self.buffered.saturating_sub(n);
                        return Ok(n);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => self.buffered = 0,
                    Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(0),
                    Err(e) => return Err(e),
                }
            }
            if self.peer_closed {
                // A FIN without `close_notify` ends the stream too: AMQP frames carry their
                // own boundaries, so a truncation cannot go unnoticed.
                return Ok(0);
            }
            self.read_records()?;
        }
    }

    fn try_write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Back-pressure: while records wait for the socket, take nothing more.
        if self.conn.wants_write() {
            self.try_flush()?;
        }
        let n = self.conn.writer().write(buf)?;
        match self.try_flush() {
            Err(e) if e.kind() != ErrorKind::WouldBlock => Err(e),
            _ => Ok(n),
        }
    }

    fn try_flush(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            if self.conn.write_tls(&mut Io(&self.tcp))? == 0 {
                return Err(ErrorKind::WriteZero.into());
            }
        }
        if self.closing && !self.fin_sent {
            let _ = socket2::SockRef::from(&self.tcp).shutdown(Shutdown::Write);
            self.fin_sent = true;
        }
        Ok(())
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Stream::Plain(tcp) = this {
            return Pin::new(tcp).poll_read(cx, buf);
        }
        loop {
            match this.try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    ready!(this.tcp().poll_read_ready(cx))?
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Stream::Plain(tcp) = this {
            return Pin::new(tcp).poll_write(cx, buf);
        }
        loop {
            match this.try_write(buf) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    ready!(this.tcp().poll_write_ready(cx))?
                }
                r => return Poll::Ready(r),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            match this.try_flush() {
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    ready!(this.tcp().poll_write_ready(cx))?
                }
                r => return Poll::Ready(r),
            }
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.shutdown_write();
        Pin::new(this).poll_flush(cx)
    }
}
