//! Headless Chromium driven over the DevTools protocol: open a page, evaluate JavaScript in
//! it (read the DOM, click a button) as a user would, and wait for what the page shows.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use serde_json::{json, Value};
use tungstenite::{stream::MaybeTlsStream, Message, WebSocket};

use crate::TempDir;

/// A Chromium with one page; killed on drop.
pub struct Page {
    child: Child,
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    _profile: TempDir,
}

impl Page {
    /// Starts headless Chromium on `url` and attaches to its page.
    pub fn open(url: &str) -> Page {
        let profile = TempDir::new("chromium");
        let mut child = Command::new("chromium")
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--remote-debugging-port=0",
                "--window-size=1200,800",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn chromium");
        // "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/ID"
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stderr);
            let mut line = String::new();
            while r.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                if let Some(rest) = line.split("DevTools listening on ws://").nth(1) {
                    let _ = tx.send(rest.split('/').next().unwrap_or("").to_string());
                }
                line.clear();
            }
        });
        let devtools = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                panic!("chromium gave no DevTools address");
            }
        };
        let ws_url = page_socket(&devtools, url);
        let (ws, _) = tungstenite::connect(ws_url.as_str()).expect("attach to the page");
        Page {
            child,
            ws,
            next_id: 0,
            _profile: profile,
        }
    }

    /// Evaluates `expression` in the page (promises awaited) and gives its value.
    pub fn eval(&mut self, expression: &str) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let msg = json!({"id": id, "method": "Runtime.evaluate", "params": {
            "expression": expression, "returnByValue": true, "awaitPromise": true}});
        self.ws
            .send(Message::text(msg.to_string()))
            .expect("send to chromium");
        loop {
            let m = self.ws.read().expect("read from chromium");
            let Message::Text(t) = m else { continue };
            let v: Value = serde_json::from_str(t.as_str()).unwrap_or(Value::Null);
            if v["id"] == id {
                if let Some(e) = v["result"].get("exceptionDetails") {
                    panic!("{expression}: {e}");
                }
                return v["result"]["result"]["value"].clone();
            }
        }
    }

    /// Evaluates `expression` until it gives a truthy value, within `timeout`.
    pub fn wait_for(&mut self, expression: &str, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let v = self.eval(expression);
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::String(s) => !s.is_empty(),
                Value::Number(n) => n.as_f64() != Some(0.0),
                _ => true,
            };
            if truthy {
                return Some(v);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        None
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The WebSocket of the page showing `url`, from DevTools' `/json/list`.
fn page_socket(devtools: &str, url: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(ws) = list_pages(devtools).and_then(|pages| {
            pages.as_array()?.iter().find_map(|p| {
                let is_page = p["type"] == "page" && p["url"].as_str()?.starts_with(url);
                is_page.then(|| p["webSocketDebuggerUrl"].as_str().map(String::from))?
            })
        }) {
            return ws;
        }
        assert!(Instant::now() < deadline, "chromium shows no page {url}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn list_pages(devtools: &str) -> Option<Value> {
    let mut s = TcpStream::connect(devtools).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    // DevTools answers nothing to HTTP/1.0, and keeps an HTTP/1.1 connection open even when
    // asked to close it: read the head, then exactly Content-Length bytes.
    write!(
        s,
        "GET /json/list HTTP/1.1\r\nHost: {devtools}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))?
                .trim()
                .parse()
                .ok()?;
            if bytes.len() >= end + 4 + len {
                return serde_json::from_slice(&bytes[end + 4..end + 4 + len]).ok();
            }
        }
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        bytes.extend_from_slice(&chunk[..n]);
    }
}
