//! `test-sink`: a sink for tests that counts packets and panics at the `panic_after`-th one, to
//! show that a sink's panic ends that recording only.

use fstream_abi::{
    kinds,
    sdk::{sink_box, sink_factory_box, Consume, MakeSink},
    HostApiBox, InitContext, MediaPacket, PluginError, PluginInstance, PluginObject, SinkBox,
    StreamStart,
};
use serde::Deserialize;

fstream_abi::export_plugin! { name: "test-sink", kinds: kinds::SINK, init: init }

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(deny_unknown_fields, default)]
struct Settings {
    panic_after: u64,
}

fn init(_: &HostApiBox, ctx: &InitContext) -> Result<PluginInstance, PluginError> {
    let s: Settings = toml::from_str(&ctx.settings).map_err(|e| PluginError::new(e.message()))?;
    Ok(PluginInstance::empty().with(PluginObject::Sink(sink_factory_box(Factory(s)))))
}

struct Factory(Settings);

impl MakeSink for Factory {
    fn open(&self, start: &StreamStart) -> Result<Option<SinkBox>, PluginError> {
        tracing::info!(stream = %start.stream, query = %start.query, "test-sink opened");
        Ok(Some(sink_box(Counter {
            settings: self.0,
            seen: 0,
        })))
    }
}

struct Counter {
    settings: Settings,
    seen: u64,
}

impl Consume for Counter {
    fn packet(&mut self, _: &MediaPacket) -> Result<(), PluginError> {
        self.seen += 1;
        if self.settings.panic_after > 0 && self.seen == self.settings.panic_after {
            panic!("test-sink was told to panic at packet {}", self.seen);
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), PluginError> {
        tracing::info!(packets = self.seen, "test-sink finished");
        Ok(())
    }
}
