//! A small client of llama.cpp's RPC protocol (`ggml/src/ggml-rpc/ggml-rpc.cpp`, protocol
//! 7.x): it asks each server, before the engine connects, for its protocol version, its
//! devices and their memory, and measures the round trip and the transfer rate. llama.cpp's
//! own client aborts the process on any fault; this one has timeouts, checks every answer's
//! size before reading it, and names the server in one error line.

use super::endpoint::Endpoint;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// The protocol the bundled engine speaks (`RPC_PROTO_MAJOR_VERSION` / `_MINOR_`, ggml-rpc.h).
pub const PROTO_MAJOR: u8 = 7;
pub const PROTO_MINOR: u8 = 0;
/// Devices one server may report before its answer is taken as absurd.
pub const MAX_DEVICES: u32 = 64;
/// Memory one device may report before its answer is taken as absurd (1 PiB).
pub const MAX_DEVICE_BYTES: u64 = 1 << 50;

const CMD_ALLOC_BUFFER: u8 = 0;
const CMD_BUFFER_GET_BASE: u8 = 3;
const CMD_FREE_BUFFER: u8 = 4;
const CMD_SET_TENSOR: u8 = 6;
const CMD_GET_DEVICE_MEMORY: u8 = 11;
const CMD_HELLO: u8 = 14;
const CMD_DEVICE_COUNT: u8 = 15;
/// `RPC_CONN_CAPS_SIZE`: transport capabilities (all zero: plain TCP).
const CONN_CAPS: usize = 24;
/// `sizeof(rpc_tensor)` (packed).
const RPC_TENSOR: usize = 296;

/// One remote device as its server reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct RemoteDevice {
    /// The device's index on its server.
    pub index: u32,
    pub free_bytes: u64,
    pub total_bytes: u64,
}

/// What one server answered, and how fast it answered.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerInfo {
    pub endpoint: Endpoint,
    pub version: (u8, u8, u8),
    pub devices: Vec<RemoteDevice>,
    /// Median round trip of a small request (seconds).
    pub round_trip_s: f64,
    /// Host-to-server transfer rate (bytes/s), from an 8 MiB write; `None` when not measured.
    pub bytes_per_s: Option<f64>,
}

#[derive(Debug, thiserror::Error)]
#[error("RPC server {endpoint}: {what}")]
pub struct RpcError {
    pub endpoint: String,
    pub what: String,
}

fn err(e: &Endpoint, what: impl Into<String>) -> RpcError {
    RpcError {
        endpoint: e.to_string(),
        what: what.into(),
    }
}

struct Conn<'a> {
    e: &'a Endpoint,
    s: TcpStream,
}

impl Conn<'_> {
    fn io(&self, what: &str, x: std::io::Error) -> RpcError {
        use std::io::ErrorKind as K;
        let why = match x.kind() {
            K::WouldBlock | K::TimedOut => {
                "no answer in time (down, busy with another client, or not an RPC server)".into()
            }
            K::UnexpectedEof | K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => {
                "closed the connection (another protocol version, or the server stopped)".into()
            }
            _ => x.to_string(),
        };
        err(self.e, format!("{what}: {why}"))
    }

    fn send(&mut self, cmd: u8, input: &[u8]) -> Result<(), RpcError> {
        let mut msg = Vec::with_capacity(9 + input.len());
        msg.push(cmd);
        msg.extend_from_slice(&(input.len() as u64).to_le_bytes());
        msg.extend_from_slice(input);
        self.s
            .write_all(&msg)
            .and_then(|_| self.s.flush())
            .map_err(|x| self.io("sending a request", x))
    }

    /// One answer of exactly `N` bytes; a different size is refused before it is read.
    fn recv<const N: usize>(&mut self, what: &str) -> Result<[u8; N], RpcError> {
        let mut size = [0u8; 8];
        self.s.read_exact(&mut size).map_err(|x| self.io(what, x))?;
        let size = u64::from_le_bytes(size);
        if size != N as u64 {
            return Err(err(
                self.e,
                format!("{what}: a {size}-byte answer where {N} bytes are expected (another protocol version?)"),
            ));
        }
        let mut out = [0u8; N];
        self.s.read_exact(&mut out).map_err(|x| self.io(what, x))?;
        Ok(out)
    }

    fn call<const N: usize>(
        &mut self,
        cmd: u8,
        input: &[u8],
        what: &str,
    ) -> Result<[u8; N], RpcError> {
        self.send(cmd, input)?;
        self.recv::<N>(what)
    }
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// Connects, checks the protocol, reads the devices and their memory, and measures the
/// link. Every step is bounded by `timeout`.
pub fn probe(e: &Endpoint, timeout: Duration) -> Result<ServerInfo, RpcError> {
    let (mut c, version, devices) = open(e, timeout)?;
    let mut trips = Vec::new();
    for _ in 0..9 {
        let t = Instant::now();
        c.call::<4>(CMD_DEVICE_COUNT, &[], "a round trip")?;
        trips.push(t.elapsed().as_secs_f64());
    }
    trips.sort_by(f64::total_cmp);
    let round_trip_s = trips[trips.len() / 2];
    let bytes_per_s = transfer_rate(&mut c, round_trip_s)?;
    Ok(ServerInfo {
        endpoint: e.clone(),
        version,
        devices,
        round_trip_s,
        bytes_per_s,
    })
}

/// Connects, checks the protocol and the devices' answers, without measuring the link
/// (just before llama.cpp's own client connects).
pub fn handshake(e: &Endpoint, timeout: Duration) -> Result<(), RpcError> {
    open(e, timeout).map(|_| ())
}

type Opened<'a> = (Conn<'a>, (u8, u8, u8), Vec<RemoteDevice>);

/// A connection past the handshake, with the server's version and devices.
fn open(e: &Endpoint, timeout: Duration) -> Result<Opened<'_>, RpcError> {
    let addrs: Vec<_> = (e.host.as_str(), e.port)
        .to_socket_addrs()
        .map_err(|x| err(e, format!("cannot resolve the host: {x}")))?
        .collect();
    let mut last = None;
    let mut stream = None;
    for a in &addrs {
        match TcpStream::connect_timeout(a, timeout) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(x) => last = Some(x),
        }
    }
    let s = stream.ok_or_else(|| {
        let why = last.map_or("no address".to_string(), |x| match x.kind() {
            std::io::ErrorKind::ConnectionRefused => {
                "connection refused (no server on that port)".into()
            }
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                format!("no answer within {} s", timeout.as_secs())
            }
            _ => x.to_string(),
        });
        err(e, format!("cannot connect: {why}"))
    })?;
    let _ = s.set_nodelay(true);
    let _ = s.set_read_timeout(Some(timeout));
    let _ = s.set_write_timeout(Some(timeout));
    let mut c = Conn { e, s };

    let hello: [u8; 4 + CONN_CAPS] = c.call(CMD_HELLO, &[0u8; CONN_CAPS], "the handshake")?;
    let version = (hello[0], hello[1], hello[2]);
    if version.0 != PROTO_MAJOR || version.1 > PROTO_MINOR {
        return Err(err(
            e,
            format!(
                "speaks RPC protocol {}.{}.{}; the bundled engine speaks {PROTO_MAJOR}.{PROTO_MINOR}.x (run the same llama.cpp version, or `layerfit rpc-server`, on that host)",
                version.0, version.1, version.2
            ),
        ));
    }
    let count = u32::from_le_bytes(c.call(CMD_DEVICE_COUNT, &[], "the device count")?);
    if count == 0 || count > MAX_DEVICES {
        return Err(err(e, format!("reports {count} devices (absurd)")));
    }
    let mut devices = Vec::new();
    for index in 0..count {
        let m: [u8; 16] = c.call(
            CMD_GET_DEVICE_MEMORY,
            &index.to_le_bytes(),
            "the device memory",
        )?;
        let (free, total) = (u64_at(&m, 0), u64_at(&m, 8));
        if total == 0 || free > total || total > MAX_DEVICE_BYTES {
            return Err(err(
                e,
                format!("device {index} reports {free} bytes free of {total} (absurd)"),
            ));
        }
        devices.push(RemoteDevice {
            index,
            free_bytes: free,
            total_bytes: total,
        });
    }
    Ok((c, version, devices))
}

/// Bytes per second of a write into a buffer on the server's first device (8 MiB, the size
/// of a prompt batch's activations), timed to the answer of the request after it and net of
/// one round trip. `None` when the server refuses the buffer.
fn transfer_rate(c: &mut Conn, round_trip_s: f64) -> Result<Option<f64>, RpcError> {
    const SIZE: u64 = 8 << 20;
    let mut req = Vec::new();
    req.extend_from_slice(&0u32.to_le_bytes());
    req.extend_from_slice(&SIZE.to_le_bytes());
    let rsp: [u8; 16] = c.call(CMD_ALLOC_BUFFER, &req, "a test buffer")?;
    let (remote, size) = (u64_at(&rsp, 0), u64_at(&rsp, 8));
    if remote == 0 || size < SIZE {
        return Ok(None);
    }
    let base =
        u64::from_le_bytes(c.call(CMD_BUFFER_GET_BASE, &remote.to_le_bytes(), "a buffer")?);
    // rpc_tensor: id, type (f32), buffer, ne[4], nb[4], op, op_params, flags, src[10],
    // view_src, view_offs, data, name[64], use_count.
    let mut t = Vec::with_capacity(RPC_TENSOR + 9 + SIZE as usize);
    t.extend_from_slice(&1u64.to_le_bytes());
    t.extend_from_slice(&0u32.to_le_bytes());
    t.extend_from_slice(&remote.to_le_bytes());
    for ne in [(SIZE / 4) as u32, 1, 1, 1] {
        t.extend_from_slice(&ne.to_le_bytes());
    }
    for nb in [4u32, SIZE as u32, SIZE as u32, SIZE as u32] {
        t.extend_from_slice(&nb.to_le_bytes());
    }
    t.resize(t.len() + 4 + 64 + 4 + 80 + 16, 0);
    t.extend_from_slice(&base.to_le_bytes());
    t.resize(RPC_TENSOR, 0);
    t.push(0); // no server-side cache
    t.extend_from_slice(&0u64.to_le_bytes());
    t.resize(t.len() + SIZE as usize, 0x5a);
    let start = Instant::now();
    c.send(CMD_SET_TENSOR, &t)?;
    c.call::<4>(CMD_DEVICE_COUNT, &[], "the transfer test")?;
    let secs = (start.elapsed().as_secs_f64() - round_trip_s).max(1e-6);
    c.send(CMD_FREE_BUFFER, &remote.to_le_bytes())?;
    c.call::<4>(CMD_DEVICE_COUNT, &[], "freeing the test buffer")?;
    Ok(Some(SIZE as f64 / secs))
}

/// Whether `e` still accepts a TCP connection within `timeout` (a server serving another
/// client still accepts one; a stopped one refuses).
pub fn reachable(e: &Endpoint, timeout: Duration) -> std::io::Result<()> {
    let addr = (e.host.as_str(), e.port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::other("no address"))?;
    TcpStream::connect_timeout(&addr, timeout).map(|_| ())
}
