//! Kubernetes resource quantities (`"500m"`, `"1.5Gi"`, `"2"`, `"1e3"`), parsed to a value that
//! compares: the `*_overwrite_max_allowed` gates compare a job's requested quantity with the
//! configured maximum, and `cpu_request` must not exceed `cpu_limit`.
//!
//! Grammar (k8s.io/apimachinery `resource.Quantity`):
//! `[+-] digits[.digits] ( Ki|Mi|Gi|Ti|Pi|Ei | m|k|M|G|T|P|E | (e|E)[+-]digits )?`.
//! Values are held exactly in units of 10⁻⁹; finer fractions round up, as Kubernetes does.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

const NANOS_PER_UNIT_EXPONENT: i32 = 9;
/// Large enough for any real resource (exabytes in nano units fit with room to spare).
const MAX_DIGITS: usize = 30;

/// A parsed quantity. It keeps the text it was written as (what goes into the Pod spec) and
/// its exact value (what comparisons use): `"1Gi" == "1073741824"`.
#[derive(Clone)]
pub struct Quantity {
    text: String,
    nanos: i128,
}

/// Why a text is not a quantity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a valid Kubernetes quantity{detail}")]
pub struct QuantityError {
    text: String,
    detail: &'static str,
}

impl Quantity {
    /// Parses a quantity; see the module doc for the grammar.
    pub fn parse(text: &str) -> Result<Self, QuantityError> {
        let invalid = |detail: &'static str| QuantityError {
            text: text.to_owned(),
            detail,
        };
        let (negative, unsigned) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let number_len = unsigned
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(unsigned.len());
        let (number, suffix) = unsigned.split_at(number_len);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
            return Err(invalid(""));
        }
        let digits = format!("{whole}{fraction}");
        let digits = digits.trim_start_matches('0');
        if digits.len() > MAX_DIGITS {
            return Err(invalid(" (too many digits)"));
        }
        let mantissa: i128 = if digits.is_empty() {
            0
        } else {
            digits.parse().map_err(|_| invalid(""))?
        };
        let (power_of_two, power_of_ten) = suffix_scale(suffix).ok_or_else(|| invalid(""))?;
        let exponent = power_of_ten + NANOS_PER_UNIT_EXPONENT - fraction.len() as i32;
        let magnitude = scale(mantissa, power_of_two, exponent).ok_or_else(|| invalid(" (too large)"))?;
        Ok(Self {
            text: text.to_owned(),
            nanos: if negative { -magnitude } else { magnitude },
        })
    }

    /// The quantity as written in the file.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The exact value in units of 10⁻⁹ (nano-cores, nano-bytes).
    pub fn nanos(&self) -> i128 {
        self.nanos
    }

    /// The value in thousandths, rounded up: millicores for CPU.
    pub fn millis_ceil(&self) -> i128 {
        div_ceil(self.nanos, 1_000_000)
    }

    /// The value in whole units, rounded up: bytes for memory and storage.
    pub fn units_ceil(&self) -> i128 {
        div_ceil(self.nanos, 1_000_000_000)
    }

    pub fn is_negative(&self) -> bool {
        self.nanos < 0
    }
}

/// (power of two, power of ten) a suffix multiplies by; `None` for an unknown suffix.
fn suffix_scale(suffix: &str) -> Option<(u32, i32)> {
    let scale = match suffix {
        "" => (0, 0),
        "Ki" => (10, 0),
        "Mi" => (20, 0),
        "Gi" => (30, 0),
        "Ti" => (40, 0),
        "Pi" => (50, 0),
        "Ei" => (60, 0),
        "m" => (0, -3),
        "k" => (0, 3),
        "M" => (0, 6),
        "G" => (0, 9),
        "T" => (0, 12),
        "P" => (0, 15),
        "E" => (0, 18),
        _ => {
            let exponent = suffix.strip_prefix('e').or_else(|| suffix.strip_prefix('E'))?;
            let digits = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 3 {
                return None;
            }
            (0, exponent.parse().ok()?)
        }
    };
    Some(scale)
}

/// `mantissa × 2^power_of_two × 10^power_of_ten`, rounded up, or `None` on overflow.
fn scale(mantissa: i128, power_of_two: u32, power_of_ten: i32) -> Option<i128> {
    let shifted = mantissa.checked_mul(1i128.checked_shl(power_of_two)?)?;
    if mantissa == 0 {
        return Some(0);
    }
    if power_of_ten >= 0 {
        shifted.checked_mul(10i128.checked_pow(power_of_ten as u32)?)
    } else {
        // Anything below 10⁻³⁸ of a nano unit rounds up to one nano unit.
        match 10i128.checked_pow(power_of_ten.unsigned_abs()) {
            Some(divisor) => Some(div_ceil(shifted, divisor)),
            None => Some(1),
        }
    }
}

fn div_ceil(value: i128, divisor: i128) -> i128 {
    let quotient = value / divisor;
    if value % divisor > 0 {
        quotient + 1
    } else {
        quotient
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}

impl Eq for Quantity {}

impl Hash for Quantity {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.nanos.hash(state);
    }
}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Quantity({:?})", self.text)
    }
}

impl std::str::FromStr for Quantity {
    type Err = QuantityError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

struct QuantityVisitor;

impl Visitor<'_> for QuantityVisitor {
    type Value = Quantity;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Kubernetes quantity such as \"500m\" or \"1Gi\"")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Quantity, E> {
        Quantity::parse(value).map_err(E::custom)
    }

    // The official runner only takes strings; a bare number (`cpu_limit = 2`) is clear enough to accept.
    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Quantity, E> {
        self.visit_str(&value.to_string())
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Quantity, E> {
        self.visit_str(&value.to_string())
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Quantity, E> {
        self.visit_str(&value.to_string())
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(QuantityVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(text: &str) -> Quantity {
        Quantity::parse(text).unwrap_or_else(|error| panic!("{error}"))
    }

    #[test]
    fn parses_every_suffix_family() {
        assert_eq!(q("500m").millis_ceil(), 500);
        assert_eq!(q("2").millis_ceil(), 2000);
        assert_eq!(q("0.5").millis_ceil(), 500);
        assert_eq!(q("1Gi").units_ceil(), 1 << 30);
        assert_eq!(q("100Mi").units_ceil(), 100 << 20);
        assert_eq!(q("1k").units_ceil(), 1000);
        assert_eq!(q("1.5G").units_ceil(), 1_500_000_000);
        assert_eq!(q("1e3").units_ceil(), 1000);
        assert_eq!(q("1E3").units_ceil(), 1000);
        assert_eq!(q("1E").units_ceil(), 10i128.pow(18));
        assert_eq!(q("1Ei").units_ceil(), 1i128 << 60);
        assert_eq!(q(".5").millis_ceil(), 500);
        assert_eq!(q("5.").units_ceil(), 5);
        assert_eq!(q("+1").units_ceil(), 1);
        assert!(q("-1").is_negative());
    }

    #[test]
    fn compares_by_value_not_by_text() {
        assert_eq!(q("1Gi"), q("1073741824"));
        assert_eq!(q("1000m"), q("1"));
        assert!(q("500m") < q("1"));
        assert!(q("1Gi") > q("1G"));
        assert!(q("2") > q("1999m"));
        assert_eq!(q("1Gi").as_str(), "1Gi");
    }

    #[test]
    fn rounds_sub_nano_fractions_up() {
        assert_eq!(q("0.0000000001").nanos(), 1);
        assert_eq!(q("1.5m").millis_ceil(), 2);
    }

    #[test]
    fn refuses_malformed_quantities() {
        for bad in [
            "2x", "", "Gi", "1 Gi", "1GI", "1.2.3", "1e", "e3", "1ki", "--1", "1e1000", "abc", "1Gi ", " 1",
        ] {
            let error = Quantity::parse(bad).unwrap_err();
            assert!(
                error.to_string().contains("is not a valid Kubernetes quantity"),
                "{bad}: {error}"
            );
        }
        assert_eq!(
            Quantity::parse("2x").unwrap_err().to_string(),
            "\"2x\" is not a valid Kubernetes quantity"
        );
        assert!(Quantity::parse("99999999999999999999999999999999E")
            .unwrap_err()
            .to_string()
            .contains("too"));
    }

    #[test]
    fn serde_keeps_the_text_and_accepts_bare_numbers() {
        #[derive(serde::Deserialize, serde::Serialize)]
        struct Holder {
            cpu: Quantity,
            memory: Quantity,
        }
        let holder: Holder = toml::from_str("cpu = 2\nmemory = \"1Gi\"").unwrap();
        assert_eq!(holder.cpu.as_str(), "2");
        assert_eq!(serde_json::to_string(&holder).unwrap(), r#"{"cpu":"2","memory":"1Gi"}"#);
        let error = toml::from_str::<Holder>("cpu = \"2x\"\nmemory = \"1\"")
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("\"2x\" is not a valid Kubernetes quantity"), "{error}");
    }
}
