//! RPC servers for the tests: real `layerfit rpc-server` processes on 127.0.0.1, and small
//! hostile servers that speak just enough of llama.cpp's RPC protocol to misbehave.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `layerfit rpc-server`, killed when dropped.
pub struct Server {
    pub child: Child,
    pub port: u16,
}

impl Server {
    /// Serves this machine's CPU, offering at most `memory` (e.g. `80M`) so that a plan must
    /// split the model: the offer is what the server reports as its device's free and total
    /// memory, which both layerfit and llama.cpp's default split plan with.
    pub fn start(memory: &str) -> Server {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_layerfit"))
            .args([
                "rpc-server",
                "--port",
                &port.to_string(),
                "--memory",
                memory,
            ])
            .args(["--threads", "1"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "rpc-server on {port} did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Server { child, port }
    }

    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How a fake server answers.
#[derive(Clone, Copy)]
pub enum Fake {
    /// HELLO answered with another protocol version.
    Version(u8, u8, u8),
    /// One device reporting more free memory than it has.
    AbsurdMemory,
    /// Accepts and never answers.
    Silent,
    /// Answers HELLO with a size field of 2^60 bytes.
    HugeAnswer,
}

/// A fake RPC server on a free port, answering every connection as `how`.
pub fn fake(how: Fake) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || serve_fake(s, how));
        }
    });
    port
}

fn read_request(s: &mut TcpStream) -> Option<u8> {
    let mut head = [0u8; 9];
    s.read_exact(&mut head).ok()?;
    let size = u64::from_le_bytes(head[1..9].try_into().unwrap());
    let mut body = vec![0u8; size.min(1 << 20) as usize];
    s.read_exact(&mut body).ok()?;
    Some(head[0])
}

fn answer(s: &mut TcpStream, body: &[u8]) {
    let _ = s.write_all(&(body.len() as u64).to_le_bytes());
    let _ = s.write_all(body);
}

fn serve_fake(mut s: TcpStream, how: Fake) {
    if let Fake::Silent = how {
        std::thread::sleep(Duration::from_secs(60));
        return;
    }
    while let Some(cmd) = read_request(&mut s) {
        match (cmd, how) {
            (14, Fake::Version(a, b, c)) => answer(&mut s, &[&[a, b, c, 0][..], &[0; 24]].concat()),
            (14, Fake::HugeAnswer) => {
                let _ = s.write_all(&(1u64 << 60).to_le_bytes());
            }
            (14, _) => answer(&mut s, &[&[7, 0, 0, 0][..], &[0; 24]].concat()),
            (15, _) => answer(&mut s, &1u32.to_le_bytes()),
            (11, _) => answer(
                &mut s,
                &[(2u64 << 30).to_le_bytes(), (1u64 << 30).to_le_bytes()].concat(),
            ),
            _ => return,
        }
    }
}
