//! `GET /dashboard`: one self-contained page (no scripts from elsewhere) that polls the API
//! once a second: live streams with a small graph of their incoming bitrate, sessions with a
//! kick button each. With a token set, the page asks for it and sends it as a bearer token.

pub const PAGE: &str = include_str!("../assets/dashboard.html");
