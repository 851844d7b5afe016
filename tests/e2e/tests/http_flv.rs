//! The HTTP frontend with real clients: ffprobe and ffmpeg read a live RTMP publication as
//! HTTP-FLV, our own reader checks every byte of the chunked FLV body (from the first, for
//! several viewers and a late joiner), and bad requests get their status while the stream
//! plays.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    time::{Duration, Instant},
};

use fstream_e2e::{background, ffmpeg_publish, Host, Root};
use fstream_media::flv::{classify_video, FlvDemuxer, TagType};

const WAIT: Duration = Duration::from_secs(20);

fn root(tag: &str) -> Root {
    fstream_e2e::require(&["ffmpeg", "ffprobe"]);
    let r = Root::new(tag, &["auth-ini", "rtmp", "rtmp-app", "http"]);
    r.user("fier", "123");
    r.write("mods/rtmp.toml", "grace_ms = 300\n");
    r.write(
        "mods/http.toml",
        "idle_timeout_ms = 1000\nviewer_queue_bytes = 200000\n",
    );
    r
}

/// Sends `request` and reads the answer's head (and, for a non-stream answer, its body).
fn ask(addr: SocketAddr, request: &str) -> (String, Vec<u8>, TcpStream) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut b = [0u8; 4096];
    let head_end = loop {
        if let Some(p) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        let n = s.read(&mut b).unwrap_or(0);
        assert!(
            n > 0,
            "closed before an answer: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&b[..n]);
    };
    let head = String::from_utf8_lossy(&got[..head_end]).into_owned();
    (head, got[head_end..].to_vec(), s)
}

fn status(head: &str) -> &str {
    head.lines().next().unwrap_or("")
}

/// Reads a chunked FLV body for `for_how_long`, checking as it goes: the FLV header first, then
/// only whole tags; every video frame after a keyframe; timestamps never going back. Returns
/// the video frames seen and whether the body's last chunk came.
fn read_flv_body(mut s: TcpStream, mut pending: Vec<u8>, for_how_long: Duration) -> (usize, bool) {
    let deadline = Instant::now() + for_how_long;
    let mut body = Vec::new();
    let mut demux = FlvDemuxer::new(16 << 20);
    let (mut frames, mut keyed, mut last_ts) = (0usize, false, 0u32);
    let mut b = vec![0u8; 65536];
    loop {
        // Whole chunks out of `pending`.
        while let Some(eol) = pending.windows(2).position(|w| w == b"\r\n") {
            let len = usize::from_str_radix(std::str::from_utf8(&pending[..eol]).unwrap(), 16)
                .expect("a chunk size");
            if len == 0 {
                return (frames, true);
            }
            if pending.len() < eol + 2 + len + 2 {
                break;
            }
            assert_eq!(
                &pending[eol + 2 + len..eol + 4 + len],
                b"\r\n",
                "a chunk's end"
            );
            body.extend_from_slice(&pending[eol + 2..eol + 2 + len]);
            pending.drain(..eol + 4 + len);
        }
        demux.push(&body);
        body.clear();
        while let Some(t) = demux.next_tag().expect("the body is FLV") {
            let t = t.tag;
            if t.tag_type == TagType::Video {
                let info = classify_video(&t.data).expect("a known video tag");
                if info.is_sequence_header() {
                    continue;
                }
                keyed |= info.is_keyframe();
                assert!(keyed, "a frame before any keyframe");
                assert!(
                    t.timestamp >= last_ts,
                    "video went back: {} after {last_ts}",
                    t.timestamp
                );
                last_ts = t.timestamp;
                frames += 1;
            }
        }
        if Instant::now() >= deadline {
            return (frames, false);
        }
        match s.read(&mut b) {
            Ok(0) => return (frames, false),
            Ok(n) => pending.extend_from_slice(&b[..n]),
            Err(e) => panic!("read: {e}"),
        }
    }
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n")
}

#[test]
fn ffmpeg_and_our_reader_play_a_live_stream_as_http_flv_and_bad_requests_get_their_status() {
    let r = root("http-flv");
    let host = Host::start(&r, &["rtmp", "http"], &[]);
    let (rtmp, http) = (host.addr("rtmp"), host.addr("http"));

    // No stream yet: 404, and the connection stays for the next request.
    let (head, body, _) = ask(http, &get("/fier/cam.flv"));
    assert_eq!(status(&head), "HTTP/1.1 404 Not Found", "{head}");
    assert!(head.contains("Connection: keep-alive"), "{head}");
    assert!(String::from_utf8_lossy(&body).contains("no such stream"));

    let publisher = background(
        ffmpeg_publish(&format!("rtmp://{rtmp}/fier/cam?user_password=123"), 12),
        Duration::from_secs(60),
    );
    assert!(
        host.wait_log("publishing stream=fier/cam", WAIT),
        "{}",
        host.log()
    );
    std::thread::sleep(Duration::from_millis(500));
    let url = format!("http://{http}/fier/cam.flv");

    // ffprobe sees H.264 and AAC; ffmpeg decodes 3 s of frames.
    let codecs = fstream_e2e::ffprobe_codecs(&url);
    assert!(
        codecs.contains("h264") && codecs.contains("aac"),
        "{codecs}"
    );
    let (frames, err) = fstream_e2e::ffmpeg_video_frames(&url, &[], 3.0);
    assert!(
        frames >= 60,
        "ffmpeg decoded {frames} frames of 3 s at 25 fps: {err}"
    );

    // A viewer that never reads (its queue is bounded; it skips to keyframes), then two of
    // our readers at once, each checked from its first byte.
    let (head, _, stuck) = ask(http, &get("/fier/cam.flv"));
    assert_eq!(status(&head), "HTTP/1.1 200 OK");
    stuck.set_nonblocking(true).unwrap();
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (head, rest, s) = ask(http, &get("/fier/cam.flv"));
            assert_eq!(status(&head), "HTTP/1.1 200 OK", "{head}");
            assert!(head.contains("Transfer-Encoding: chunked"));
            assert!(head.contains("Content-Type: video/x-flv"));
            assert!(head.contains("Access-Control-Allow-Origin: *"));
            let first = rest.clone();
            std::thread::spawn(move || {
                // The body starts with the FLV header in its own chunk.
                let mut probe = first.clone();
                let mut b = [0u8; 64];
                let mut s = s;
                while probe.len() < 20 {
                    let n = s.read(&mut b).unwrap();
                    assert!(n > 0);
                    probe.extend_from_slice(&b[..n]);
                }
                assert!(probe.starts_with(b"d\r\nFLV\x01"), "{:?}", &probe[..20]);
                read_flv_body(s, probe, Duration::from_secs(3))
            })
        })
        .collect();

    // Meanwhile, bad requests on other connections.
    let (head, _, _) = ask(http, &get("/fier/%2e%2e/x.flv"));
    assert_eq!(status(&head), "HTTP/1.1 400 Bad Request");
    let (head, _, _) = ask(http, &get("/../../etc/passwd"));
    assert_eq!(status(&head), "HTTP/1.1 400 Bad Request");
    let (head, _, _) = ask(
        http,
        "POST /fier/cam.flv HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(status(&head), "HTTP/1.1 405 Method Not Allowed");
    assert!(head.contains("Allow: GET, HEAD, OPTIONS"));
    let flood: String = (0..200).map(|i| format!("X-{i}: y\r\n")).collect();
    let (head, _, _) = ask(
        http,
        &format!("GET /fier/cam.flv HTTP/1.1\r\nHost: t\r\n{flood}\r\n"),
    );
    assert_eq!(
        status(&head),
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
    let (head, body, _) = ask(http, "HEAD /fier/cam.flv HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(status(&head), "HTTP/1.1 200 OK");
    assert!(body.is_empty(), "HEAD got a body");
    let (head, _, _) = ask(http, "GARBAGE\r\n\r\n");
    assert_eq!(status(&head), "HTTP/1.1 400 Bad Request");
    // A slow client: half a request and nothing more gets 408 and is closed after the idle
    // timeout (1 s here).
    let mut slow = TcpStream::connect(http).unwrap();
    slow.set_read_timeout(Some(WAIT)).unwrap();
    slow.write_all(b"GET /fier/cam.flv HT").unwrap();
    let mut answer = String::new();
    slow.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 408 Request Timeout"),
        "{answer}"
    );
    // And a client that connects and says nothing is closed without a word.
    let mut mute = TcpStream::connect(http).unwrap();
    mute.set_read_timeout(Some(WAIT)).unwrap();
    let mut nothing = Vec::new();
    mute.read_to_end(&mut nothing).unwrap();
    assert!(nothing.is_empty());

    for r in readers {
        let (frames, _) = r.join().unwrap();
        assert!(frames >= 50, "a reader got {frames} frames in 3 s");
    }

    // A late joiner starts on a keyframe (the GOP cache), and its body ends with the last
    // chunk once the publisher has gone and the grace period is over.
    let (head, rest, s) = ask(http, &get("/fier/cam.flv"));
    assert_eq!(status(&head), "HTTP/1.1 200 OK");
    let (frames, ended) = read_flv_body(s, rest, Duration::from_secs(30));
    assert!(ended, "the body did not end with the last chunk");
    assert!(frames >= 25, "the late joiner got {frames} frames");
    publisher.join().unwrap();
    drop(stuck);
}
