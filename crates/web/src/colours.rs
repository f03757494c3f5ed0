//! The page's colours: the tenant's branding, kept readable.
//!
//! A tenant picks its background, text and accent colours freely, and a
//! pair that cannot be read (grey on grey, yellow links on white) would lock
//! some readers out exactly when they need the page. So every pair that
//! carries text is checked against WCAG 2's contrast ratio (4.5:1 for body
//! text, level AA), and a colour that fails is replaced: the text by a dark
//! or light one, whichever reads; the accent by the nearest mix of it with
//! the text colour that reads. Statuses never depend on the tenant's
//! colours: they are white text on fixed colours checked here too, and
//! always carry words besides their colour.

use std::fmt;

/// Text must stand out from its background by at least this ratio (WCAG AA).
pub(crate) const MIN_CONTRAST: f64 = 4.5;

/// An sRGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rgb(pub u8, pub u8, pub u8);

pub(crate) const WHITE: Rgb = Rgb(0xff, 0xff, 0xff);
pub(crate) const BLACK: Rgb = Rgb(0, 0, 0);
/// Text on a light background when the tenant's does not read.
const DARK_TEXT: Rgb = Rgb(0x1f, 0x23, 0x28);
/// Text on a dark background when the tenant's does not read.
const LIGHT_TEXT: Rgb = Rgb(0xe6, 0xed, 0xf3);
/// The background of the dark variant, for tenants with a light page.
const DARK_BACKGROUND: Rgb = Rgb(0x0d, 0x11, 0x17);

impl Rgb {
    /// `#rrggbb` (either case); anything else is `None`.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        let hex = s.strip_prefix('#')?;
        if hex.len() != 6 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        let channel = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
        Some(Self(channel(0)?, channel(2)?, channel(4)?))
    }

    /// WCAG 2's relative luminance: 0 for black, 1 for white.
    pub(crate) fn luminance(self) -> f64 {
        let linear = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.040_45 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.0722f64.mul_add(
            linear(self.2),
            0.2126f64.mul_add(linear(self.0), 0.7152 * linear(self.1)),
        )
    }

    /// `self` moved towards `other` by `t` (0: `self`, 1: `other`).
    pub(crate) fn mix(self, other: Self, t: f64) -> Self {
        let t = t.clamp(0.0, 1.0);
        let channel = |a: u8, b: u8| {
            let v = (f64::from(b) - f64::from(a))
                .mul_add(t, f64::from(a))
                .round();
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "a mix of two channels lies between them, in 0..=255"
            )]
            let v = v.clamp(0.0, 255.0) as u8;
            v
        };
        Self(
            channel(self.0, other.0),
            channel(self.1, other.1),
            channel(self.2, other.2),
        )
    }

    fn is_dark(self) -> bool {
        // Where white text starts to read better than black.
        self.luminance() < 0.179
    }
}

impl fmt::Display for Rgb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }
}

/// WCAG 2's contrast ratio of two colours, from 1 (equal) to 21 (black on white).
pub(crate) fn contrast(a: Rgb, b: Rgb) -> f64 {
    let (la, lb) = (a.luminance(), b.luminance());
    (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
}

fn reads(fg: Rgb, bg: Rgb) -> bool {
    contrast(fg, bg) >= MIN_CONTRAST
}

/// Black or white, whichever reads better on `bg` (one always reads: the
/// worst background still gives 4.58:1).
pub(crate) fn black_or_white(bg: Rgb) -> Rgb {
    if contrast(BLACK, bg) >= contrast(WHITE, bg) {
        BLACK
    } else {
        WHITE
    }
}

/// The colours of one variant (light or dark) of a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Palette {
    /// The page's background.
    pub bg: Rgb,
    /// Body text.
    pub fg: Rgb,
    /// Secondary text (times, descriptions); still reads.
    pub muted: Rgb,
    /// Links, focus rings, the subscribe button.
    pub accent: Rgb,
    /// Text on the accent (the button's label).
    pub on_accent: Rgb,
    /// Borders and rules (not text).
    pub line: Rgb,
    /// The CSS `color-scheme` that matches, so form controls fit.
    pub scheme: &'static str,
}

impl Palette {
    /// The tenant's colours, each replaced when it would not read.
    pub(crate) fn new(bg: Rgb, wanted_fg: Rgb, wanted_accent: Rgb) -> Self {
        let fg = if reads(wanted_fg, bg) {
            wanted_fg
        } else {
            [DARK_TEXT, LIGHT_TEXT]
                .into_iter()
                .find(|c| reads(*c, bg))
                .unwrap_or_else(|| black_or_white(bg))
        };
        // The accent moves towards the text colour, which reads, until it
        // reads too: it keeps as much of the brand as legibility allows.
        let accent = (0..=10)
            .map(|step| wanted_accent.mix(fg, f64::from(step) / 10.0))
            .find(|c| reads(*c, bg))
            .unwrap_or(fg);
        let muted = [0.35, 0.25, 0.15]
            .into_iter()
            .map(|t| fg.mix(bg, t))
            .find(|c| reads(*c, bg))
            .unwrap_or(fg);
        Self {
            bg,
            fg,
            muted,
            accent,
            on_accent: black_or_white(accent),
            line: fg.mix(bg, 0.75),
            scheme: if bg.is_dark() { "dark" } else { "light" },
        }
    }
}

/// A page's colours: the tenant's, and a dark variant for readers who ask
/// for one (`prefers-color-scheme: dark`) when the tenant's page is light.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Theme {
    /// The tenant's colours, made readable.
    pub light: Palette,
    /// The dark variant; `None` when the tenant's page is dark already.
    pub dark: Option<Palette>,
}

impl Theme {
    /// From the page's `#rrggbb` settings; one that does not parse falls
    /// back to the default look.
    pub(crate) fn new(background: &str, text: &str, brand: &str) -> Self {
        let bg = Rgb::parse(background).unwrap_or(WHITE);
        let fg = Rgb::parse(text).unwrap_or(DARK_TEXT);
        let accent = Rgb::parse(brand).unwrap_or(Rgb(0x09, 0x69, 0xda));
        let light = Palette::new(bg, fg, accent);
        let dark = (!bg.is_dark()).then(|| Palette::new(DARK_BACKGROUND, LIGHT_TEXT, accent));
        Self { light, dark }
    }
}

/// The fixed colours of statuses (banner, badges, uptime days), each with
/// white text on it: the domain's table (which the emails share), as [`Rgb`].
pub(crate) const STATUS_COLOURS: [(&str, Rgb); 6] = {
    let table = heliograph_domain::STATUS_COLOURS;
    let mut out = [("", BLACK); 6];
    let mut i = 0;
    while i < table.len() {
        let (name, [r, g, b]) = table[i];
        out[i] = (name, Rgb(r, g, b));
        i += 1;
    }
    out
};

/// What the public page changes of a page's colours so its text reads, in
/// words, one sentence a colour; empty when they read as they are. It tells
/// the rule [`Theme::new`] applies (so the team sees what readers will),
/// rather than checking the colours a second way. Colours that are not
/// `#rrggbb` are not judged here (the API refuses them).
#[must_use]
pub fn contrast_warnings(background: &str, text: &str, brand: &str) -> Vec<String> {
    let (Some(bg), Some(fg), Some(accent)) =
        (Rgb::parse(background), Rgb::parse(text), Rgb::parse(brand))
    else {
        return Vec::new();
    };
    let shown = Theme::new(background, text, brand).light;
    let mut warnings = Vec::new();
    if shown.fg != fg {
        warnings.push(format!(
            "The text colour {fg} on the background {bg} has a contrast of {:.1}:1, below the \
             {MIN_CONTRAST}:1 text needs to be read: the public page shows its text in {} instead.",
            contrast(fg, bg),
            shown.fg,
        ));
    }
    if shown.accent != accent {
        warnings.push(format!(
            "The brand colour {accent} on the background {bg} has a contrast of {:.1}:1, below \
             {MIN_CONTRAST}:1: the public page shows links and buttons in {} instead.",
            contrast(accent, bg),
            shown.accent,
        ));
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::contrast_warnings;

    #[test]
    fn colours_that_read_have_no_warning() {
        assert!(contrast_warnings("#ffffff", "#1f2328", "#0969da").is_empty());
        assert!(contrast_warnings("#0d1117", "#e6edf3", "#58a6ff").is_empty());
    }

    #[test]
    fn colours_that_do_not_read_are_told_with_what_replaces_them() {
        let warnings = contrast_warnings("#ffffff", "#eeeeee", "#ffff00");
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].starts_with("The text colour #eeeeee on the background #ffffff"));
        assert!(warnings[0].contains("below the 4.5:1"));
        assert!(warnings[0].contains("shows its text in #1f2328 instead"));
        assert!(warnings[1].starts_with("The brand colour #ffff00"));
    }

    #[test]
    fn only_the_colour_that_fails_is_told() {
        let warnings = contrast_warnings("#ffffff", "#1f2328", "#ffff00");
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].starts_with("The brand colour"));
    }

    #[test]
    fn colours_that_are_not_colours_are_not_judged() {
        assert!(contrast_warnings("white", "#eeeeee", "#ffff00").is_empty());
    }
}
