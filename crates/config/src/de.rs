//! Small serde helpers shared by the configuration types: keyword enums with the error text
//! operators see, the official runner's "zero or less means the default" integers, and
//! "an empty string means unset" optional values (the official runner's `register` command
//! writes `namespace = ""`, `namespace_overwrite_allowed = ""`, … into every file).

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::{F64Deserializer, I64Deserializer, StrDeserializer, U64Deserializer};
use serde::de::{self, Deserialize, Deserializer, Visitor};

/// The error text for a keyword outside its set: `"sometimes" is not one of none, default`.
pub(crate) fn not_one_of(value: &str, allowed: &[&str]) -> String {
    format!("{value:?} is not one of {}", allowed.join(", "))
}

/// Declares a keyword enum: each variant is written as a string in files (aliases after `|`
/// are accepted too), and a string outside the set is refused with [`not_one_of`]'s text.
macro_rules! keyword_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$variant_meta:meta])* $variant:ident = $text:literal $(| $alias:literal)* ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        $vis enum $name {
            $( $(#[$variant_meta])* $variant ),+
        }

        impl $name {
            /// Every variant, in the order the documentation lists them.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The keyword as written in configuration files.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;

            fn from_str(text: &str) -> Result<Self, String> {
                match text {
                    $($text $(| $alias)* => Ok($name::$variant),)+
                    _ => Err($crate::de::not_one_of(text, &[$($text),+])),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <String as serde::Deserialize>::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

pub(crate) use keyword_enum;

/// `deserialize_with` for an optional value written as a string (or a bare number), where an
/// empty string means "not set", as in the official runner.
pub(crate) fn optional<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    deserializer.deserialize_option(OptionalVisitor(PhantomData))
}

struct OptionalVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for OptionalVisitor<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
        if value.is_empty() {
            return Ok(None);
        }
        T::deserialize(StrDeserializer::<E>::new(value)).map(Some)
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
        T::deserialize(I64Deserializer::<E>::new(value)).map(Some)
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
        T::deserialize(U64Deserializer::<E>::new(value)).map(Some)
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Self::Value, E> {
        T::deserialize(F64Deserializer::<E>::new(value)).map(Some)
    }
}

/// `deserialize_with` for the official runner's counters where zero or less means the
/// default (`poll_interval`, `check_interval`, `request_concurrency`, …).
pub(crate) fn positive_or<'de, D: Deserializer<'de>, const DEFAULT: u32>(deserializer: D) -> Result<u32, D::Error> {
    let value = i64::deserialize(deserializer)?;
    if value <= 0 {
        return Ok(DEFAULT);
    }
    u32::try_from(value).map_err(|_| de::Error::custom(format!("{value} is too large")))
}

/// `deserialize_with` for `token_obtained_at`/`token_expires_at`: `register` writes them as
/// TOML datetimes (`0001-01-01T00:00:00Z`), some documentation as strings; both are kept as text.
pub(crate) fn datetime_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    struct DatetimeVisitor;

    impl<'de> Visitor<'de> for DatetimeVisitor {
        type Value = Option<String>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a date-time")
        }

        fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
            Ok(Some(value.to_owned()))
        }

        // The toml crate hands a datetime over as a one-entry map holding its text.
        fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut text = None;
            while map.next_key::<de::IgnoredAny>()?.is_some() {
                text = Some(map.next_value::<String>()?);
            }
            Ok(text)
        }
    }

    deserializer.deserialize_any(DatetimeVisitor)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;
    use crate::quantity::Quantity;

    keyword_enum! {
        /// A test enum.
        pub enum Colour {
            Red = "red" | "Red",
            Green = "green",
        }
    }

    #[derive(Deserialize, Debug)]
    struct Holder {
        #[serde(default, deserialize_with = "optional")]
        colour: Option<Colour>,
        #[serde(default, deserialize_with = "optional")]
        quantity: Option<Quantity>,
        #[serde(default = "three", deserialize_with = "positive_or::<_, 3>")]
        interval: u32,
        #[serde(default, deserialize_with = "datetime_text")]
        at: Option<String>,
    }

    fn three() -> u32 {
        3
    }

    #[test]
    fn keywords_name_the_allowed_set() {
        assert_eq!("Red".parse::<Colour>(), Ok(Colour::Red));
        assert_eq!(
            "blue".parse::<Colour>().unwrap_err(),
            "\"blue\" is not one of red, green"
        );
        assert_eq!(Colour::Green.to_string(), "green");
        assert_eq!(Colour::ALL, [Colour::Red, Colour::Green]);
    }

    #[test]
    fn empty_strings_are_unset_and_numbers_are_accepted() {
        let holder: Holder = toml::from_str("colour = \"\"\nquantity = 2").unwrap();
        assert_eq!(holder.colour, None);
        assert_eq!(holder.quantity.unwrap().as_str(), "2");
        let holder: Holder = toml::from_str("colour = \"green\"").unwrap();
        assert_eq!(holder.colour, Some(Colour::Green));
    }

    #[test]
    fn zero_or_less_means_the_default() {
        assert_eq!(toml::from_str::<Holder>("interval = 0").unwrap().interval, 3);
        assert_eq!(toml::from_str::<Holder>("interval = -4").unwrap().interval, 3);
        assert_eq!(toml::from_str::<Holder>("interval = 7").unwrap().interval, 7);
        assert_eq!(toml::from_str::<Holder>("").unwrap().interval, 3);
    }

    #[test]
    fn datetimes_are_kept_as_text() {
        let holder: Holder = toml::from_str("at = 0001-01-01T00:00:00Z").unwrap();
        assert_eq!(holder.at.as_deref(), Some("0001-01-01T00:00:00Z"));
        let holder: Holder = toml::from_str("at = \"2024-01-01T00:00:00Z\"").unwrap();
        assert_eq!(holder.at.as_deref(), Some("2024-01-01T00:00:00Z"));
    }
}
