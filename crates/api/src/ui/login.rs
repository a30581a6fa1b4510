//! Login with an API key and logout.

use super::html::{escape, page};
use super::session::{self, SessionId, Sessions};
use super::UiError;
use crate::auth::Caller;
use crate::{ApiError, AppState};
use axum::extract::{FromRequestParts, State};
use axum::http::{header, Request, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Deserialize;
use std::sync::Arc;
use tessera_service::auth::parse_key;

fn login_page(error: Option<&str>) -> axum::response::Html<String> {
    let error = error
        .map(|e| format!(r#"<p class="error" id="login-error">{}</p>"#, escape(e)))
        .unwrap_or_default();
    let body = format!(
        r#"<form class="login card" method="post" action="/ui/login">
<h1>Sign in</h1>
<p class="muted">Paste an API key (<code>tsk_…</code>). Keys are shown once, when they are
created; an admin creates your first one.</p>
{error}
<label for="key">API key</label>
<input type="password" id="key" name="key" autocomplete="off" required autofocus>
<button type="submit" id="login">Sign in</button>
</form>"#
    );
    page("Sign in", None, &body)
}

pub(crate) async fn form() -> impl IntoResponse {
    login_page(None)
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    key: String,
}

/// Verifies the key as the REST API would (same code, same cache, same
/// bound on argon2 work), then starts a session.
pub(crate) async fn submit(
    State(s): State<AppState>,
    Extension(sessions): Extension<Arc<Sessions>>,
    Form(form): Form<LoginForm>,
) -> Result<Response, UiError> {
    let key = form.key.trim().to_string();
    let refused = |message: &str| (StatusCode::UNAUTHORIZED, login_page(Some(message)));
    let Ok(request) = Request::builder()
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .body(())
    else {
        return Ok(refused(NOT_A_KEY).into_response());
    };
    let (mut parts, ()) = request.into_parts();
    let caller = match Caller::from_request_parts(&mut parts, &s).await {
        Ok(caller) => caller,
        Err(ApiError::Unauthorized(why)) => return Ok(refused(for_the_form(&why)).into_response()),
        Err(e) => return Err(e.into()),
    };
    let prefix = parse_key(&key)
        .ok_or_else(|| ApiError::internal("a verified key has no prefix"))?
        .to_string();
    let id = sessions.create(caller.user().id, prefix);
    let cookie = session::set_cookie(&id);
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/ui")).into_response())
}

const NOT_A_KEY: &str = "That key is not one this server knows. Paste the whole key: it starts \
     with tsk_ and was shown once, when it was created. Lost it? An admin can create a new one.";

/// A refusal of the key as the sign-in form says it: about the form, not
/// about the REST API's headers.
fn for_the_form(why: &str) -> &'static str {
    if why.contains("revoked") {
        "This key has been revoked. Sign in with another key of yours, or ask an admin for a \
         new one."
    } else {
        NOT_A_KEY
    }
}

pub(crate) async fn logout(
    Extension(sessions): Extension<Arc<Sessions>>,
    Extension(SessionId(id)): Extension<SessionId>,
) -> Response {
    sessions.remove(&id);
    let cookie = session::clear_cookie();
    ([(header::SET_COOKIE, cookie)], Redirect::to("/ui/login")).into_response()
}
