//! What a request gets instead of a stream: each is one status with a short plain-text body.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HttpError {
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("the request line is longer than {0} bytes")]
    UriTooLong(usize),
    #[error("the request head is larger than {0} bytes or has too many headers")]
    HeadTooLarge(usize),
    #[error("the request body is larger than {0} bytes")]
    BodyTooLarge(u64),
    #[error("no such stream or page")]
    NotFound,
    #[error("the method {0} is not allowed here")]
    MethodNotAllowed(String),
    #[error("wrong or missing channel password")]
    Forbidden,
    #[error("the stream cannot be joined now")]
    Unavailable,
    #[error("no complete request in time")]
    Timeout,
}

impl HttpError {
    /// The status code and its reason phrase.
    pub fn status(&self) -> (u16, &'static str) {
        match self {
            HttpError::BadRequest(_) => (400, "Bad Request"),
            HttpError::UriTooLong(_) => (414, "URI Too Long"),
            HttpError::HeadTooLarge(_) => (431, "Request Header Fields Too Large"),
            HttpError::BodyTooLarge(_) => (413, "Content Too Large"),
            HttpError::NotFound => (404, "Not Found"),
            HttpError::MethodNotAllowed(_) => (405, "Method Not Allowed"),
            HttpError::Forbidden => (403, "Forbidden"),
            HttpError::Unavailable => (503, "Service Unavailable"),
            HttpError::Timeout => (408, "Request Timeout"),
        }
    }
}
