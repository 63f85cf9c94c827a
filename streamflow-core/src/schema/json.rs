//! Events as JSON objects: the rules every JSON schema shares (a payload of at most 1 MiB, UTF-8,
//! JSON, an object), and decoding through serde with a reason per broken field rule:
//! `missing_<field>` when it is absent, `bad_<field>` when it is not what the type wants.

use serde::de::DeserializeOwned;

use crate::dead_letter::{Reason, Refusal};

/// The largest payload accepted: 1 MiB.
pub const MAX_PAYLOAD_BYTES: usize = 1 << 20;

/// The payload as text, or why it is not: over [`MAX_PAYLOAD_BYTES`], or not UTF-8.
pub fn text(payload: &[u8]) -> Result<&str, Refusal> {
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(Refusal::new(Reason::TooLarge).with_detail(format!("{} bytes", payload.len())));
    }
    std::str::from_utf8(payload).map_err(|e| Refusal::new(Reason::NotUtf8).with_detail(e.to_string()))
}

/// Why serde_json refused a payload as a whole: not JSON, or JSON of another shape.
pub fn refusal(error: &serde_json::Error) -> Refusal {
    let reason = match error.classify() {
        serde_json::error::Category::Data => Reason::NotAnObject,
        _ => Reason::NotJson,
    };
    Refusal::new(reason).with_detail(error.to_string())
}

/// Decodes `payload` as a `T` through serde. A missing field is `missing_<field>`, a field of
/// the wrong type or value `bad_<field>` (the outermost field, for nested ones); a payload that
/// is no JSON object is refused as [`text`] and [`refusal`] say.
///
/// # Examples
/// ```
/// use streamflow_core::schema::json::decode;
///
/// #[derive(serde::Deserialize)]
/// struct Order { product_id: String, quantity: u32 }
///
/// assert_eq!(decode::<Order>(br#"{"product_id":"p1","quantity":3}"#).unwrap().quantity, 3);
/// assert_eq!(decode::<Order>(br#"{"quantity":3}"#).err().unwrap().reason.as_str(), "missing_product_id");
/// assert_eq!(decode::<Order>(br#"{"product_id":"p1","quantity":-3}"#).err().unwrap().reason.as_str(), "bad_quantity");
/// assert_eq!(decode::<Order>(b"[1]").err().unwrap().reason.as_str(), "not_an_object");
/// ```
pub fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, Refusal> {
    let text = text(payload)?;
    // Syntax first, so that a broken payload is `not_json` whatever its fields.
    let value: &serde_json::value::RawValue = serde_json::from_str(text).map_err(|e| refusal(&e))?;
    if !value.get().starts_with('{') {
        return Err(Refusal::new(Reason::NotAnObject));
    }
    let mut deserializer = serde_json::Deserializer::from_str(value.get());
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let field = error.path().iter().find_map(|segment| match segment {
            serde_path_to_error::Segment::Map { key } => Some(key.clone()),
            _ => None,
        });
        let message = error.inner().to_string();
        // serde names a missing field in its message, at the path of the object holding it.
        let missing = message.strip_prefix("missing field `").and_then(|rest| rest.split('`').next());
        let reason = match (missing, &field) {
            (Some(missing), None) => Reason::named(&format!("missing_{missing}")),
            (_, Some(field)) => Reason::named(&format!("bad_{field}")),
            (None, None) => Reason::NotAnObject,
        };
        Refusal::new(reason).with_detail(message)
    })
}
