//! [`from_value`]: deserialises a parsed JSON body into a wire type the
//! way the OpenAPI document describes it, which is stricter and friendlier
//! than serde_json's own deserialiser in three ways:
//!
//! - a struct is read only from a JSON object (serde's derives also accept
//!   an array of the fields in order, so `["a","b"]` passed as a profile
//!   update; the document says `object`);
//! - an integral float (`2.0`) is read as the integer it is: JSON Schema's
//!   `integer` admits it, and so do clients that store every number as a
//!   double;
//! - errors speak JSON, not Rust (`expected an integer, found 1.5` rather
//!   than `invalid type: floating point 1.5, expected i64`, `expected a
//!   JSON object` rather than `expected struct ProfileUpdate`), and name
//!   where in the body they are (`items[0].price_cents: …`).

use std::fmt::{self, Display};

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Expected, IntoDeserializer, MapAccess, SeqAccess,
    Unexpected, Visitor,
};
use serde_json::{Map, Number, Value};

/// Reads `T` from `value` (see the module docs).
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, Error> {
    T::deserialize(Strict(value))
}

/// Why a body does not fit its type, in the body's terms.
#[derive(Debug, PartialEq, Eq)]
pub struct Error {
    /// Where in the body, outermost first (`items`, `[0]`, `price_cents`).
    path: Vec<String>,
    message: String,
}

impl Error {
    fn at(mut self, segment: String) -> Self {
        self.path.insert(0, segment);
        self
    }
}

impl Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            return f.write_str(&self.message);
        }
        let mut path = String::new();
        for segment in &self.path {
            if !segment.starts_with('[') && !path.is_empty() {
                path.push('.');
            }
            path.push_str(segment);
        }
        write!(f, "{path}: {}", self.message)
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<M: Display>(msg: M) -> Self {
        Self {
            path: Vec::new(),
            message: msg.to_string(),
        }
    }

    fn invalid_type(unexpected: Unexpected<'_>, expected: &dyn Expected) -> Self {
        Self::custom(format_args!(
            "expected {}, found {}",
            expected_in_json(expected),
            unexpected_in_json(&unexpected)
        ))
    }

    fn invalid_value(unexpected: Unexpected<'_>, expected: &dyn Expected) -> Self {
        Self::invalid_type(unexpected, expected)
    }

    fn invalid_length(len: usize, expected: &dyn Expected) -> Self {
        let items = if len == 1 { "item" } else { "items" };
        Self::custom(format_args!(
            "expected {}, found {len} {items}",
            expected_in_json(expected)
        ))
    }
}

/// What a visitor wanted, in JSON words. Serde's `Expected` texts name Rust
/// types (`struct ProfileUpdate`, `i64`, `a tuple of size 2`); the ones
/// that are already JSON words (`a string`, `a boolean`, a crate's own
/// `a UUID string`) pass through.
fn expected_in_json(expected: &dyn Expected) -> String {
    let text = expected.to_string();
    let range = |min: i128, max: i128| format!("an integer from {min} to {max}");
    match text.as_str() {
        "i64" | "isize" | "i128" => "an integer".to_owned(),
        "u64" | "usize" | "u128" => "a non-negative integer".to_owned(),
        "i8" => range(i8::MIN.into(), i8::MAX.into()),
        "i16" => range(i16::MIN.into(), i16::MAX.into()),
        "i32" => range(i32::MIN.into(), i32::MAX.into()),
        "u8" => range(0, u8::MAX.into()),
        "u16" => range(0, u16::MAX.into()),
        "u32" => range(0, u32::MAX.into()),
        "f32" | "f64" => "a number".to_owned(),
        "a sequence" => "an array".to_owned(),
        "a map" => "a JSON object".to_owned(),
        "unit" => "null".to_owned(),
        "option" => "a value or null".to_owned(),
        _ => {
            if text.starts_with("struct ") || text.starts_with("map") {
                "a JSON object".to_owned()
            } else if let Some(n) = text
                .strip_prefix("a tuple of size ")
                .or_else(|| text.strip_prefix("an array of length "))
            {
                format!("an array of {n} items")
            } else if text.starts_with("tuple struct ") {
                "an array".to_owned()
            } else if text.starts_with("enum ") || text == "variant identifier" {
                "one of the listed strings".to_owned()
            } else {
                text
            }
        }
    }
}

/// What the body had, in JSON words.
fn unexpected_in_json(unexpected: &Unexpected<'_>) -> String {
    match unexpected {
        Unexpected::Bool(b) => b.to_string(),
        Unexpected::Unsigned(n) => n.to_string(),
        Unexpected::Signed(n) => n.to_string(),
        Unexpected::Float(x) => x.to_string(),
        Unexpected::Str(s) => format!("the string {s:?}"),
        Unexpected::Unit | Unexpected::Option => "null".to_owned(),
        Unexpected::Seq => "an array".to_owned(),
        Unexpected::Map | Unexpected::StructVariant => "an object".to_owned(),
        other => other.to_string(),
    }
}

/// What a JSON value is, for errors.
fn unexpected(value: &Value) -> Unexpected<'_> {
    match value {
        Value::Null => Unexpected::Unit,
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Unexpected::Unsigned(u),
            (_, Some(i), _) => Unexpected::Signed(i),
            (_, _, Some(f)) => Unexpected::Float(f),
            _ => Unexpected::Other("a number"),
        },
        Value::String(s) => Unexpected::Str(s),
        Value::Array(_) => Unexpected::Seq,
        Value::Object(_) => Unexpected::Map,
    }
}

/// A float with no fractional part, as the integer it is, if one fits.
fn integral(n: &Number) -> Option<Value> {
    let x = n.as_f64()?;
    if n.is_f64() && x.fract() == 0.0 {
        // The casts saturate; the range checks keep only exact values
        // (2^63 itself is the first float past i64::MAX).
        if (0.0..18_446_744_073_709_551_616.0).contains(&x) {
            return Some(Value::from(x as u64));
        }
        if (-9_223_372_036_854_775_808.0..0.0).contains(&x) {
            return Some(Value::from(x as i64));
        }
    }
    None
}

struct Strict(Value);

impl Strict {
    fn visit_array<'de, V: Visitor<'de>>(items: Vec<Value>, visitor: V) -> Result<V::Value, Error> {
        let len = items.len();
        let mut seq = Seq {
            items: items.into_iter(),
            index: 0,
        };
        let value = visitor.visit_seq(&mut seq)?;
        if seq.items.len() == 0 {
            Ok(value)
        } else {
            Err(de::Error::custom(format_args!(
                "expected {} items, found {len}",
                seq.index
            )))
        }
    }

    fn visit_object<'de, V: Visitor<'de>>(
        map: Map<String, Value>,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_map(Object {
            entries: map.into_iter(),
            value: None,
        })
    }
}

impl<'de> de::Deserializer<'de> for Strict {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Number(n) => {
                if let Some(Value::Number(whole)) = integral(&n) {
                    return Strict(Value::Number(whole)).deserialize_any(visitor);
                }
                if let Some(u) = n.as_u64() {
                    visitor.visit_u64(u)
                } else if let Some(i) = n.as_i64() {
                    visitor.visit_i64(i)
                } else {
                    // Without serde_json's arbitrary_precision every other
                    // number is an f64.
                    visitor.visit_f64(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::String(s) => visitor.visit_string(s),
            Value::Array(items) => Self::visit_array(items, visitor),
            Value::Object(map) => Self::visit_object(map, visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            other => visitor.visit_some(Strict(other)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_map(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Object(map) => Self::visit_object(map, visitor),
            other => Err(de::Error::invalid_type(unexpected(&other), &visitor)),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Array(items) => Self::visit_array(items, visitor),
            other => Err(de::Error::invalid_type(unexpected(&other), &visitor)),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    /// Unit variants only (`"available"`): no wire type has another kind.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Value::String(s) => visitor.visit_enum(s.into_deserializer()),
            other => Err(de::Error::invalid_type(unexpected(&other), &visitor)),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct identifier
    }
}

struct Seq {
    items: std::vec::IntoIter<Value>,
    index: usize,
}

impl<'de> SeqAccess<'de> for Seq {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        let Some(item) = self.items.next() else {
            return Ok(None);
        };
        let index = self.index;
        self.index += 1;
        seed.deserialize(Strict(item))
            .map(Some)
            .map_err(|e| e.at(format!("[{index}]")))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct Object {
    entries: serde_json::map::IntoIter,
    /// The value of the key just read, with that key.
    value: Option<(String, Value)>,
}

impl<'de> MapAccess<'de> for Object {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        let read = seed.deserialize(key.clone().into_deserializer());
        self.value = Some((key, value));
        read.map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let Some((key, value)) = self.value.take() else {
            return Err(de::Error::custom("a value without its key"));
        };
        seed.deserialize(Strict(value)).map_err(|e| e.at(key))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Item {
        name: String,
        price_cents: i64,
        stock: Option<u32>,
        #[serde(default)]
        tags: Vec<String>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Order {
        items: Vec<Item>,
        at: Option<Point>,
        pair: Option<[String; 2]>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Point {
        lat: f64,
        lng: f64,
    }

    fn check<T: DeserializeOwned + std::fmt::Debug>(body: Value, expected: Result<&str, &str>) {
        match (from_value::<T>(body.clone()), expected) {
            (Ok(v), Ok(debug)) => assert_eq!(format!("{v:?}"), debug, "{body}"),
            (Err(e), Err(message)) => assert_eq!(e.to_string(), message, "{body}"),
            (got, want) => panic!("{body}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn reads_what_the_document_allows() {
        check::<Item>(
            json!({"name": "a", "price_cents": 2.0, "stock": 3}),
            Ok(r#"Item { name: "a", price_cents: 2, stock: Some(3), tags: [] }"#),
        );
        check::<Item>(
            json!({"name": "a", "price_cents": -7.0, "stock": null, "tags": ["x"]}),
            Ok(r#"Item { name: "a", price_cents: -7, stock: None, tags: ["x"] }"#),
        );
        check::<Point>(
            json!({"lat": 57, "lng": 11.5}),
            Ok("Point { lat: 57.0, lng: 11.5 }"),
        );
        check::<Order>(
            json!({"items": [], "pair": ["11:00", "22:00"]}),
            Ok(r#"Order { items: [], at: None, pair: Some(["11:00", "22:00"]) }"#),
        );
    }

    #[test]
    fn refuses_in_json_words() {
        check::<Item>(
            json!(["a", 1, null]),
            Err("expected a JSON object, found an array"),
        );
        check::<Item>(
            json!("x"),
            Err(r#"expected a JSON object, found the string "x""#),
        );
        check::<Item>(
            json!({"name": "a", "price_cents": 1.5}),
            Err("price_cents: expected an integer, found 1.5"),
        );
        check::<Item>(
            json!({"name": "a", "price_cents": 1, "stock": -1}),
            Err("stock: expected an integer from 0 to 4294967295, found -1"),
        );
        check::<Item>(
            json!({"name": 5, "price_cents": 1}),
            Err("name: expected a string, found 5"),
        );
        check::<Item>(json!({"name": "a"}), Err("missing field `price_cents`"));
        check::<Item>(
            json!({"name": "a", "price_cents": 1, "colour": 1}),
            Err("unknown field `colour`, expected one of `name`, `price_cents`, `stock`, `tags`"),
        );
        check::<Order>(
            json!({"items": [{"name": "a", "price_cents": 1, "tags": [1]}]}),
            Err("items[0].tags[0]: expected a string, found 1"),
        );
        check::<Order>(
            json!({"items": [], "at": [57.0, 11.0]}),
            Err("at: expected a JSON object, found an array"),
        );
        check::<Order>(
            json!({"items": [], "pair": ["11:00"]}),
            Err("pair: expected an array of 2 items, found 1 item"),
        );
        check::<Order>(
            json!({"items": [], "pair": ["11:00", "12:00", "13:00"]}),
            Err("pair: expected 2 items, found 3"),
        );
        check::<Order>(
            json!({"items": {}}),
            Err("items: expected an array, found an object"),
        );
    }
}
