//! The one mapping from errors to HTTP statuses: a user's mistake is a 4xx
//! that names it, never a 500.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::events::store::EventError;
use crate::query::eval::QueryError;
use crate::query::time::TimeError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Query(#[from] QueryError),
    #[error("{0}")]
    Time(#[from] TimeError),
    #[error("{0}")]
    BadRequest(String),
    #[error("this write needs \"Authorization: Bearer <token>\" with the server's api_token")]
    Unauthorized,
    #[error("{0}")]
    NotFound(String),
    #[error("the store cannot serve this now: {0}")]
    Unavailable(String),
    /// Every render slot is taken and the wait for one ran out
    /// (`max_concurrent_renders`).
    #[error("{0}")]
    Busy(String),
    /// A reply that would be larger than a cap allows.
    #[error("{0}")]
    TooLarge(String),
    /// Our bug (a panic in a handler's work): logged with the request.
    #[error("internal error: {0}")]
    Internal(String),
    #[error("{0}")]
    Events(#[from] EventError),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Alert(crate::alert::engine::AlertError),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Query(QueryError::TooMuch { .. }) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Query(QueryError::Store(_) | QueryError::Deadline(_))
            | ApiError::Unavailable(_)
            | ApiError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::TooLarge(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Events(EventError::Invalid { .. }) => StatusCode::BAD_REQUEST,
            ApiError::Events(EventError::TooMany { .. }) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Events(EventError::Full { .. }) => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::Events(EventError::Kv(_)) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Alert(e) => {
                use crate::alert::engine::AlertError as A;
                match e {
                    A::Invalid(_) | A::BadRequest(_) => StatusCode::BAD_REQUEST,
                    A::NotFound(_) => StatusCode::NOT_FOUND,
                    A::Conflict(_) => StatusCode::CONFLICT,
                    A::TooMany(_) => StatusCode::UNPROCESSABLE_ENTITY,
                    // Converted to ApiError::Query on the way in.
                    A::Query(_) => StatusCode::BAD_REQUEST,
                    A::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
                }
            }
            ApiError::Query(_) | ApiError::Time(_) | ApiError::BadRequest(_) => {
                StatusCode::BAD_REQUEST
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut r = (status, format!("{self}\n")).into_response();
        if let ApiError::Busy(_) = self {
            // The wait for a slot is a second; so is a retry's.
            r.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        r
    }
}
