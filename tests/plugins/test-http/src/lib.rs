//! `test-http`: an HTTP handler that misbehaves on purpose, to show that the others and the
//! rest of the server carry on. `/t/panic` panics, `/t/slow` takes 10 s (past the host's
//! timeout), `/t/big` answers 1 MiB of a known pattern, `/t/status/N` answers status N. It also
//! claims `/hello` (another plugin's, listed first: the host keeps that one) and `/bad prefix`,
//! `/../up` and `/` (not plain paths: ignored with a warning).

use fstream_abi::{
    kinds,
    sdk::{http_handler_box, HandleHttp},
    HostApiBox, HttpCall, HttpReply, InitContext, PluginError, PluginInstance, PluginObject,
};

fstream_abi::export_plugin! { name: "test-http", kinds: kinds::HTTP_HANDLER, init: init }

fn init(_: &HostApiBox, _ctx: &InitContext) -> Result<PluginInstance, PluginError> {
    Ok(PluginInstance::empty().with(PluginObject::HttpHandler(http_handler_box(Misbehave))))
}

struct Misbehave;

impl HandleHttp for Misbehave {
    fn prefixes(&self) -> Vec<String> {
        ["/t", "/hello", "/bad prefix", "/../up", "/"]
            .map(String::from)
            .to_vec()
    }

    fn handle(&self, call: &HttpCall) -> Result<HttpReply, PluginError> {
        let path = call.path.as_str();
        match path {
            "/t/panic" => panic!("test-http panics on purpose"),
            "/t/slow" => {
                std::thread::sleep(std::time::Duration::from_secs(10));
                Ok(HttpReply::text(200, "late"))
            }
            "/t/big" => {
                let body: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
                Ok(HttpReply::new(200, "application/octet-stream", &body))
            }
            "/hello" => Ok(HttpReply::text(200, "test-http should never answer /hello")),
            _ => match path.strip_prefix("/t/status/").and_then(|n| n.parse().ok()) {
                Some(code) => Ok(HttpReply::text(code, "as asked")),
                None => Ok(HttpReply::text(404, "test-http: no such path")),
            },
        }
    }
}
