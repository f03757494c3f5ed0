//! Status pages and tenants: what a page is, the changes that can be asked
//! of its settings and the rules they keep (which SMS settings take a
//! verified owner, how many countries a page may text, the uptime weight's
//! range), and where a public page lives.
//!
//! What a public page shows (components, incidents) and how its status is
//! computed are elsewhere in this crate; storing pages is the store's.

use time::OffsetDateTime;

use crate::{
    CallingCode, Component, ComponentGroup, FieldError, Incident, IncidentUpdate, Name, PageId,
    Slug, TenantId, TimeZoneName,
};

/// A customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// Identifier.
    pub id: TenantId,
    /// Unique slug; also the first page's slug.
    pub slug: Slug,
    /// Display name.
    pub name: String,
    /// Creation time.
    pub created_at: OffsetDateTime,
}

/// A public status page.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// Identifier.
    pub id: PageId,
    /// Owner.
    pub tenant_id: TenantId,
    /// Sub-domain label and `/status/<slug>` path.
    pub slug: Slug,
    /// Display name.
    pub name: String,
    /// The time zone the page shows times in.
    pub time_zone: TimeZoneName,
    /// A line shown under the page's name.
    pub headline: Option<String>,
    /// Where the page's readers get help.
    pub support_url: Option<String>,
    /// The tenant's logo (an https URL).
    pub logo_url: Option<String>,
    /// Accent colour, `#rrggbb`.
    pub brand_color: String,
    /// Background colour, `#rrggbb`.
    pub background_color: String,
    /// Text colour, `#rrggbb`.
    pub text_color: String,
    /// Whether readers may subscribe by email.
    pub allow_email_subscribers: bool,
    /// Whether readers may subscribe by SMS.
    pub allow_sms_subscribers: bool,
    /// Whether readers may subscribe with a webhook.
    pub allow_webhook_subscribers: bool,
    /// The calling code of the page's own country (`"44"`): where texts go
    /// while `sms_allowed_calling_codes` is empty.
    pub sms_calling_code: Option<String>,
    /// The countries texts may go to, by calling code; empty: the page's own.
    pub sms_allowed_calling_codes: Vec<String>,
    /// The share of partial-outage time counted as down in uptime.
    pub uptime_partial_weight: f64,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change to the page row itself.
    pub updated_at: OffsetDateTime,
}

/// Where a public page lives: its tenant and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRef {
    /// Owner.
    pub tenant_id: TenantId,
    /// The page.
    pub page_id: PageId,
}

/// A public page's address: its slug, and where it lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRoute {
    /// The page's slug.
    pub slug: Slug,
    /// Owner.
    pub tenant_id: TenantId,
    /// The page.
    pub page_id: PageId,
}

/// Changes to a page; `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PageEdit {
    /// New name.
    pub name: Option<Name>,
    /// New slug (sub-domain and path).
    pub slug: Option<Slug>,
    /// New time zone.
    pub time_zone: Option<TimeZoneName>,
    /// New headline.
    pub headline: Option<Option<String>>,
    /// New support URL.
    pub support_url: Option<Option<String>>,
    /// New logo URL.
    pub logo_url: Option<Option<String>>,
    /// New accent colour.
    pub brand_color: Option<String>,
    /// New background colour.
    pub background_color: Option<String>,
    /// New text colour.
    pub text_color: Option<String>,
    /// Email subscriptions on or off.
    pub allow_email_subscribers: Option<bool>,
    /// SMS subscriptions on or off.
    pub allow_sms_subscribers: Option<bool>,
    /// Webhook subscriptions on or off.
    pub allow_webhook_subscribers: Option<bool>,
    /// New calling code of the page's own country, or none.
    pub sms_calling_code: Option<Option<CallingCode>>,
    /// New list of the countries texts may go to.
    pub sms_allowed_calling_codes: Option<Vec<CallingCode>>,
    /// New partial-outage weight, in `[0, 1]`.
    pub uptime_partial_weight: Option<f64>,
}

/// What a page change asks of the tenant, as far as texting goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmsCheck {
    /// Nothing: the change leaves SMS alone, or leaves it off.
    Free,
    /// The tenant must have an owner whose address is verified (an
    /// unverified signup must not be able to text anyone, and a tenant
    /// whose verified owner left must not widen the countries); then the
    /// change passes, or is refused with this error when the page would
    /// text no country.
    VerifiedOwner(Result<(), FieldError>),
}

impl PageEdit {
    /// Whether this change turns SMS on for a page that did not text (or a
    /// new page): what a plan without texts refuses. A page already texting
    /// keeps texting after a move to such a plan; what it sends is counted
    /// against the plan's monthly texts.
    #[must_use]
    pub fn turns_sms_on(&self, before: Option<&Page>) -> bool {
        self.allow_sms_subscribers == Some(true) && !before.is_some_and(|p| p.allow_sms_subscribers)
    }

    /// The SMS rules this change must keep, given the page `before` it (none
    /// for a new page): turning SMS on, or changing where a page that texts
    /// texts, takes a verified owner, and a page that texts must text some
    /// country.
    #[must_use]
    pub fn sms_check(&self, before: Option<&Page>) -> SmsCheck {
        let touched = self.allow_sms_subscribers.is_some()
            || self.sms_calling_code.is_some()
            || self.sms_allowed_calling_codes.is_some();
        let was_on = before.is_some_and(|p| p.allow_sms_subscribers);
        if !touched || !self.allow_sms_subscribers.unwrap_or(was_on) {
            return SmsCheck::Free;
        }
        let home = match &self.sms_calling_code {
            Some(code) => code.is_some(),
            None => before.is_some_and(|p| p.sms_calling_code.is_some()),
        };
        let listed = match &self.sms_allowed_calling_codes {
            Some(codes) => !codes.is_empty(),
            None => before.is_some_and(|p| !p.sms_allowed_calling_codes.is_empty()),
        };
        SmsCheck::VerifiedOwner(if home || listed {
            Ok(())
        } else {
            Err(FieldError::new(
                "sms_calling_code",
                "missing",
                "give the page's country (its calling code, such as 44) to turn SMS on",
            ))
        })
    }
}

/// Most countries a page may text.
pub const MAX_CALLING_CODES: usize = 50;

/// The countries a page may text, as given in `field`: at most
/// [`MAX_CALLING_CODES`], each a calling code, sorted, each once. Answers
/// every code's error.
pub fn parse_calling_codes(
    field: &'static str,
    raw: &[String],
) -> Result<Vec<CallingCode>, Vec<FieldError>> {
    if raw.len() > MAX_CALLING_CODES {
        return Err(vec![FieldError::new(
            field,
            "too_many",
            format!("name at most {MAX_CALLING_CODES}"),
        )]);
    }
    let mut errors = Vec::new();
    let mut parsed: Vec<CallingCode> = raw
        .iter()
        .filter_map(|c| {
            CallingCode::parse(field, c)
                .map_err(|e| errors.push(e))
                .ok()
        })
        .collect();
    if !errors.is_empty() {
        return Err(errors);
    }
    parsed.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
    parsed.dedup();
    Ok(parsed)
}

/// The share of partial-outage time counted as down, as given in `field`:
/// between 0 and 1.
pub fn parse_partial_weight(field: &'static str, weight: f64) -> Result<f64, FieldError> {
    if (0.0..=1.0).contains(&weight) {
        Ok(weight)
    } else {
        Err(FieldError::new(field, "invalid", "must be between 0 and 1"))
    }
}

impl TimeZoneName {
    /// A zone name as stored: names are checked when set, so only a zone
    /// dropped from the time zone database since would fail, and a page
    /// must still show then; it shows UTC.
    #[must_use]
    pub fn stored(name: &str) -> Self {
        Self::parse("time_zone", name).unwrap_or_else(|_| Self::utc())
    }
}

/// Everything the public page and its JSON show.
#[derive(Debug, Clone)]
pub struct PageData {
    /// The page.
    pub page: Page,
    /// Its component groups, by position.
    pub groups: Vec<ComponentGroup>,
    /// Its components, by position.
    pub components: Vec<Component>,
    /// Open incidents, and maintenances scheduled or under way, newest first.
    pub active_incidents: Vec<(Incident, Vec<IncidentUpdate>)>,
    /// The page's history: its [`HISTORY_LIMIT`] most recent incidents and
    /// as many maintenances, any status, newest first within each kind.
    pub history: Vec<(Incident, Vec<IncidentUpdate>)>,
}

/// How many incidents (and, apart, maintenances) a page's public history holds.
pub const HISTORY_LIMIT: i64 = 100;

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn page(sms: bool, home: Option<&str>, listed: &[&str]) -> Page {
        Page {
            id: PageId::new(),
            tenant_id: TenantId::new(),
            slug: Slug::parse("slug", "acme").unwrap(),
            name: "Acme".into(),
            time_zone: TimeZoneName::utc(),
            headline: None,
            support_url: None,
            logo_url: None,
            brand_color: "#000000".into(),
            background_color: "#ffffff".into(),
            text_color: "#000000".into(),
            allow_email_subscribers: true,
            allow_sms_subscribers: sms,
            allow_webhook_subscribers: true,
            sms_calling_code: home.map(str::to_owned),
            sms_allowed_calling_codes: listed.iter().map(|c| (*c).to_owned()).collect(),
            uptime_partial_weight: 0.3,
            created_at: datetime!(2026-01-01 0:00 UTC),
            updated_at: datetime!(2026-01-01 0:00 UTC),
        }
    }

    fn code(c: &str) -> CallingCode {
        CallingCode::parse("code", c).unwrap()
    }

    #[test]
    fn a_change_that_leaves_sms_alone_or_off_asks_nothing() {
        let name = PageEdit {
            name: Some(Name::parse("name", "Acme", 255).unwrap()),
            ..PageEdit::default()
        };
        assert_eq!(name.sms_check(None), SmsCheck::Free);
        let off = PageEdit {
            allow_sms_subscribers: Some(false),
            ..PageEdit::default()
        };
        assert_eq!(
            off.sms_check(Some(&page(true, Some("44"), &[]))),
            SmsCheck::Free
        );
        // Setting countries on a page that does not text.
        let codes = PageEdit {
            sms_allowed_calling_codes: Some(vec![code("1")]),
            ..PageEdit::default()
        };
        assert_eq!(
            codes.sms_check(Some(&page(false, None, &[]))),
            SmsCheck::Free
        );
    }

    #[test]
    fn turning_sms_on_takes_a_verified_owner_and_a_country() {
        let on = PageEdit {
            allow_sms_subscribers: Some(true),
            ..PageEdit::default()
        };
        let SmsCheck::VerifiedOwner(Err(err)) = on.sms_check(None) else {
            panic!("a page with no country passed");
        };
        assert_eq!((err.field, err.code), ("sms_calling_code", "missing"));
        assert_eq!(
            on.sms_check(Some(&page(false, Some("44"), &[]))),
            SmsCheck::VerifiedOwner(Ok(()))
        );
        assert_eq!(
            on.sms_check(Some(&page(false, None, &["1"]))),
            SmsCheck::VerifiedOwner(Ok(()))
        );
        let with_home = PageEdit {
            sms_calling_code: Some(Some(code("49"))),
            ..on
        };
        assert_eq!(with_home.sms_check(None), SmsCheck::VerifiedOwner(Ok(())));
    }

    #[test]
    fn changing_where_a_texting_page_texts_takes_a_verified_owner() {
        let before = page(true, Some("44"), &[]);
        let widen = PageEdit {
            sms_allowed_calling_codes: Some(vec![code("1"), code("44")]),
            ..PageEdit::default()
        };
        assert_eq!(
            widen.sms_check(Some(&before)),
            SmsCheck::VerifiedOwner(Ok(()))
        );
        let clear_home = PageEdit {
            sms_calling_code: Some(None),
            ..PageEdit::default()
        };
        assert!(matches!(
            clear_home.sms_check(Some(&before)),
            SmsCheck::VerifiedOwner(Err(_))
        ));
    }

    #[test]
    fn calling_codes_come_sorted_once_each_and_at_most_fifty() {
        let raw: Vec<String> = ["44", "1", "44"].map(String::from).to_vec();
        let codes = parse_calling_codes("codes", &raw).unwrap();
        assert_eq!(
            codes.iter().map(CallingCode::as_str).collect::<Vec<_>>(),
            ["1", "44"]
        );
        let many: Vec<String> = (0..51).map(|_| "1".to_owned()).collect();
        let errs = parse_calling_codes("codes", &many).unwrap_err();
        assert_eq!(errs[0].code, "too_many");
        let bad: Vec<String> = ["x", "1", "y"].map(String::from).to_vec();
        assert_eq!(parse_calling_codes("codes", &bad).unwrap_err().len(), 2);
    }

    #[test]
    fn the_partial_weight_is_a_share() {
        assert_eq!(parse_partial_weight("w", 0.0), Ok(0.0));
        assert_eq!(parse_partial_weight("w", 1.0), Ok(1.0));
        assert!(parse_partial_weight("w", 1.01).is_err());
        assert!(parse_partial_weight("w", -0.1).is_err());
        assert!(parse_partial_weight("w", f64::NAN).is_err());
    }

    #[test]
    fn a_stored_zone_unknown_today_reads_as_utc() {
        assert_eq!(
            TimeZoneName::stored("Europe/Berlin").as_str(),
            "Europe/Berlin"
        );
        assert_eq!(
            TimeZoneName::stored("Mars/Olympus_Mons"),
            TimeZoneName::utc()
        );
    }
}
