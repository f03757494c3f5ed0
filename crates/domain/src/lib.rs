//! Heliograph's vocabulary and rules, with no I/O.
//!
//! Everything here is a plain value: identifiers, the Statuspage status
//! enumerations and how they combine into a page indicator, and the parsed
//! forms of user input (`Slug`, `EmailAddress`, …). Other crates turn bytes
//! into these types at their edges, so code inside can rely on them.

pub mod ids;
pub mod status;
pub mod tz;
pub mod validate;

pub use ids::*;
pub use status::{
    Channel, ComponentStatus, DomainCheckError, DomainStatus, Impact, IncidentStatus, PageStatus,
    Role, UnknownVariant, Visibility,
};
pub use tz::{TimeZoneName, day_bounds, local_date, local_to_utc, offset_at, utc_to_local};
pub use validate::{EmailAddress, EndpointUrl, FieldError, Name, Password, PhoneNumber, Slug};

pub mod uptime;
pub mod urls;
pub use urls::PublicUrls;

pub mod events;
pub use events::EventKind;

pub mod sms;
pub use sms::{CallingCode, SmsCountries, number_range};

pub mod custom_domain;
pub use custom_domain::{
    CheckRules, ClaimRefusal, CustomDomains, DomainState, Hostname, PendingClaims, StateInWords,
};

pub mod incident;
pub use incident::{
    AffectedComponent, Incident, IncidentChange, IncidentEdit, IncidentKind, IncidentUpdate,
    NewIncident, Refusal, Schedule,
};
pub mod statuspage;
pub mod visibility;
pub use visibility::{Audience, IncidentFacts, Sight};

pub mod delivery;
pub use delivery::{
    AttemptOutcome, DeliveryAttempt, DeliveryHealth, DeliveryRecord, DeliveryStatus, DeliveryStep,
    QUARANTINE_AFTER,
};

pub mod subscriber;
pub use subscriber::{
    CodeVerdict, HttpChannel, MAX_WRONG_CODES, ResendRefusal, Subscriber, Subscription,
    SubscriptionState, Target,
};

pub mod team;
pub use team::{
    ApiKey, ApiKeyScope, Invitation, InvitationProblem, RoleChange, TeamMember, TeamProblem,
};

pub mod template;
pub use template::IncidentTemplate;

pub mod component;
pub use component::{Component, ComponentEdit, ComponentGroup, GroupEdit, NewComponent};

pub mod page;
pub use page::{Page, PageData, PageEdit, PageRef, PageRoute, SmsCheck, Tenant};

pub mod uptime_request;

pub mod page_domain;
pub use page_domain::{CustomDomain, RoutableDomain};

pub mod tone;
pub use tone::{STATUS_COLOURS, impact_tone, incident_tone, tone_hex};

pub mod plan;
pub use plan::{Limit, Limits, PlanLimit, Standing, SubscriptionStatus};
