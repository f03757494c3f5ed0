//! The fixed colours statuses are shown in, wherever they are shown: the
//! public page, the dashboard and the emails. One table, so a status looks
//! the same in a reader's inbox as on the page.
//!
//! They never depend on a tenant's branding: each carries white text, and
//! the public page's tests check that it reads (WCAG AA). Statuses always
//! carry words besides their colour.

use crate::{Impact, IncidentStatus, incident::is_closed};

/// The tones and their colours (`[r, g, b]`), each with white text on it.
pub const STATUS_COLOURS: [(&str, [u8; 3]); 6] = [
    ("ok", [0x1a, 0x7f, 0x37]),
    ("minor", [0x9a, 0x67, 0x00]),
    ("major", [0xbc, 0x4c, 0x00]),
    ("critical", [0xcf, 0x22, 0x2e]),
    ("maintenance", [0x09, 0x69, 0xda]),
    ("neutral", [0x59, 0x63, 0x6e]),
];

/// The name of the fixed colour an impact is shown in (`ok`, `minor`,
/// `major`, `critical`, `maintenance`): the public page's classes
/// (`tone-…`), which the dashboard and the emails share.
#[must_use]
pub const fn impact_tone(i: Impact) -> &'static str {
    match i {
        Impact::None => "ok",
        Impact::Minor => "minor",
        Impact::Major => "major",
        Impact::Critical => "critical",
        Impact::Maintenance => "maintenance",
    }
}

/// The tone of an incident in `status` with `impact`: a closed one is
/// over (`ok`), an open one shows its impact.
#[must_use]
pub const fn incident_tone(status: IncidentStatus, impact: Impact) -> &'static str {
    if is_closed(status) {
        "ok"
    } else {
        impact_tone(impact)
    }
}

/// `#rrggbb` of `tone`; an unknown tone is `neutral`'s.
#[must_use]
pub fn tone_hex(tone: &str) -> String {
    let [r, g, b] = STATUS_COLOURS
        .iter()
        .find(|(name, _)| *name == tone)
        .map_or(STATUS_COLOURS[5].1, |(_, rgb)| *rgb);
    format!("#{r:02x}{g:02x}{b:02x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tones_have_colours() {
        assert_eq!(tone_hex(impact_tone(Impact::None)), "#1a7f37");
        assert_eq!(tone_hex("nonsense"), "#59636e");
        assert_eq!(
            incident_tone(IncidentStatus::Resolved, Impact::Critical),
            "ok"
        );
        assert_eq!(
            incident_tone(IncidentStatus::Investigating, Impact::Major),
            "major"
        );
    }
}
