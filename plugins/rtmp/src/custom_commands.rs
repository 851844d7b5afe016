//! Commands the protocol does not define (`NetConnection.call("myRpc", ...)`): passed to the
//! app handler (interface v2.1), whose value becomes `_result` and whose error `_error`. A
//! handler without the command, or none at all, gives `NetConnection.Call.Failed`.
//!
//! The session waits for the answer as for any app handler call: what the client sends
//! meanwhile stays buffered, so replies keep the order of the calls.

use abi_stable::std_types::RVec;
use fstream_abi::{Action, CommandCall, CommandReply, CommandReply_NE, Outbox};
use fstream_media::{amf0::Amf0Value, rtmp::message::Command};
use serde_json::Value;

use crate::{
    amf_json::{from_json, to_json},
    chunkio::CSID_COMMAND,
    error::Violation,
    session::RtmpSession,
    state::{Conn, Wait},
};

/// A JSON value from a handler; text that is not JSON is taken as a string.
fn value_of(json: &str) -> Amf0Value {
    match serde_json::from_str::<Value>(json) {
        Ok(v) => from_json(&v),
        Err(_) => Amf0Value::String(json.to_string()),
    }
}

impl RtmpSession {
    /// Asks the app handler about a command of the client's own.
    pub(crate) fn cmd_custom(&mut self, cmd: &Command, out: &mut Outbox) -> Result<(), Violation> {
        let Conn::Connected(c) = &self.conn else {
            return self.call_failed(cmd.transaction_id, "Not connected: send connect first.");
        };
        let args: Vec<Value> = cmd.args.iter().map(to_json).collect();
        let call = CommandCall {
            app: c.app.clone().into(),
            name: cmd.name.clone().into(),
            args_json: Value::Array(args).to_string().into(),
            caller: self.caller.clone(),
            ext: RVec::new(),
        };
        let request = self.request_id();
        self.wait = Some(Wait::Command {
            request,
            txn: cmd.transaction_id,
            name: cmd.name.clone(),
        });
        self.act(out, Action::CallCommand { request, call });
        Ok(())
    }

    /// The handler's answer: `_result`, `_error`, or "method not found".
    pub(crate) fn command_answered(
        &mut self,
        txn: f64,
        name: &str,
        reply: &CommandReply_NE,
    ) -> Result<(), Violation> {
        match reply.as_enum() {
            Ok(CommandReply::Result(json)) => self.result(txn, vec![value_of(json)]),
            Ok(CommandReply::Error(json)) => {
                if txn != 0.0 {
                    let cmd = Command::error(txn, Amf0Value::Null, vec![value_of(json)]);
                    self.output.command(CSID_COMMAND, 0, &cmd)?;
                }
                Ok(())
            }
            // Not handled, or an answer this build does not know.
            _ => {
                tracing::debug!(command = name, "no app handler knows this command");
                self.call_failed(txn, &format!("Method not found ({name})."))
            }
        }
    }
}
