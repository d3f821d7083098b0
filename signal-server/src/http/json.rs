//! The JSON request-body extractor every handler uses: axum's `Json` (415 without
//! `Content-Type: application/json`, 400 for a body that is not JSON, 413 over the body
//! limit), then two rules of the document axum does not apply:
//! - the body is a JSON object (or `null`, where the body is optional): serde would
//!   otherwise read a struct from an array (`[null, null]`) too;
//! - a number with an integral value is an integer (`2.0` is `2`), as JSON Schema says.
//!
//! Anything else that does not fit the type is a 422, as with axum's `Json`.

use axum::Json;
use axum::extract::{FromRequest, OptionalFromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::{Number, Value};

/// A request body decoded from a JSON object.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Json(value) = <Json<Value> as FromRequest<S>>::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        decode(value).map(Self).map_err(unprocessable)
    }
}

/// `Option<JsonBody<T>>`: `None` for a request without a body (no `Content-Type`).
impl<T: DeserializeOwned, S: Send + Sync> OptionalFromRequest<S> for JsonBody<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, Self::Rejection> {
        match <Json<Value> as OptionalFromRequest<S>>::from_request(req, state).await {
            Ok(None) => Ok(None),
            Ok(Some(Json(value))) => decode(value).map(|v| Some(Self(v))).map_err(unprocessable),
            Err(rejection) => Err(rejection.into_response()),
        }
    }
}

/// The body as a `T`, or why not (a 422).
fn decode<T: DeserializeOwned>(mut value: Value) -> Result<T, String> {
    if !(value.is_object() || value.is_null()) {
        return Err("the body must be a JSON object".to_owned());
    }
    integral_floats_to_integers(&mut value);
    serde_json::from_value(value)
        .map_err(|e| format!("Failed to deserialize the JSON body into the target type: {e}"))
}

/// A 422 with a plain-text reason: the `json_errors` middleware gives it the JSON error
/// shape, as it does axum's own rejections.
fn unprocessable(reason: String) -> Response {
    (StatusCode::UNPROCESSABLE_ENTITY, reason).into_response()
}

/// Rewrites every float with an integral value that fits an `i64` or a `u64` as that
/// integer, everywhere in `value`.
fn integral_floats_to_integers(value: &mut Value) {
    match value {
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|_| n.is_f64())
                && f.fract() == 0.0
            {
                // `as` saturates; the round trip tells whether the value fit.
                let int = if f < 0.0 {
                    let i = f as i64;
                    (i as f64 == f).then(|| Number::from(i))
                } else {
                    let u = f as u64;
                    (u as f64 == f).then(|| Number::from(u))
                };
                if let Some(int) = int {
                    *n = int;
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_floats_to_integers),
        Value::Object(map) => map.values_mut().for_each(integral_floats_to_integers),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Pair {
        a: Option<u64>,
        b: Option<i64>,
    }

    /// The status `JsonBody` answers for this body: `None` when it accepts it.
    fn status<T: DeserializeOwned>(json: &str) -> Option<StatusCode> {
        decode::<T>(serde_json::from_str(json).unwrap())
            .err()
            .map(|reason| unprocessable(reason).status())
    }

    #[test]
    fn an_array_is_not_an_object() {
        assert_eq!(
            status::<Pair>("[null, null]"),
            Some(StatusCode::UNPROCESSABLE_ENTITY)
        );
        assert_eq!(
            status::<Pair>("true"),
            Some(StatusCode::UNPROCESSABLE_ENTITY)
        );
        assert_eq!(status::<Pair>(r#"{"a": 1}"#), None);
        assert_eq!(status::<Option<Pair>>("null"), None);
        assert_eq!(
            status::<Pair>("null"),
            Some(StatusCode::UNPROCESSABLE_ENTITY)
        );
    }

    #[test]
    fn integral_floats_are_integers() {
        let pair: Pair = decode(serde_json::json!({"a": 1826.0, "b": -3.0})).unwrap();
        assert_eq!(
            pair,
            Pair {
                a: Some(1826),
                b: Some(-3)
            }
        );
        assert_eq!(
            status::<Pair>(r#"{"a": 1.5}"#),
            Some(StatusCode::UNPROCESSABLE_ENTITY)
        );
        assert_eq!(
            status::<Pair>(r#"{"a": 1e300}"#),
            Some(StatusCode::UNPROCESSABLE_ENTITY)
        );
    }
}
