//! Subscribers: who asked to be notified, where they are reached, and the
//! life of a subscription (unconfirmed → active → unsubscribed or
//! quarantined → reactivated), including the rule for wrong SMS codes.
//!
//! It does not own how a subscriber's secrets are sealed (the auth crate
//! does), nor the run of failing deliveries (see [`crate::delivery`]).

use time::OffsetDateTime;
use uuid::Uuid;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::UnknownVariant;
use crate::status::wire_enum;
use crate::{Channel, ComponentId, EmailAddress, EndpointUrl, PageId, PhoneNumber, SubscriberId};

/// Someone who asked to be notified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    /// Identifier.
    pub id: SubscriberId,
    /// The page.
    pub page_id: PageId,
    /// How they are reached.
    pub channel: Channel,
    /// Email address, for the email channel.
    pub email: Option<String>,
    /// Phone number (E.164), for the SMS channel.
    pub phone_number: Option<String>,
    /// URL, for the webhook channel; for Slack and Teams, what answers may
    /// show of it (the URL itself is sealed).
    pub endpoint: Option<String>,
    /// When the last confirmation (link, code, ping) was sent.
    pub confirmation_sent_at: Option<OffsetDateTime>,
    /// Wrong SMS codes entered since then.
    pub confirmation_attempts: i32,
    /// When they confirmed (or were added confirmed by the team).
    pub confirmed_at: Option<OffsetDateTime>,
    /// When deliveries to them were suspended for failing.
    pub quarantined_at: Option<OffsetDateTime>,
    /// Components followed; empty means all.
    pub component_ids: Vec<ComponentId>,
    /// The id the public SMS code form names (SMS subscribers only): random,
    /// unlike the row's id, and never shown to the team.
    pub sms_handle: Option<Uuid>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

impl Subscriber {
    /// Where the subscription stands (a listed subscriber has not left).
    #[must_use]
    pub const fn state(&self) -> SubscriptionState {
        Subscription {
            confirmed_at: self.confirmed_at,
            quarantined_at: self.quarantined_at,
            unsubscribed_at: None,
        }
        .state()
    }
}

/// Why a confirmation is not sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResendRefusal {
    /// The subscriber has confirmed already.
    AlreadyConfirmed,
    /// The last one went out too recently: the next may go after this wait.
    TooSoon(time::Duration),
}

impl Subscriber {
    /// Whether the team may send the confirmation again at `now`: only to
    /// an unconfirmed subscriber, and no sooner than `every` after the last.
    pub fn resend_confirmation(
        &self,
        now: OffsetDateTime,
        every: time::Duration,
    ) -> Result<(), ResendRefusal> {
        if self.confirmed_at.is_some() {
            return Err(ResendRefusal::AlreadyConfirmed);
        }
        match self.confirmation_sent_at {
            Some(sent) if every - (now - sent) > time::Duration::ZERO => {
                Err(ResendRefusal::TooSoon(every - (now - sent)))
            }
            _ => Ok(()),
        }
    }
}

/// Where a subscriber is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An inbox.
    Email(EmailAddress),
    /// A phone, by SMS.
    Sms(PhoneNumber),
    /// An HTTP endpoint: a signed webhook, or a Slack or Teams incoming webhook.
    Http(HttpChannel, EndpointUrl),
}

/// The channels that post to a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpChannel {
    /// Statuspage's webhook envelope, signed (Standard Webhooks).
    Webhook,
    /// A Slack incoming webhook.
    Slack,
    /// A Microsoft Teams incoming webhook.
    Teams,
}

impl Target {
    /// The channel it is reached on.
    #[must_use]
    pub const fn channel(&self) -> Channel {
        match self {
            Self::Email(_) => Channel::Email,
            Self::Sms(_) => Channel::Sms,
            Self::Http(HttpChannel::Webhook, _) => Channel::Webhook,
            Self::Http(HttpChannel::Slack, _) => Channel::Slack,
            Self::Http(HttpChannel::Teams, _) => Channel::Teams,
        }
    }

    /// Whether the URL is a credential, sealed before it is stored (Slack
    /// and Teams incoming webhooks: whoever holds one posts to that channel).
    #[must_use]
    pub const fn is_sealed(&self) -> bool {
        matches!(self, Self::Http(HttpChannel::Slack | HttpChannel::Teams, _))
    }

    /// Whether the subscriber confirms with a code typed into a public form
    /// (SMS), which names them by a random handle of its own.
    #[must_use]
    pub const fn confirms_by_code(&self) -> bool {
        matches!(self, Self::Sms(_))
    }
}

wire_enum!(
    /// Where a subscription stands (Statuspage's subscriber `state`).
    SubscriptionState {
        /// Awaiting confirmation: receives nothing but its confirmation.
        Unconfirmed => "unconfirmed",
        /// Confirmed: receives what it follows.
        Active => "active",
        /// Suspended for failing deliveries, until the team reactivates it.
        Quarantined => "quarantined",
        /// Ended by the subscriber (or its target): never listed again.
        Unsubscribed => "unsubscribed",
    }
);

/// The lifecycle columns of a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Subscription {
    /// When it was confirmed.
    pub confirmed_at: Option<OffsetDateTime>,
    /// When it was quarantined.
    pub quarantined_at: Option<OffsetDateTime>,
    /// When it ended.
    pub unsubscribed_at: Option<OffsetDateTime>,
}

impl Subscription {
    /// A new subscription at `at`: active at once when the team adds it
    /// (`confirmed`), otherwise awaiting confirmation.
    #[must_use]
    pub fn new(confirmed: bool, at: OffsetDateTime) -> Self {
        Self {
            confirmed_at: confirmed.then_some(at),
            ..Self::default()
        }
    }

    /// Where it stands: ended first, then quarantined, then by confirmation.
    #[must_use]
    pub const fn state(&self) -> SubscriptionState {
        if self.unsubscribed_at.is_some() {
            SubscriptionState::Unsubscribed
        } else if self.quarantined_at.is_some() {
            SubscriptionState::Quarantined
        } else if self.confirmed_at.is_some() {
            SubscriptionState::Active
        } else {
            SubscriptionState::Unconfirmed
        }
    }

    /// Whether a delivery already made for it is still wanted: not ended
    /// and not quarantined since (an unconfirmed one gets its confirmation).
    #[must_use]
    pub const fn wants_deliveries(&self) -> bool {
        self.unsubscribed_at.is_none() && self.quarantined_at.is_none()
    }

    /// Confirmed at `at` (a link, a right code, an endpoint answering its
    /// ping); `None` when there is nothing to confirm: it ended, or was
    /// confirmed already.
    #[must_use]
    pub fn confirmed(self, at: OffsetDateTime) -> Option<Self> {
        (self.unsubscribed_at.is_none() && self.confirmed_at.is_none()).then_some(Self {
            confirmed_at: Some(at),
            ..self
        })
    }

    /// Ended at `at`; `None` when it had ended already.
    #[must_use]
    pub fn unsubscribed(self, at: OffsetDateTime) -> Option<Self> {
        self.unsubscribed_at.is_none().then_some(Self {
            unsubscribed_at: Some(at),
            ..self
        })
    }

    /// Out of quarantine, by the team; `None` when it is not quarantined
    /// or has ended.
    #[must_use]
    pub fn reactivated(self) -> Option<Self> {
        (self.unsubscribed_at.is_none() && self.quarantined_at.is_some()).then_some(Self {
            quarantined_at: None,
            ..self
        })
    }
}

/// Wrong SMS codes allowed per code sent; the next try locks the code.
pub const MAX_WRONG_CODES: i32 = 5;

/// What a try at an SMS code comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeVerdict {
    /// The code is right: the subscription is confirmed.
    Confirm,
    /// The code is wrong; another try is allowed.
    Wrong,
    /// Too many tries: this code no longer works, a new one must be sent.
    Locked,
}

/// The verdict on a try at an SMS code, the `tries`-th since the code was
/// sent (this one counted), `right` saying whether it matches. Tries are
/// counted before the code is checked, so a right code after
/// [`MAX_WRONG_CODES`] wrong ones is refused too: guessing gets no more
/// than that many chances per code.
#[must_use]
pub const fn code_verdict(tries: i32, right: bool) -> CodeVerdict {
    if tries > MAX_WRONG_CODES {
        CodeVerdict::Locked
    } else if right {
        CodeVerdict::Confirm
    } else if tries >= MAX_WRONG_CODES {
        CodeVerdict::Locked
    } else {
        CodeVerdict::Wrong
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const AT: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);
    const LATER: OffsetDateTime = datetime!(2026-03-02 12:00 UTC);

    #[test]
    fn a_subscription_added_by_the_team_is_active_at_once() {
        assert_eq!(
            Subscription::new(true, AT).state(),
            SubscriptionState::Active
        );
        assert_eq!(Subscription::new(true, AT).confirmed_at, Some(AT));
        assert_eq!(
            Subscription::new(false, AT).state(),
            SubscriptionState::Unconfirmed
        );
    }

    #[test]
    fn confirming_activates_once_and_never_an_ended_subscription() {
        let new = Subscription::new(false, AT);
        let active = new.confirmed(AT).expect("an unconfirmed one confirms");
        assert_eq!(active.state(), SubscriptionState::Active);
        assert_eq!(active.confirmed(LATER), None, "confirmed already");
        let gone = new.unsubscribed(AT).expect("a live one ends");
        assert_eq!(gone.confirmed(LATER), None);
    }

    #[test]
    fn unsubscribing_ends_once() {
        let active = Subscription::new(true, AT);
        let gone = active.unsubscribed(LATER).expect("a live one ends");
        assert_eq!(gone.state(), SubscriptionState::Unsubscribed);
        assert_eq!(gone.unsubscribed_at, Some(LATER));
        assert_eq!(gone.unsubscribed(AT), None);
        assert!(!gone.wants_deliveries());
    }

    #[test]
    fn only_a_live_quarantined_subscription_is_reactivated() {
        let quarantined = Subscription {
            quarantined_at: Some(AT),
            ..Subscription::new(true, AT)
        };
        assert_eq!(quarantined.state(), SubscriptionState::Quarantined);
        assert!(!quarantined.wants_deliveries());
        let back = quarantined
            .reactivated()
            .expect("a quarantined one comes back");
        assert_eq!(back.state(), SubscriptionState::Active);
        assert!(back.wants_deliveries());
        assert_eq!(back.reactivated(), None, "not quarantined");
        let gone = quarantined.unsubscribed(LATER).unwrap();
        assert_eq!(gone.reactivated(), None, "ended");
    }

    #[test]
    fn an_unconfirmed_subscription_still_wants_its_confirmation() {
        assert!(Subscription::new(false, AT).wants_deliveries());
    }

    #[test]
    fn wrong_codes_lock_after_the_fifth_and_a_right_code_then_is_refused() {
        for tries in 1..MAX_WRONG_CODES {
            assert_eq!(code_verdict(tries, false), CodeVerdict::Wrong);
        }
        assert_eq!(code_verdict(MAX_WRONG_CODES, false), CodeVerdict::Locked);
        assert_eq!(code_verdict(MAX_WRONG_CODES, true), CodeVerdict::Confirm);
        assert_eq!(code_verdict(MAX_WRONG_CODES + 1, true), CodeVerdict::Locked);
        assert_eq!(code_verdict(1, true), CodeVerdict::Confirm);
    }

    fn subscriber(
        confirmed_at: Option<OffsetDateTime>,
        sent: Option<OffsetDateTime>,
    ) -> Subscriber {
        Subscriber {
            id: SubscriberId::new(),
            page_id: PageId::new(),
            channel: Channel::Email,
            email: Some("a@example.com".to_owned()),
            phone_number: None,
            endpoint: None,
            confirmation_sent_at: sent,
            confirmation_attempts: 0,
            confirmed_at,
            quarantined_at: None,
            component_ids: Vec::new(),
            sms_handle: None,
            created_at: AT,
            updated_at: AT,
        }
    }

    #[test]
    fn a_confirmation_is_sent_again_only_unconfirmed_and_not_too_soon() {
        let minute = time::Duration::minutes(1);
        assert_eq!(
            subscriber(Some(AT), None).resend_confirmation(LATER, minute),
            Err(ResendRefusal::AlreadyConfirmed)
        );
        let sent = subscriber(None, Some(AT));
        assert_eq!(
            sent.resend_confirmation(AT + time::Duration::seconds(20), minute),
            Err(ResendRefusal::TooSoon(time::Duration::seconds(40)))
        );
        assert_eq!(sent.resend_confirmation(AT + minute, minute), Ok(()));
        assert_eq!(
            subscriber(None, None).resend_confirmation(AT, minute),
            Ok(())
        );
        assert_eq!(sent.state(), SubscriptionState::Unconfirmed);
    }

    #[test]
    fn targets_say_their_channel_and_which_are_sealed() {
        let email = Target::Email(EmailAddress::parse("email", "a@example.com").unwrap());
        assert_eq!(email.channel(), Channel::Email);
        assert!(!email.is_sealed() && !email.confirms_by_code());
        let sms = Target::Sms(PhoneNumber::parse("phone_number", "+14155550100").unwrap());
        assert!(sms.confirms_by_code());
        let url = EndpointUrl::parse("endpoint", "https://hooks.example.com/x").unwrap();
        let slack = Target::Http(HttpChannel::Slack, url.clone());
        assert_eq!(slack.channel(), Channel::Slack);
        assert!(slack.is_sealed());
        assert!(!Target::Http(HttpChannel::Webhook, url).is_sealed());
    }
}
