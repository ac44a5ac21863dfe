//! The embedded font: DejaVu Sans, registered once with plotters so text renders on machines with no
//! fonts installed (plotters' ab_glyph backend knows no system fonts at all).

use std::sync::OnceLock;

use plotters::style::FontStyle;

/// DejaVu Sans (Bitstream Vera license, see assets/DejaVuSans-LICENSE.txt).
static DEJAVU_SANS_TTF: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// The family name every chart asks for.
pub(crate) const FONT_FAMILY: &str = "sans-serif";

/// Registers the embedded font under [`FONT_FAMILY`] for every style; idempotent and thread-safe.
pub(crate) fn ensure_registered() {
    static REGISTERED: OnceLock<()> = OnceLock::new();
    REGISTERED.get_or_init(|| {
        for style in [FontStyle::Normal, FontStyle::Bold, FontStyle::Italic, FontStyle::Oblique] {
            if plotters::style::register_font(FONT_FAMILY, style, DEJAVU_SANS_TTF).is_err() {
                panic!("the embedded DejaVu Sans is a valid TrueType font");
            }
        }
    });
}
