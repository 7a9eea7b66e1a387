//! The wire name of a unit enum variant, read from its `Serialize` derive, so that an enum's
//! `as_str` (status text, audit fields, flags) can never drift from its `#[serde(rename…)]`.
//!
//! Serde hands a unit variant's name, already renamed, to `Serializer::serialize_unit_variant`
//! as a `&'static str`; [`wire_name`] runs the derive against a serializer that only keeps that
//! string. Anything else (a variant with data, a struct) has no wire name and yields `"?"`,
//! which unit tests of each enum rule out.

use serde::Serialize;
use serde::ser::{Impossible, Serializer};

/// The name `value` (a unit variant of an enum deriving `Serialize`) has on the wire.
pub fn wire_name<T: Serialize>(value: &T) -> &'static str {
    value.serialize(NameOnly).unwrap_or("?")
}

/// Not a unit variant.
#[derive(Debug)]
struct NotUnitVariant;

impl std::fmt::Display for NotUnitVariant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not a unit variant")
    }
}

impl std::error::Error for NotUnitVariant {}

impl serde::ser::Error for NotUnitVariant {
    fn custom<M: std::fmt::Display>(_: M) -> Self {
        NotUnitVariant
    }
}

struct NameOnly;

macro_rules! refuse {
    ($($method:ident($($arg:ty),*);)*) => {
        $(fn $method(self, $(_: $arg),*) -> Result<Self::Ok, Self::Error> {
            Err(NotUnitVariant)
        })*
    };
}

impl Serializer for NameOnly {
    type Ok = &'static str;
    type Error = NotUnitVariant;
    type SerializeSeq = Impossible<&'static str, NotUnitVariant>;
    type SerializeTuple = Impossible<&'static str, NotUnitVariant>;
    type SerializeTupleStruct = Impossible<&'static str, NotUnitVariant>;
    type SerializeTupleVariant = Impossible<&'static str, NotUnitVariant>;
    type SerializeMap = Impossible<&'static str, NotUnitVariant>;
    type SerializeStruct = Impossible<&'static str, NotUnitVariant>;
    type SerializeStructVariant = Impossible<&'static str, NotUnitVariant>;

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<&'static str, NotUnitVariant> {
        Ok(variant)
    }

    refuse! {
        serialize_bool(bool);
        serialize_i8(i8);
        serialize_i16(i16);
        serialize_i32(i32);
        serialize_i64(i64);
        serialize_u8(u8);
        serialize_u16(u16);
        serialize_u32(u32);
        serialize_u64(u64);
        serialize_f32(f32);
        serialize_f64(f64);
        serialize_char(char);
        serialize_str(&str);
        serialize_bytes(&[u8]);
        serialize_none();
        serialize_unit();
        serialize_unit_struct(&'static str);
    }

    fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<&'static str, NotUnitVariant> {
        Err(NotUnitVariant)
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<&'static str, NotUnitVariant> {
        Err(NotUnitVariant)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<&'static str, NotUnitVariant> {
        Err(NotUnitVariant)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, NotUnitVariant> {
        Err(NotUnitVariant)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, NotUnitVariant> {
        Err(NotUnitVariant)
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, NotUnitVariant> {
        Err(NotUnitVariant)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, NotUnitVariant> {
        Err(NotUnitVariant)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, NotUnitVariant> {
        Err(NotUnitVariant)
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, NotUnitVariant> {
        Err(NotUnitVariant)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, NotUnitVariant> {
        Err(NotUnitVariant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Decision, Mode, PresenceEvent, ResolvePurpose, StartedBy};

    /// Each enum's `as_str` is its JSON string, for every variant.
    #[test]
    fn names_are_the_serde_names() {
        fn check<T: Serialize>(v: T, as_str: &str) {
            let json = serde_json::to_string(&v).expect("serializes");
            assert_eq!(json, format!("\"{as_str}\""));
            assert_ne!(as_str, "?");
        }
        for m in [Mode::Token, Mode::App, Mode::ServiceAccount, Mode::Connect] {
            check(m, m.as_str());
        }
        assert_eq!(Mode::ServiceAccount.as_str(), "service-account");
        for p in [
            ResolvePurpose::Read,
            ResolvePurpose::Run,
            ResolvePurpose::Inject,
        ] {
            check(p, p.as_str());
        }
        for d in [Decision::Allow, Decision::Deny] {
            check(d, d.as_str());
        }
        for e in [PresenceEvent::Sleep, PresenceEvent::ScreenLock] {
            check(e, e.as_str());
        }
        assert_eq!(PresenceEvent::ScreenLock.as_str(), "screen_lock");
        for s in [
            StartedBy::Manual,
            StartedBy::Autostart,
            StartedBy::Systemd,
            StartedBy::Launchd,
        ] {
            check(s, s.as_str());
        }
        assert_eq!(wire_name(&"a string"), "?");
    }
}
