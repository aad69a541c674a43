//! Who is calling: the user named by a valid `Authorization: Bearer` token, and nothing else.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use kompass_core::key::UserId;

use super::{ApiError, Shared, unix_now};

/// The authenticated user of a request (from the token's claims only).
#[derive(Debug, Clone)]
pub struct User(pub UserId);

fn unauthorized(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
}

/// The token of an `Authorization` header value: the `Bearer` scheme (any case), one space.
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

impl FromRequestParts<Shared> for User {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Shared) -> Result<Self, Self::Rejection> {
        let value = parts.headers.get(axum::http::header::AUTHORIZATION).ok_or_else(|| {
            unauthorized("sign in: send `Authorization: Bearer TOKEN` with a token from `kompass token --user U`")
        })?;
        let value = value
            .to_str()
            .map_err(|_| unauthorized("the Authorization header is not ASCII text"))?;
        let token = bearer(value)
            .ok_or_else(|| unauthorized("the Authorization header must be `Bearer TOKEN`"))?;
        let claims = kompass_core::token::verify(token, app.secret(), unix_now())
            .map_err(|e| unauthorized(e.to_string()))?;
        let user = UserId::new(&claims.user)
            .map_err(|e| unauthorized(format!("the token names an unusable user: {e}")))?;
        Ok(User(user))
    }
}

#[cfg(test)]
mod tests {
    use super::bearer;

    #[test]
    fn bearer_scheme() {
        assert_eq!(bearer("Bearer abc.def"), Some("abc.def"));
        assert_eq!(bearer("bearer abc"), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearerabc"), None);
    }
}
