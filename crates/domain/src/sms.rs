//! Where texts may go: country calling codes, the countries a page allows,
//! and the number ranges the platform's velocity limits count by.
//!
//! SMS pumping (toll fraud) makes a platform text numbers whose operators
//! share the fee with the fraudster: premium and satellite ranges, or whole
//! ranges of one small operator walked number by number. A page therefore
//! texts only the countries its team chose, by ITU-T E.164 calling code,
//! and only geographic codes can be chosen: the international networks
//! (`+881` satellite, `+882`/`+883`, `+888`, freephone `+800`, …) are the
//! classic targets and no status page needs them.

use std::fmt;

use serde::Serialize;

use crate::validate::{FieldError, PhoneNumber};

/// The geographic country calling codes of ITU-T E.164 (as assigned in
/// 2026). They form a prefix code: no code begins another, so a number has
/// at most one. `+1` covers the whole North American Numbering Plan (the
/// United States, Canada and the Caribbean), `+7` Russia and Kazakhstan.
const GEOGRAPHIC: &[&str] = &[
    "1", //
    "20", "211", "212", "213", "216", "218", "220", "221", "222", "223", "224", "225", "226",
    "227", "228", "229", "230", "231", "232", "233", "234", "235", "236", "237", "238", "239",
    "240", "241", "242", "243", "244", "245", "246", "247", "248", "249", "250", "251", "252",
    "253", "254", "255", "256", "257", "258", "260", "261", "262", "263", "264", "265", "266",
    "267", "268", "269", "27", "290", "291", "297", "298", "299", //
    "30", "31", "32", "33", "34", "350", "351", "352", "353", "354", "355", "356", "357", "358",
    "359", "36", "370", "371", "372", "373", "374", "375", "376", "377", "378", "380", "381",
    "382", "383", "385", "386", "387", "389", "39", //
    "40", "41", "420", "421", "423", "43", "44", "45", "46", "47", "48", "49", //
    "500", "501", "502", "503", "504", "505", "506", "507", "508", "509", "51", "52", "53", "54",
    "55", "56", "57", "58", "590", "591", "592", "593", "594", "595", "596", "597", "598", "599",
    //
    "60", "61", "62", "63", "64", "65", "66", "670", "672", "673", "674", "675", "676", "677",
    "678", "679", "680", "681", "682", "683", "685", "686", "687", "688", "689", "690", "691",
    "692", //
    "7",   //
    "81", "82", "84", "850", "852", "853", "855", "856", "86", "880", "886", //
    "90", "91", "92", "93", "94", "95", "960", "961", "962", "963", "964", "965", "966", "967",
    "968", "970", "971", "972", "973", "974", "975", "976", "977", "98", "992", "993", "994",
    "995", "996", "998",
];

/// A geographic country calling code, digits only (`"44"`, `"353"`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct CallingCode(String);

impl CallingCode {
    /// Parses a calling code given in `field`, with or without its `+`.
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, FieldError> {
        let digits = raw.trim();
        let digits = digits.strip_prefix('+').unwrap_or(digits);
        if GEOGRAPHIC.contains(&digits) {
            Ok(Self(digits.to_owned()))
        } else {
            Err(FieldError::new(
                field,
                "invalid",
                "must be a country calling code, such as 1, 44 or 353 (international networks \
                 such as +881 or +882 cannot be chosen)",
            ))
        }
    }

    /// The digits.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The code of `number`, if it is in a country (not an international network).
    #[must_use]
    pub fn of(number: &PhoneNumber) -> Option<Self> {
        let digits = number.as_str().trim_start_matches('+');
        GEOGRAPHIC
            .iter()
            .find(|code| digits.starts_with(**code))
            .map(|code| Self((*code).to_owned()))
    }
}

impl fmt::Display for CallingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "+{}", self.0)
    }
}

/// The countries a page texts: those of `allowed`, or, while it is empty,
/// the page's own (`home`); none when neither is set.
#[derive(Debug, Clone, Copy)]
pub struct SmsCountries<'a> {
    /// The page's own country.
    pub home: Option<&'a str>,
    /// The countries chosen by the team; empty: the page's own only.
    pub allowed: &'a [String],
}

impl SmsCountries<'_> {
    /// Whether a text may go to `number`.
    #[must_use]
    pub fn allow(&self, number: &PhoneNumber) -> bool {
        let Some(code) = CallingCode::of(number) else {
            return false;
        };
        if self.allowed.is_empty() {
            self.home == Some(code.as_str())
        } else {
            self.allowed.iter().any(|a| a == code.as_str())
        }
    }

    /// Whether any country at all is allowed.
    #[must_use]
    pub fn any(&self) -> bool {
        self.home.is_some() || !self.allowed.is_empty()
    }

    /// Why `number` is refused, in `field`, naming the countries allowed.
    #[must_use]
    pub fn refusal(&self, field: &'static str) -> FieldError {
        let list: Vec<String> = if self.allowed.is_empty() {
            self.home.iter().map(|h| format!("+{h}")).collect()
        } else {
            self.allowed.iter().map(|a| format!("+{a}")).collect()
        };
        let message = if list.is_empty() {
            "this page texts no country yet".to_owned()
        } else {
            format!("this page texts only numbers in {}", list.join(", "))
        };
        FieldError::new(field, "country_not_allowed", message)
    }
}

/// The range a number belongs to for the platform's velocity limits: the
/// number without its last `hidden` digits (at least its calling code and
/// one more digit stay), so that walking consecutive numbers of one
/// operator's block counts as one destination.
#[must_use]
pub fn number_range(number: &PhoneNumber, hidden: usize) -> String {
    let digits = number.as_str().trim_start_matches('+');
    let code = CallingCode::of(number).map_or(1, |c| c.as_str().len());
    let keep = digits
        .len()
        .saturating_sub(hidden)
        .max(code + 1)
        .min(digits.len());
    format!("+{}", &digits[..keep])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(raw: &str) -> PhoneNumber {
        PhoneNumber::parse("p", raw).unwrap()
    }

    #[test]
    fn geographic_codes_form_a_prefix_code() {
        for a in GEOGRAPHIC {
            assert!(a.chars().all(|c| c.is_ascii_digit()) && !a.starts_with('0'));
            for b in GEOGRAPHIC {
                assert!(a == b || !b.starts_with(a), "{a} begins {b}");
            }
        }
    }

    #[test]
    fn a_number_has_the_code_of_its_country_and_networks_have_none() {
        assert_eq!(
            CallingCode::of(&number("+14155550123")).unwrap().as_str(),
            "1"
        );
        assert_eq!(
            CallingCode::of(&number("+447700900123")).unwrap().as_str(),
            "44"
        );
        assert_eq!(
            CallingCode::of(&number("+35312345678")).unwrap().as_str(),
            "353"
        );
        for network in [
            "+88216123456",
            "+8819876543",
            "+80012345678",
            "+97912345678",
        ] {
            assert_eq!(CallingCode::of(&number(network)), None, "{network}");
        }
    }

    #[test]
    fn calling_codes_parse_with_or_without_a_plus_and_only_for_countries() {
        assert_eq!(CallingCode::parse("c", "+44").unwrap().as_str(), "44");
        assert_eq!(CallingCode::parse("c", " 1 ").unwrap().as_str(), "1");
        for bad in ["", "4", "0044", "882", "881", "800", "abc", "+", "4400"] {
            assert_eq!(
                CallingCode::parse("c", bad).unwrap_err().code,
                "invalid",
                "{bad}"
            );
        }
    }

    #[test]
    fn a_page_texts_its_own_country_until_it_lists_others() {
        let none: Vec<String> = vec![];
        let home = SmsCountries {
            home: Some("44"),
            allowed: &none,
        };
        assert!(home.allow(&number("+447700900123")));
        assert!(!home.allow(&number("+14155550123")));
        let listed = vec!["1".to_owned(), "353".to_owned()];
        let chosen = SmsCountries {
            home: Some("44"),
            allowed: &listed,
        };
        assert!(chosen.allow(&number("+14155550123")));
        assert!(chosen.allow(&number("+35312345678")));
        assert!(
            !chosen.allow(&number("+447700900123")),
            "the list replaces the default"
        );
        let unset = SmsCountries {
            home: None,
            allowed: &none,
        };
        assert!(!unset.any());
        assert!(!unset.allow(&number("+14155550123")));
        assert_eq!(
            chosen.refusal("phone_number").message,
            "this page texts only numbers in +1, +353"
        );
    }

    #[test]
    fn a_range_is_the_number_without_its_last_digits_but_keeps_its_country() {
        assert_eq!(number_range(&number("+14155550123"), 3), "+14155550");
        assert_eq!(number_range(&number("+14155550999"), 3), "+14155550");
        assert_eq!(number_range(&number("+447700900123"), 4), "+44770090");
        assert_eq!(number_range(&number("+35312345678"), 12), "+3531");
        assert_eq!(number_range(&number("+14155550123"), 0), "+14155550123");
    }
}
