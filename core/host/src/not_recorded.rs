//! Publishes an app handler accepted without the recording they asked for (since v2.3:
//! `MayRecord(false)` in the decision's `ext`). The RTMP frontend of v2.3 publishes those live;
//! one built earlier does not read the grant, so the connection remembers the names they may go
//! live under and the host publishes them live whatever the frontend says.

use std::{collections::VecDeque, sync::Mutex};

use fstream_abi::{AppDecision, AppVerdict};

use crate::renames;

/// One connection's publishes refused their recording, by stream name; a few at most (a
/// connection publishes one or two streams; past the bound the oldest is forgotten).
#[derive(Default)]
pub struct NotRecorded(Mutex<VecDeque<String>>);

impl NotRecorded {
    const MAX: usize = 8;

    /// A publish of `app`/`stream` was decided by `decision`.
    pub fn decided(&self, app: &str, stream: &str, decision: &AppDecision) {
        if fstream_abi::may_record(&decision.ext) != Some(false) {
            return;
        }
        let asked = format!("{app}/{stream}");
        let name = match decision.verdict() {
            Some(AppVerdict::Accept) => asked,
            // Where the frontend goes: a name in the app, or APP/NAME (an invalid target is
            // refused by the frontend, so nothing publishes under it).
            Some(AppVerdict::Redirect(to)) => match renames::target(&asked, to) {
                Ok(name) => name,
                Err(_) => return,
            },
            _ => return,
        };
        let mut names = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if names.len() >= Self::MAX {
            names.pop_front();
        }
        names.push_back(name);
    }

    /// Whether the publish of `stream` was refused its recording (and forgets it).
    pub fn take(&self, stream: &str) -> bool {
        let mut names = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match names.iter().position(|n| n == stream) {
            Some(i) => {
                names.remove(i);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use fstream_abi::{Extension, Extension_NE};

    use super::*;

    fn refused(mut d: AppDecision) -> AppDecision {
        d.ext.push(Extension_NE::new(Extension::MayRecord(false)));
        d
    }

    #[test]
    fn remembers_accepted_and_redirected_publishes_refused_their_recording() {
        let n = NotRecorded::default();
        n.decided("fier", "cam", &AppDecision::accept());
        assert!(!n.take("fier/cam"), "no refusal, nothing kept");
        n.decided("fier", "cam", &refused(AppDecision::accept()));
        n.decided("fier", "old", &refused(AppDecision::redirect("new")));
        n.decided("fier", "x", &refused(AppDecision::redirect("live/y")));
        n.decided("fier", "bad", &refused(AppDecision::redirect("../z")));
        n.decided("fier", "no", &refused(AppDecision::reject("no")));
        assert!(n.take("fier/cam"));
        assert!(!n.take("fier/cam"), "taken once");
        assert!(n.take("fier/new") && n.take("live/y"));
        assert!(!n.take("fier/bad") && !n.take("fier/no"));
        for i in 0..20 {
            n.decided("a", &format!("s{i}"), &refused(AppDecision::accept()));
        }
        assert!(!n.take("a/s0"), "the oldest is forgotten past the bound");
        assert!(n.take("a/s19"));
    }
}
