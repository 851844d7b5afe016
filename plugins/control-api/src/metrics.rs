//! `GET /metrics`: the stats document in Prometheus' text format (version 0.0.4). Counters end
//! in `_total`; per-stream series carry `app` and `name` labels (as many as live streams, which
//! the host bounds), per-protocol ones a `protocol` label.

use std::fmt::Write;

use serde_json::Value;

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One metric family being written.
struct Family<'a> {
    out: &'a mut String,
}

impl Family<'_> {
    fn head(&mut self, name: &str, kind: &str, help: &str) -> &mut Self {
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        self
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) -> &mut Self {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
        self
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

pub fn render(doc: &Value) -> String {
    let mut out = String::new();
    let mut f = Family { out: &mut out };
    let empty = Vec::new();
    let streams = doc["streams"].as_array().unwrap_or(&empty);
    let counters = &doc["counters"];

    f.head("fstream_up", "gauge", "1 while the server answers.")
        .sample("fstream_up", &[], 1.0);
    f.head(
        "fstream_uptime_seconds",
        "gauge",
        "Time since the server started.",
    )
    .sample(
        "fstream_uptime_seconds",
        &[],
        num(&doc["server"]["uptime_ms"]) / 1000.0,
    );

    let live = streams.iter().filter(|s| s["live"] == true).count();
    f.head("fstream_streams", "gauge", "Streams with a publisher.")
        .sample("fstream_streams", &[], live as f64);

    let mut by_protocol: std::collections::BTreeMap<String, f64> = Default::default();
    for s in streams {
        if let Some(m) = s["viewers_by_protocol"].as_object() {
            for (p, n) in m {
                *by_protocol.entry(p.clone()).or_default() += num(n);
            }
        }
    }
    f.head(
        "fstream_viewers",
        "gauge",
        "Viewers of all streams, by protocol.",
    );
    for (p, n) in &by_protocol {
        f.sample("fstream_viewers", &[("protocol", p)], *n);
    }

    f.head("fstream_stream_viewers", "gauge", "Viewers of one stream.");
    for s in streams {
        let l = stream_labels(s);
        f.sample("fstream_stream_viewers", &l.as_pairs(), num(&s["viewers"]));
    }
    f.head(
        "fstream_stream_bitrate_in_kbps",
        "gauge",
        "A stream's incoming bitrate, last seconds.",
    );
    for s in streams {
        let l = stream_labels(s);
        f.sample(
            "fstream_stream_bitrate_in_kbps",
            &l.as_pairs(),
            num(&s["bitrate_in_kbps"]),
        );
    }
    f.head(
        "fstream_stream_bitrate_out_kbps",
        "gauge",
        "A stream's outgoing bitrate to all its viewers, last seconds.",
    );
    for s in streams {
        let l = stream_labels(s);
        f.sample(
            "fstream_stream_bitrate_out_kbps",
            &l.as_pairs(),
            num(&s["bitrate_out_kbps"]),
        );
    }
    f.head(
        "fstream_stream_bytes_in_total",
        "counter",
        "Bytes a stream's publisher sent.",
    );
    for s in streams {
        let l = stream_labels(s);
        f.sample(
            "fstream_stream_bytes_in_total",
            &l.as_pairs(),
            num(&s["bytes_in"]),
        );
    }
    f.head(
        "fstream_stream_bytes_out_total",
        "counter",
        "Bytes sent to a stream's viewers.",
    );
    for s in streams {
        let l = stream_labels(s);
        f.sample(
            "fstream_stream_bytes_out_total",
            &l.as_pairs(),
            num(&s["bytes_out"]),
        );
    }

    let protocols = counters["protocols"].as_object();
    f.head(
        "fstream_bytes_in_total",
        "counter",
        "Bytes received, by protocol.",
    );
    for (p, v) in protocols.into_iter().flatten() {
        f.sample(
            "fstream_bytes_in_total",
            &[("protocol", p)],
            num(&v["bytes_in"]),
        );
    }
    f.head(
        "fstream_bytes_out_total",
        "counter",
        "Bytes sent, by protocol.",
    );
    for (p, v) in protocols.into_iter().flatten() {
        f.sample(
            "fstream_bytes_out_total",
            &[("protocol", p)],
            num(&v["bytes_out"]),
        );
    }

    f.head(
        "fstream_connections",
        "gauge",
        "Connections open now, by protocol.",
    );
    for (p, n) in counters["connections_open"]
        .as_object()
        .into_iter()
        .flatten()
    {
        f.sample("fstream_connections", &[("protocol", p)], num(n));
    }
    f.head(
        "fstream_connections_total",
        "counter",
        "Connections accepted since the start.",
    )
    .sample(
        "fstream_connections_total",
        &[],
        num(&counters["connections_total"]),
    );

    f.head(
        "fstream_auth_total",
        "counter",
        "Authentication answers, by result.",
    );
    for (result, key) in [
        ("allow", "auth_allowed"),
        ("deny", "auth_denied"),
        ("error", "auth_errors"),
    ] {
        f.sample(
            "fstream_auth_total",
            &[("result", result)],
            num(&counters[key]),
        );
    }

    for (name, key, help) in [
        (
            "fstream_queue_overflows_total",
            "queue_overflows",
            "Viewer queues that overflowed.",
        ),
        (
            "fstream_dropped_viewers_total",
            "dropped_viewers",
            "Viewers dropped for being too slow.",
        ),
        (
            "fstream_recordings_started_total",
            "recordings_started",
            "Recordings begun.",
        ),
        (
            "fstream_recordings_done_total",
            "recordings_done",
            "Recordings finished.",
        ),
        (
            "fstream_plugin_panics_total",
            "plugin_panics",
            "Plugin panics caught by the host.",
        ),
        (
            "fstream_kicks_total",
            "kicks",
            "Sessions closed through the control API.",
        ),
        (
            "fstream_notices_sent_total",
            "notices_sent",
            "Notices handed to observers.",
        ),
        (
            "fstream_notices_dropped_total",
            "notices_dropped",
            "Notices dropped (observer queue full).",
        ),
    ] {
        f.head(name, "counter", help)
            .sample(name, &[], num(&counters[key]));
    }
    out
}

struct StreamLabels {
    app: String,
    name: String,
}

impl StreamLabels {
    fn as_pairs(&self) -> [(&str, &str); 2] {
        [("app", self.app.as_str()), ("name", self.name.as_str())]
    }
}

fn stream_labels(s: &Value) -> StreamLabels {
    StreamLabels {
        app: s["app"].as_str().unwrap_or("").to_string(),
        name: s["name"].as_str().unwrap_or("").to_string(),
    }
}
