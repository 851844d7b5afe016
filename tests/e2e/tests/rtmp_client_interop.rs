//! The sans-IO RTMP client of plugins/rtmp (`fstream_rtmp_client::RtmpClient`, the building block of
//! relays) against real servers: our own fstream-host and nginx-rtmp (Debian's
//! libnginx-mod-rtmp), both ways, with ffmpeg on the far side.
//!
//! The test owns the socket: [`Driver`] is a small blocking loop around a `TcpStream` that
//! feeds the session what it reads, writes what the session queues and ticks it with the
//! time since the connection opened, as the host will.

use std::{
    collections::VecDeque,
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use fstream_e2e::{
    background, decoded_frames, ffmpeg_play, ffmpeg_publish, generated_flv, require, Host, Root,
    TempDir,
};
use fstream_media::flv::{
    classify_audio, classify_video, FlvDemuxer, FlvMuxer, FlvTag, TagType, VideoPacket,
};
use fstream_rtmp_client::{ClientConfig, ClientError, ClientEvent, EndReason, RtmpClient, Target};

const WAIT: Duration = Duration::from_secs(20);
/// The generated test stream: 25 frames per second, a keyframe every second.
const FPS: usize = 25;

// ---------------------------------------------------------------------------------------------
// The driver

/// One client session over a socket the test owns.
struct Driver {
    sock: TcpStream,
    client: RtmpClient,
    t0: Instant,
    events: VecDeque<ClientEvent>,
    eof: bool,
}

impl Driver {
    fn publish(addr: SocketAddr, target: Target) -> Driver {
        Self::open(addr, |now| {
            RtmpClient::publish(
                target,
                ClientConfig::default(),
                now,
                &mut rand::thread_rng(),
            )
        })
    }

    fn play(addr: SocketAddr, target: Target) -> Driver {
        Self::open(addr, |now| {
            RtmpClient::play(
                target,
                ClientConfig::default(),
                now,
                &mut rand::thread_rng(),
            )
        })
    }

    fn open(addr: SocketAddr, make: impl FnOnce(u64) -> RtmpClient) -> Driver {
        let sock = TcpStream::connect(addr).expect("connect");
        sock.set_nodelay(true).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(5)))
            .unwrap();
        let mut d = Driver {
            sock,
            client: make(0),
            t0: Instant::now(),
            events: VecDeque::new(),
            eof: false,
        };
        d.flush();
        d
    }

    fn now(&self) -> u64 {
        self.t0.elapsed().as_millis() as u64
    }

    fn flush(&mut self) {
        let out = self.client.take_output();
        if !out.is_empty() && self.sock.write_all(&out).is_err() && !self.eof {
            self.eof = true;
            self.client.closed(self.now());
        }
    }

    /// One round: write, read what came within 5 ms, tick, write, collect events.
    fn step(&mut self) {
        self.flush();
        if !self.eof {
            let mut buf = [0u8; 65536];
            match self.sock.read(&mut buf) {
                Ok(0) => {
                    self.eof = true;
                    self.client.closed(self.now());
                }
                Ok(n) => self.client.bytes(&buf[..n], self.now()),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => {
                    self.eof = true;
                    self.client.closed(self.now());
                }
            }
        } else {
            thread::sleep(Duration::from_millis(5));
        }
        self.client.tick(self.now());
        self.flush();
        while let Some(e) = self.client.poll_event() {
            self.events.push_back(e);
        }
    }

    /// The next event, within `within`.
    fn next_event(&mut self, within: Duration) -> Option<ClientEvent> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(e) = self.events.pop_front() {
                return Some(e);
            }
            if Instant::now() >= deadline {
                return None;
            }
            self.step();
        }
    }

    /// Events until `want` (by its name): Connected first, then `want`; a failure on the way
    /// is returned as the error.
    fn until(&mut self, want: &ClientEvent) -> Result<Duration, ClientError> {
        let t = Instant::now();
        loop {
            match self.next_event(WAIT) {
                Some(ClientEvent::Failed(e)) => return Err(e),
                Some(e) if &e == want => return Ok(t.elapsed()),
                Some(ClientEvent::Connected) => {
                    eprintln!("  (connected after {} ms)", t.elapsed().as_millis())
                }
                Some(other) => panic!("{other:?} before {want:?}"),
                None => panic!("no {want:?} within {WAIT:?}"),
            }
        }
    }

    /// Sends `tags` paced by their timestamps (real time), serving the socket meanwhile.
    fn send_paced(&mut self, tags: &[FlvTag]) {
        let start = Instant::now();
        for t in tags {
            let due = start + Duration::from_millis(u64::from(t.timestamp));
            while Instant::now() < due {
                self.step();
            }
            self.client
                .send_media(t.tag_type, t.timestamp, t.data.clone())
                .expect("the output drains as fast as a paced stream fills it");
        }
        self.step();
    }

    /// Media tags until the play ends (the publisher left, the server stopped it or closed) or
    /// `within` passes.
    fn collect_media(&mut self, within: Duration) -> Vec<FlvTag> {
        let deadline = Instant::now() + within;
        let mut tags = Vec::new();
        while let Some(e) = self.next_event(deadline.saturating_duration_since(Instant::now())) {
            match e {
                ClientEvent::Media(t) => tags.push(t),
                ClientEvent::Unpublished
                | ClientEvent::Ended(_)
                | ClientEvent::Failed(ClientError::Closed { .. }) => break,
                ClientEvent::Republished => {}
                other => panic!("while playing: {other:?}"),
            }
        }
        tags
    }

    /// Unpublishes or stops, and writes what that queued.
    fn finish(&mut self, publish: bool) {
        if publish {
            self.client.unpublish();
        } else {
            self.client.stop();
        }
        self.flush();
        let ended = self.next_event(Duration::from_secs(1));
        assert!(
            matches!(
                ended,
                Some(ClientEvent::Ended(
                    EndReason::Unpublished | EndReason::Stopped
                ))
            ),
            "{ended:?}"
        );
    }
}

fn flv_tags(flv: &[u8]) -> Vec<FlvTag> {
    let mut d = FlvDemuxer::new(16 << 20);
    d.push(flv);
    std::iter::from_fn(|| d.next_tag().unwrap().map(|t| t.tag)).collect()
}

fn coded_video_frames(tags: &[FlvTag]) -> usize {
    tags.iter()
        .filter(|t| t.tag_type == TagType::Video)
        .filter(|t| classify_video(&t.data).is_some_and(|i| i.packet == VideoPacket::CodedFrame))
        .count()
}

/// What a player got is a stream a decoder takes: every audio and video tag classifies, the
/// first video tag is the H.264 sequence header, timestamps never go back per kind; the tags
/// as an FLV file decode with ffprobe. Returns the decoded video frames.
fn check_played(tags: &[FlvTag], dir: &Path) -> usize {
    let first_video = tags
        .iter()
        .find(|t| t.tag_type == TagType::Video)
        .expect("video");
    let info = classify_video(&first_video.data).expect("a video tag");
    assert_eq!(info.packet, VideoPacket::SequenceStart, "{info:?}");
    assert_eq!(first_video.data.first().map(|b| b & 0x0F), Some(7), "H.264");
    for kind in [TagType::Audio, TagType::Video] {
        let ts: Vec<u32> = tags
            .iter()
            .filter(|t| t.tag_type == kind)
            .map(|t| t.timestamp)
            .collect();
        assert!(
            ts.windows(2).all(|w| w[0] <= w[1]),
            "{kind:?} timestamps go back: {ts:?}"
        );
    }
    for t in tags {
        match t.tag_type {
            TagType::Video => assert!(classify_video(&t.data).is_some(), "{t:?}"),
            TagType::Audio => assert!(classify_audio(&t.data).is_some(), "{t:?}"),
            TagType::Script => assert!(!t.data.is_empty()),
        }
    }
    let mut mux = FlvMuxer::new(true, true);
    let mut file = Vec::new();
    mux.write_header(&mut file);
    for t in tags {
        mux.write_tag(&mut file, t).unwrap();
    }
    let path = dir.join("played.flv");
    std::fs::write(&path, file).unwrap();
    fstream_e2e::video_frames_in(&path)
}

/// ffmpeg playing `url` for at most `secs` of media, printing a line per decoded frame.
fn ffmpeg_play_for(url: &str, secs: u32) -> Command {
    let mut c = ffmpeg_play(url);
    c.args(["-t", &secs.to_string()]);
    c
}

// ---------------------------------------------------------------------------------------------
// fstream-host

/// A root with user `fier` (123), `auth-ini`, `rtmp` and `test-app`.
fn fstream_root(tag: &str) -> Root {
    let root = Root::new(tag, &["auth-ini", "rtmp", "test-app"]);
    root.user("fier", "123");
    root
}

fn fier(addr: SocketAddr, stream: &str) -> Target {
    Target::new("fier", format!("rtmp://{addr}/fier"), stream)
}

#[test]
fn publishes_to_fstream_host_and_ffmpeg_decodes_it() {
    require(&["ffmpeg"]);
    let root = fstream_root("client-pub");
    let host = Host::start(&root, &["rtmp"], &[]);
    let addr = host.addr("rtmp");
    let tags = flv_tags(&generated_flv(root.path(), 6));
    let sent = coded_video_frames(&tags);

    let mut d = Driver::publish(addr, fier(addr, "cam?user_password=123"));
    let took = d.until(&ClientEvent::Publishing).expect("publishing");
    eprintln!(
        "fstream-host: NetStream.Publish.Start {} ms after connecting",
        took.as_millis()
    );
    assert!(host.wait_log("publishing stream=fier/cam", WAIT));

    let player = background(
        ffmpeg_play(&format!("rtmp://{addr}/fier/cam")),
        Duration::from_secs(40),
    );
    // The hub answers the player once the first packet tells it this is a media stream.
    d.send_paced(&tags);
    assert!(
        host.log().contains("playing stream=fier/cam"),
        "{}",
        host.log()
    );
    d.finish(true);
    // The unpublish reached the server while the connection is still open.
    assert!(host.wait_log("publishing ended stream=fier/cam", Duration::from_secs(3)));
    assert!(!host.log().contains("nothing received for"), "no timeout");

    let (status, out, err) = player.join().unwrap();
    let frames = decoded_frames(&out);
    eprintln!("fstream-host: ffmpeg decoded {frames} of {sent} frames published");
    assert!(
        status.is_some(),
        "the player ends with the unpublish: {err}"
    );
    assert!(frames * 10 >= sent * 8, "{frames} of {sent}: {err}");
}

#[test]
fn plays_from_fstream_host_while_ffmpeg_publishes() {
    require(&["ffmpeg", "ffprobe"]);
    let root = fstream_root("client-play");
    let host = Host::start(&root, &["rtmp"], &[]);
    let addr = host.addr("rtmp");
    let secs = 5;
    let publisher = background(
        ffmpeg_publish(&format!("rtmp://{addr}/fier/cam?user_password=123"), secs),
        Duration::from_secs(40),
    );
    assert!(host.wait_log("publishing stream=fier/cam", WAIT));

    let mut d = Driver::play(addr, fier(addr, "cam"));
    let took = d.until(&ClientEvent::Playing).expect("playing");
    eprintln!(
        "fstream-host: NetStream.Play.Start {} ms after connecting",
        took.as_millis()
    );
    let tags = d.collect_media(Duration::from_secs(15));
    let frames = coded_video_frames(&tags);
    let decoded = check_played(&tags, root.path());
    eprintln!(
        "fstream-host: {} tags played, {frames} video frames, {decoded} decoded by ffprobe",
        tags.len()
    );
    assert!(frames * 10 >= secs as usize * FPS * 7, "{frames} frames");
    assert!(decoded * 10 >= frames * 9, "{decoded} of {frames} decoded");
    let (status, _, err) = publisher.join().unwrap();
    assert!(status.is_some_and(|s| s.success()), "publisher: {err}");
}

#[test]
fn refusals_from_fstream_host_are_typed() {
    let root = fstream_root("client-refused");
    root.write("mods/test-app.toml", "apps = [\"fier\"]\n");
    // A player gives up on a stream nobody publishes after 300 ms (the default waits forever,
    // as nginx-rtmp does).
    root.write("mods/rtmp.toml", "play_wait_ms = 300\n");
    let host = Host::start(&root, &["rtmp"], &[]);
    let addr = host.addr("rtmp");
    let mut d = Driver::publish(addr, fier(addr, "cam?user_password=wrong"));
    match d.until(&ClientEvent::Publishing) {
        Err(ClientError::PublishRejected { code, .. }) => {
            assert_eq!(code, "NetStream.Publish.BadName")
        }
        other => panic!("{other:?}; log:\n{}", host.log()),
    }
    let mut d = Driver::play(
        addr,
        Target::new("nosuchapp", format!("rtmp://{addr}/nosuchapp"), "x"),
    );
    match d.until(&ClientEvent::Playing) {
        Err(ClientError::ConnectRejected { code, description }) => {
            assert_eq!(code, "NetConnection.Connect.Rejected");
            eprintln!("fstream-host: connect rejected: {description}");
        }
        other => panic!("{other:?}"),
    }
    // fstream-host says Play.Start to a player that waits, then StreamNotFound when the wait
    // is over.
    let mut d = Driver::play(addr, fier(addr, "nosuch"));
    let t = Instant::now();
    d.until(&ClientEvent::Playing).expect("waiting");
    match d.next_event(Duration::from_secs(5)) {
        Some(ClientEvent::Failed(ClientError::StreamNotFound { description })) => eprintln!(
            "fstream-host: StreamNotFound ({description}) {} ms after connecting",
            t.elapsed().as_millis()
        ),
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// nginx-rtmp

/// Where Debian's libnginx-mod-rtmp puts the module.
const NGINX_RTMP_MODULE: &str = "/usr/lib/nginx/modules/ngx_rtmp_module.so";

/// nginx with the RTMP module on a free loopback port, its files in a temporary directory.
/// Application `live`: live streams, and `idle_streams off` so that a player of a stream
/// nobody publishes gets `NetStream.Play.StreamNotFound` at once (by default nginx-rtmp keeps
/// such a player waiting in silence).
struct Nginx {
    child: Child,
    addr: SocketAddr,
    dir: TempDir,
}

impl Nginx {
    fn start(tag: &str) -> Nginx {
        require(&["nginx", "ffmpeg", "ffprobe"]);
        assert!(
            Path::new(NGINX_RTMP_MODULE).exists(),
            "{NGINX_RTMP_MODULE} missing: run scripts/test once (it installs libnginx-mod-rtmp), or apt-get install -y libnginx-mod-rtmp"
        );
        let dir = TempDir::new(tag);
        // A port free now; nginx binds it a moment later (the test retries on a clash).
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let d = dir.path().display();
        let conf = format!(
            "load_module {NGINX_RTMP_MODULE};\n\
             daemon off;\nmaster_process off;\nworker_processes 1;\n\
             pid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
             events {{ worker_connections 128; }}\n\
             rtmp {{\n  server {{\n    listen {addr};\n    chunk_size 4096;\n\
             \x20   application live {{ live on; idle_streams off; }}\n  }}\n}}\n"
        );
        let conf_path: PathBuf = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new("nginx")
            .arg("-c")
            .arg(&conf_path)
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx");
        let mut n = Nginx { child, addr, dir };
        let deadline = Instant::now() + WAIT;
        while TcpStream::connect(addr).is_err() {
            if let Ok(Some(st)) = n.child.try_wait() {
                panic!("nginx exited ({st}): {}", n.error_log());
            }
            assert!(
                Instant::now() < deadline,
                "nginx does not listen: {}",
                n.error_log()
            );
            thread::sleep(Duration::from_millis(20));
        }
        n
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    fn target(&self, stream: &str) -> Target {
        Target::new("live", format!("rtmp://{}/live", self.addr), stream)
    }

    fn url(&self, stream: &str) -> String {
        format!("rtmp://{}/live/{stream}", self.addr)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn publishes_to_nginx_rtmp_and_ffmpeg_decodes_it() {
    let nginx = Nginx::start("client-nginx-pub");
    let tags = flv_tags(&generated_flv(nginx.dir.path(), 6));
    let sent = coded_video_frames(&tags);

    let mut d = Driver::publish(nginx.addr, nginx.target("cam"));
    let took = d.until(&ClientEvent::Publishing).expect("publishing");
    eprintln!(
        "nginx-rtmp: NetStream.Publish.Start {} ms after connecting",
        took.as_millis()
    );

    // nginx-rtmp refuses a second publisher of the same name.
    let mut second = Driver::publish(nginx.addr, nginx.target("cam"));
    match second.until(&ClientEvent::Publishing) {
        Err(ClientError::PublishRejected { code, description }) => {
            assert_eq!(code, "NetStream.Publish.BadName");
            eprintln!("nginx-rtmp: second publisher: {code}: {description}");
        }
        other => panic!("{other:?}"),
    }

    let player = background(
        ffmpeg_play_for(&nginx.url("cam"), 10),
        Duration::from_secs(40),
    );
    // nginx-rtmp has no GOP cache: the player starts at the next keyframe, a second at most.
    thread::sleep(Duration::from_millis(300));
    d.send_paced(&tags);
    d.finish(true);
    let (status, out, err) = player.join().unwrap();
    let frames = decoded_frames(&out);
    eprintln!("nginx-rtmp: ffmpeg decoded {frames} of {sent} frames published");
    assert!(
        status.is_some(),
        "the player ends with the unpublish: {err}"
    );
    assert!(
        frames * 10 >= sent * 6,
        "{frames} of {sent}: {err}; nginx: {}",
        nginx.error_log()
    );
    assert!(
        !nginx.error_log().contains("drop"),
        "nginx dropped something: {}",
        nginx.error_log()
    );
}

#[test]
fn plays_from_nginx_rtmp_while_ffmpeg_publishes_and_a_missing_stream_is_not_found() {
    let nginx = Nginx::start("client-nginx-play");

    // Nobody publishes `nosuch`: StreamNotFound, promptly.
    let mut d = Driver::play(nginx.addr, nginx.target("nosuch"));
    let t = Instant::now();
    match d.until(&ClientEvent::Playing) {
        Err(ClientError::StreamNotFound { description }) => {
            eprintln!(
                "nginx-rtmp: StreamNotFound ({description}) {} ms after connecting",
                t.elapsed().as_millis()
            );
            assert!(t.elapsed() < Duration::from_secs(2));
        }
        other => panic!("{other:?}; nginx: {}", nginx.error_log()),
    }

    let secs = 5;
    let publisher = background(
        ffmpeg_publish(&nginx.url("cam"), secs),
        Duration::from_secs(40),
    );
    // Play as a relay would: retry while the stream is not there yet.
    let deadline = Instant::now() + WAIT;
    let (mut d, took) = loop {
        let mut d = Driver::play(nginx.addr, nginx.target("cam"));
        match d.until(&ClientEvent::Playing) {
            Ok(took) => break (d, took),
            Err(ClientError::StreamNotFound { .. }) if Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(100))
            }
            Err(e) => panic!("{e}; nginx: {}", nginx.error_log()),
        }
    };
    eprintln!(
        "nginx-rtmp: NetStream.Play.Start {} ms after connecting",
        took.as_millis()
    );
    let tags = d.collect_media(Duration::from_secs(15));
    let frames = coded_video_frames(&tags);
    let decoded = check_played(&tags, nginx.dir.path());
    eprintln!(
        "nginx-rtmp: {} tags played, {frames} video frames, {decoded} decoded by ffprobe",
        tags.len()
    );
    assert!(frames * 10 >= secs as usize * FPS * 6, "{frames} frames");
    assert!(decoded * 10 >= frames * 8, "{decoded} of {frames} decoded");
    let (status, _, err) = publisher.join().unwrap();
    assert!(status.is_some_and(|s| s.success()), "publisher: {err}");
}
