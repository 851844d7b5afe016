//! fstream-host as an origin behind nginx's proxy_cache (docs/http-cache.md): 200 HLS clients
//! read a live stream through the cache, checking every playlist and segment they get, while
//! the origin serves each segment about once (counted from its log).

use std::{
    collections::HashMap,
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use fstream_e2e::{background, ffmpeg_publish, Host, Root, TempDir};

const CLIENTS: usize = 200;

struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_nginx(dir: &std::path::Path, port: u16, origin: SocketAddr) -> Nginx {
    let d = dir.display();
    for sub in ["cache", "tmp"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let conf = format!(
        "worker_processes 1;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/tmp/body;\n\
           proxy_temp_path {d}/tmp/proxy;\n  fastcgi_temp_path {d}/tmp/fcgi;\n\
           uwsgi_temp_path {d}/tmp/uwsgi;\n  scgi_temp_path {d}/tmp/scgi;\n\
           proxy_cache_path {d}/cache levels=1:2 keys_zone=hls:10m max_size=1g inactive=10m use_temp_path=off;\n\
           server {{\n    listen 127.0.0.1:{port};\n    location / {{\n\
             proxy_pass http://{origin};\n      proxy_http_version 1.1;\n\
             proxy_set_header Connection \"\";\n      proxy_cache hls;\n\
             proxy_cache_lock on;\n      proxy_cache_lock_timeout 5s;\n\
             proxy_cache_use_stale updating;\n      proxy_cache_background_update on;\n\
             proxy_cache_valid 200 1s;\n      add_header X-Cache-Status $upstream_cache_status;\n\
           }}\n  }}\n}}\n"
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let child = Command::new("nginx")
        .arg("-c")
        .arg(&path)
        .arg("-p")
        .arg(dir)
        .arg("-e")
        .arg(dir.join("error.log"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nginx did not start: {}",
            std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Nginx(child)
}

/// GET through a fresh connection: (status, body).
fn get(port: u16, path: &str) -> Option<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: cache\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut all = Vec::new();
    s.read_to_end(&mut all).ok()?;
    let end = all.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&all[..end]).into_owned();
    let code = head.get(9..12)?.parse().ok()?;
    let mut body = all[end..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let (b, _) = dechunk(&body)?;
        body = b;
    }
    Some((code, body))
}

fn dechunk(mut b: &[u8]) -> Option<(Vec<u8>, bool)> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n")?;
        let len = usize::from_str_radix(std::str::from_utf8(&b[..eol]).ok()?.trim(), 16).ok()?;
        if len == 0 {
            return Some((out, true));
        }
        out.extend_from_slice(b.get(eol + 2..eol + 2 + len)?);
        b = b.get(eol + 4 + len..)?;
    }
}

fn segment_uris(playlist: &str) -> Vec<String> {
    assert!(playlist.starts_with("#EXTM3U\n"), "{playlist}");
    playlist
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(str::to_owned)
        .collect()
}

fn check_segment(data: &[u8]) {
    assert!(
        !data.is_empty() && data.len().is_multiple_of(188),
        "{} bytes",
        data.len()
    );
    assert!(data.chunks(188).all(|p| p[0] == 0x47));
}

#[test]
fn two_hundred_hls_clients_through_nginx_cost_the_origin_each_segment_about_once() {
    fstream_e2e::require(&["ffmpeg", "nginx"]);
    let r = Root::new("http-cache", &["auth-ini", "rtmp", "rtmp-app", "http"]);
    r.user("fier", "123");
    r.write("mods/http.toml", "hls_segment_ms = 1000\n");
    let host = Host::start(&r, &["rtmp", "http"], &[]);
    let (rtmp, http) = (host.addr("rtmp"), host.addr("http"));
    let dir = TempDir::new("nginx-cache");
    let port = free_port();
    let _nginx = start_nginx(dir.path(), port, http);
    let publisher = background(
        ffmpeg_publish(&format!("rtmp://{rtmp}/fier/cam?user_password=123"), 16),
        Duration::from_secs(60),
    );
    // Wait (through the cache) for a playlist with two segments.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some((200, b)) = get(port, "/fier/cam/index.m3u8") {
            if segment_uris(&String::from_utf8_lossy(&b)).len() >= 2 {
                break;
            }
        }
        assert!(Instant::now() < deadline, "no playlist through the cache");
        std::thread::sleep(Duration::from_millis(200));
    }

    let fetched = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let fetched = fetched.clone();
            std::thread::spawn(move || {
                // Spread the clients over the first second, as viewers arrive.
                std::thread::sleep(Duration::from_millis((i * 5) as u64));
                let until = Instant::now() + Duration::from_secs(6);
                let mut seen = std::collections::HashSet::new();
                while Instant::now() < until {
                    let (code, body) = get(port, "/fier/cam/index.m3u8").expect("playlist");
                    assert_eq!(code, 200);
                    for uri in segment_uris(&String::from_utf8_lossy(&body)) {
                        if seen.insert(uri.clone()) {
                            let (code, data) =
                                get(port, &format!("/fier/cam/{uri}")).expect("segment");
                            assert_eq!(code, 200, "{uri}");
                            check_segment(&data);
                            fetched.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    std::thread::sleep(Duration::from_millis(500));
                }
            })
        })
        .collect();
    for c in clients {
        c.join().expect("a client failed");
    }
    publisher.join().unwrap();

    let log = host.log();
    let mut per_segment: HashMap<String, usize> = HashMap::new();
    for l in log.lines().filter(|l| l.contains("hls: served a segment")) {
        if let Some(name) = l
            .split("segment=")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
        {
            *per_segment.entry(name.to_string()).or_default() += 1;
        }
    }
    let playlists = log.matches("hls: served the playlist").count();
    let fetched = fetched.load(Ordering::Relaxed);
    let most = per_segment.values().max().copied().unwrap_or(0);
    eprintln!(
        "clients fetched {fetched} segments through the cache; the origin served {} segments \
         ({} distinct, at most {most} times each) and {playlists} playlists",
        per_segment.values().sum::<usize>(),
        per_segment.len()
    );
    assert!(
        fetched >= CLIENTS * 3,
        "clients fetched only {fetched} segments"
    );
    assert!(
        most <= 2,
        "a segment was served by the origin {most} times: {per_segment:?}"
    );
    // About one playlist a second (plus the first misses), not one per client request.
    assert!(playlists < 40, "the origin served {playlists} playlists");
}
