//! Small serde helpers that keep the wire shape exact.

/// `Option<Option<T>>`: `None` = key absent, `Some(None)` = explicit `null`,
/// `Some(Some(v))` = a value. Use with
/// `#[serde(default, skip_serializing_if = "Option::is_none", with = "double_option")]`.
pub(crate) mod double_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(crate) fn serialize<S, T>(value: &Option<Option<T>>, s: S) -> Result<S::Ok, S::Error>
    where
        S: Serializer,
        T: Serialize,
    {
        match value {
            None | Some(None) => s.serialize_none(),
            Some(Some(v)) => v.serialize(s),
        }
    }

    pub(crate) fn deserialize<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        Option::<T>::deserialize(d).map(Some)
    }
}

/// Serialises an `f64` the way JavaScript's `JSON.stringify` does: integral values
/// without a fraction (`0`, not `0.0`), so a number the CLI printed round-trips equal.
pub(crate) fn js_number(v: f64) -> serde_json::Value {
    const MAX_SAFE: f64 = 9_007_199_254_740_991.0;
    if v.is_finite() && v.fract() == 0.0 && v.abs() <= MAX_SAFE {
        if v >= 0.0 && !(v == 0.0 && v.is_sign_negative()) {
            return serde_json::Value::from(v as u64);
        }
        if v < 0.0 {
            return serde_json::Value::from(v as i64);
        }
    }
    serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, serde_json::Value::Number)
}

/// `Option<f64>` with JavaScript number formatting; use with
/// `#[serde(default, skip_serializing_if = "Option::is_none", with = "js_f64_opt")]` (reading
/// is a plain `Option<f64>`).
pub(crate) mod js_f64_opt {
    use serde::{Serialize, Serializer};

    pub(crate) fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => super::js_number(*v).serialize(s),
            None => s.serialize_none(),
        }
    }
}

/// Whether the current thread is inside [`crate::Message::from_slice`]'s fast path.
///
/// Tagged enums with a catch-all variant ([`crate::ContentBlock`], [`crate::SystemMessage`],
/// [`crate::SseEvent`], …) must fall back to the catch-all when a known tag's fields have the
/// wrong shape. A streaming deserializer cannot rewind to re-read such a value, so these enums
/// have two strategies: *fast* (straight from the stream; any surprise is an error, and
/// `from_slice` then retypes the whole line through a `Value`) and *tolerant* (read the value
/// into a `Value` first, type it from there, fall back to the catch-all). The fast one is used
/// only while `from_slice` runs, so every other caller (`serde_json::from_str::<ContentBlock>`,
/// `Message::from_value`, …) gets the tolerant semantics, and the final result is the same
/// either way.
mod fast {
    use std::cell::Cell;

    thread_local! {
        static FAST: Cell<bool> = const { Cell::new(false) };
    }

    /// Whether the fast strategy is on for this thread.
    pub(crate) fn on() -> bool {
        FAST.with(Cell::get)
    }

    /// Turns the fast strategy on until dropped (restoring the previous state, also on panic).
    pub(crate) struct Guard(bool);

    impl Guard {
        pub(crate) fn enter() -> Guard {
            Guard(FAST.with(|f| f.replace(true)))
        }
    }

    impl Drop for Guard {
        fn drop(&mut self) {
            let prev = self.0;
            FAST.with(|f| f.set(prev));
        }
    }
}
pub(crate) use fast::{Guard as FastGuard, on as fast_mode};

/// The error text of a fast-path surprise; never surfaces (the line is retyped the slow way).
pub(crate) const FAST_PATH_BAIL: &str = "fast path: unusual layout, retyping through a Value";

/// An object key, borrowed from the input when it has no escapes.
pub(crate) enum Key<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl Key<'_> {
    pub(crate) fn as_str(&self) -> &str {
        match self {
            Key::Borrowed(s) => s,
            Key::Owned(s) => s,
        }
    }

    pub(crate) fn into_string(self) -> String {
        match self {
            Key::Borrowed(s) => s.to_owned(),
            Key::Owned(s) => s,
        }
    }
}

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key::Borrowed(s))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key::Owned(s.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, s: String) -> Result<Key<'de>, E> {
                Ok(Key::Owned(s))
            }
        }
        d.deserialize_str(V)
    }
}

/// Keys an enclosing visitor already consumed as a tag (`type`, `subtype`): met again inside
/// the struct, they are skipped (`skip`, typing from a `Value` that still holds the tag) or an
/// error (a duplicate tag in the stream: the fast path bails out).
#[derive(Clone, Copy)]
pub(crate) struct Tags {
    pub(crate) keys: &'static [&'static str],
    pub(crate) skip: bool,
}

impl Tags {
    /// No tag keys: every key is a field or an extra key.
    pub(crate) const NONE: Tags = Tags {
        keys: &[],
        skip: false,
    };

    /// `key` was consumed; seeing it again is an error.
    pub(crate) const fn consumed(keys: &'static [&'static str]) -> Tags {
        Tags { keys, skip: false }
    }

    /// `key` is in the input but not part of the struct: skip it.
    pub(crate) const fn skip(keys: &'static [&'static str]) -> Tags {
        Tags { keys, skip: true }
    }

    /// What to do with a key that is not a field: `Ok(true)` = skip its value, `Ok(false)` =
    /// keep it as an extra key.
    pub(crate) fn check<E: serde::de::Error>(&self, key: &str) -> Result<bool, E> {
        if self.keys.contains(&key) {
            if self.skip {
                Ok(true)
            } else {
                Err(E::custom(FAST_PATH_BAIL))
            }
        } else {
            Ok(false)
        }
    }
}

/// Types a struct from a `MapAccess` in one pass: known keys straight into their fields, other
/// keys into `extra` (left empty, so unallocated, when there are none). Duplicate keys: the last
/// one wins, as when parsing into a `Value`.
///
/// Field kinds: `req` (must be present), `opt` (an `Option`, `null` = `None`), `dbl` (an
/// `Option<Option<_>>`: absent / `null` / value), `any` (an `Option<Value>`: absent = `None`,
/// present, `null` too, = `Some`), `def` (absent = `Default::default()`).
macro_rules! visit_fields {
    ($map:expr, $tags:expr, $($ctor:ident)::+ { $($kind:ident $field:ident : $key:literal),* $(,)? }) => {{
        #[allow(unused_mut)]
        let mut map = $map;
        let tags: $crate::serde_util::Tags = $tags;
        $( let mut $field = None; )*
        let mut extra = ::serde_json::Map::new();
        while let Some(key) = ::serde::de::MapAccess::next_key::<$crate::serde_util::Key<'_>>(&mut map)? {
            match key.as_str() {
                $( $key => { $crate::serde_util::visit_fields!(@read $kind, $field, map); } )*
                other => {
                    if tags.check(other)? {
                        ::serde::de::MapAccess::next_value::<::serde::de::IgnoredAny>(&mut map)?;
                    } else {
                        let v: ::serde_json::Value = ::serde::de::MapAccess::next_value(&mut map)?;
                        extra.insert(key.into_string(), v);
                    }
                }
            }
        }
        Ok($($ctor)::+ {
            $( $field: $crate::serde_util::visit_fields!(@finish $kind, $field, $key), )*
            extra,
        })
    }};
    (@read opt, $field:ident, $map:ident) => { $field = ::serde::de::MapAccess::next_value(&mut $map)? };
    (@read $kind:ident, $field:ident, $map:ident) => { $field = Some(::serde::de::MapAccess::next_value(&mut $map)?) };
    (@finish req, $field:ident, $key:literal) => { $field.ok_or_else(|| ::serde::de::Error::missing_field($key))? };
    (@finish opt, $field:ident, $key:literal) => { $field };
    (@finish dbl, $field:ident, $key:literal) => { $field };
    (@finish any, $field:ident, $key:literal) => { $field };
    (@finish def, $field:ident, $key:literal) => { $field.unwrap_or_default() };
}
pub(crate) use visit_fields;

/// `Deserialize` for a struct with an `extra` map, through [`visit_fields!`]; also defines
/// `fn visit_fields(map, tags)` on it, for enclosing visitors that consumed a tag key.
macro_rules! wire_struct {
    ($ty:ident { $($kind:ident $field:ident : $key:literal),* $(,)? }) => {
        impl $ty {
            #[allow(dead_code)]
            pub(crate) fn visit_fields<'de, A: ::serde::de::MapAccess<'de>>(
                map: A,
                tags: $crate::serde_util::Tags,
            ) -> Result<Self, A::Error> {
                $crate::serde_util::visit_fields!(map, tags, $ty { $($kind $field : $key),* })
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $ty {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> ::serde::de::Visitor<'de> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                        f.write_str(concat!("struct ", stringify!($ty)))
                    }
                    fn visit_map<A: ::serde::de::MapAccess<'de>>(self, map: A) -> Result<$ty, A::Error> {
                        $ty::visit_fields(map, $crate::serde_util::Tags::NONE)
                    }
                }
                d.deserialize_map(V)
            }
        }
    };
}
pub(crate) use wire_struct;

/// A tagged enum (`{"<TAG>": "<variant>", …}`) with a catch-all variant for unknown tags and for
/// known tags whose fields do not fit; see [`fast_mode`] for the two strategies.
pub(crate) trait Tagged: Sized {
    /// The tag key, as a one-element list (for [`Tags`]).
    const TAG: &'static [&'static str];
    /// Used in error messages.
    const NAME: &'static str;
    /// The variant for `tag` from the rest of the map (tag keys handled by `tags`), or `None`
    /// (the map untouched) when the tag is unknown.
    fn visit_variant<'de, A: serde::de::MapAccess<'de>>(
        tag: &str,
        map: A,
        tags: Tags,
    ) -> Result<Option<Self>, A::Error>;
    /// The catch-all variant.
    fn catch_all(value: serde_json::Value) -> Self;

    /// Types `value` the tolerant way: the variant when the tag is known and the fields fit,
    /// else the catch-all holding `value`.
    fn from_value_tolerant(value: serde_json::Value) -> Self {
        use serde::Deserializer as _;
        let typed = match value.get(Self::TAG[0]) {
            Some(serde_json::Value::String(tag)) => (&value)
                .deserialize_map(SlowVariant::<Self>(tag, std::marker::PhantomData))
                .ok()
                .flatten(),
            _ => None,
        };
        typed.unwrap_or_else(|| Self::catch_all(value))
    }
}

struct SlowVariant<'a, T>(&'a str, std::marker::PhantomData<T>);

impl<'de, T: Tagged> serde::de::Visitor<'de> for SlowVariant<'_, T> {
    type Value = Option<T>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a {} object", T::NAME)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Option<T>, A::Error> {
        T::visit_variant(self.0, map, Tags::skip(T::TAG))
    }
}

struct FastTagged<T>(std::marker::PhantomData<T>);

impl<'de, T: Tagged> serde::de::Visitor<'de> for FastTagged<T> {
    type Value = T;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a {} object", T::NAME)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        // The CLI mostly writes the tag first; keys before it (a `tool_result`'s `tool_use_id`)
        // are held as values and replayed ahead of the rest.
        let mut before: Vec<(String, serde_json::Value)> = Vec::new();
        let tag = loop {
            match map.next_key::<Key<'_>>()? {
                Some(k) if k.as_str() == T::TAG[0] => break map.next_value::<Key<'_>>()?,
                Some(k) => {
                    let v = map.next_value()?;
                    before.push((k.into_string(), v));
                }
                None => {
                    return Ok(T::catch_all(serde_json::Value::Object(
                        before.into_iter().collect(),
                    )));
                }
            }
        };
        let mut replay = Replay {
            before: before.into_iter(),
            pending: None,
            rest: &mut map,
        };
        if let Some(t) = T::visit_variant(tag.as_str(), &mut replay, Tags::consumed(T::TAG))? {
            return Ok(t);
        }
        // An unknown tag: `visit_variant` read nothing, so `replay` still holds every entry.
        let mut m: serde_json::Map<String, serde_json::Value> = replay.before.collect();
        m.insert(
            T::TAG[0].to_owned(),
            serde_json::Value::String(tag.into_string()),
        );
        while let Some((k, v)) = map.next_entry::<String, serde_json::Value>()? {
            m.insert(k, v);
        }
        Ok(T::catch_all(serde_json::Value::Object(m)))
    }
}

/// A map read as: the entries held in `before`, then the rest of `rest`.
struct Replay<'a, A> {
    before: std::vec::IntoIter<(String, serde_json::Value)>,
    pending: Option<serde_json::Value>,
    rest: &'a mut A,
}

impl<'de, A: serde::de::MapAccess<'de>> serde::de::MapAccess<'de> for Replay<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: serde::de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        use serde::de::IntoDeserializer;
        match self.before.next() {
            Some((k, v)) => {
                self.pending = Some(v);
                seed.deserialize(k.into_deserializer()).map(Some)
            }
            None => self.rest.next_key_seed(seed),
        }
    }

    fn next_value_seed<V: serde::de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, A::Error> {
        use serde::de::Error;
        match self.pending.take() {
            Some(v) => seed.deserialize(v).map_err(A::Error::custom),
            None => self.rest.next_value_seed(seed),
        }
    }
}

/// `Deserialize::deserialize` for a [`Tagged`] enum.
pub(crate) fn deserialize_tagged<'de, T: Tagged, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<T, D::Error> {
    use serde::Deserialize as _;
    if fast_mode() {
        d.deserialize_map(FastTagged::<T>(std::marker::PhantomData))
    } else {
        let v = serde_json::Value::deserialize(d)?;
        Ok(T::from_value_tolerant(v))
    }
}

/// The JSON type name of a value, for error messages.
pub(crate) fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// JSON equality where numbers compare by value: `1`, `1.0` and `1e0` are the same number (the
/// CLI writes numbers as JavaScript does; other writers may not). Everything else compares
/// exactly, including object key sets.
pub(crate) fn json_equivalent(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x == y || matches!((x.as_f64(), y.as_f64()), (Some(p), Some(q)) if p == q)
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_equivalent(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equivalent(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod equivalence_tests {
    use serde_json::json;

    #[test]
    fn numbers_compare_by_value_and_nothing_else_is_loosened() {
        assert!(super::json_equivalent(
            &json!({"a": [1.0, 2]}),
            &json!({"a": [1, 2.0]})
        ));
        assert!(!super::json_equivalent(
            &json!({"a": 1}),
            &json!({"a": 1.5})
        ));
        assert!(!super::json_equivalent(
            &json!({"a": 1}),
            &json!({"a": "1"})
        ));
        assert!(!super::json_equivalent(
            &json!({"a": 1}),
            &json!({"a": 1, "b": null})
        ));
    }
}
