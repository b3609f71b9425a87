//! A hostile PostgreSQL: a proxy in front of a real server that rewrites what the server answers, as an
//! attacker who runs the "source database" can. It parses the backend's messages (type byte, length) and
//! replaces, in every DataRow, each field equal to one of the given values (connections without TLS only).

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub struct PgProxy {
    pub port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for PgProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PgProxy {
    /// Listens on 127.0.0.1 and forwards to `upstream_port`, rewriting DataRow fields per `replace`.
    pub async fn start(upstream_port: u16, replace: Vec<(Vec<u8>, Vec<u8>)>) -> PgProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let replace = Arc::new(replace);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let replace = replace.clone();
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(("127.0.0.1", upstream_port)).await {
                        relay(client, server, &replace).await;
                    }
                });
            }
        });
        PgProxy { port, task }
    }
}

async fn relay(client: TcpStream, server: TcpStream, replace: &[(Vec<u8>, Vec<u8>)]) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = async {
        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
    };
    let downstream = async {
        loop {
            let mut head = [0u8; 5];
            if server_read.read_exact(&mut head).await.is_err() {
                return;
            }
            let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
            let mut body = vec![0u8; len.saturating_sub(4)];
            if server_read.read_exact(&mut body).await.is_err() {
                return;
            }
            if head[0] == b'D' {
                body = rewrite_row(&body, replace);
            }
            let mut out = vec![head[0]];
            out.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
            out.extend_from_slice(&body);
            if client_write.write_all(&out).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        _ = upstream => {}
        _ = downstream => {}
    }
}

fn rewrite_row(body: &[u8], replace: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let count = u16::from_be_bytes([body[0], body[1]]);
    let mut out = body[..2].to_vec();
    let mut at = 2;
    for _ in 0..count {
        let len = i32::from_be_bytes([body[at], body[at + 1], body[at + 2], body[at + 3]]);
        at += 4;
        if len < 0 {
            out.extend_from_slice(&len.to_be_bytes());
            continue;
        }
        let value = &body[at..at + len as usize];
        at += len as usize;
        let value = replace.iter().find(|(from, _)| from == value).map_or(value, |(_, to)| to.as_slice());
        out.extend_from_slice(&(value.len() as i32).to_be_bytes());
        out.extend_from_slice(value);
    }
    out
}
