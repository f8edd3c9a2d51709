//! The one font of every chart, DejaVu Sans, embedded in the binary so the
//! tool draws the same text on any machine without system fonts
//! (`loadtest/assets/DejaVuSans-LICENSE.txt` holds its licence).

use ab_glyph::FontRef;
use plotters::style::{FontStyle, register_font};

/// The family name charts ask for; plotters' own defaults (legend labels)
/// ask for it too.
pub const FAMILY: &str = "sans-serif";

const DEJAVU_SANS: &[u8] = include_bytes!("../../../assets/DejaVuSans.ttf");

/// Registers the font with plotters, which measures text with it; call
/// before drawing. Registering again replaces the entry with the same font.
pub fn register() -> anyhow::Result<()> {
    register_font(FAMILY, FontStyle::Normal, DEJAVU_SANS).map_err(|_| unreadable())
}

/// The font itself, for drawing text ([`crate::text`]).
pub fn dejavu_sans() -> anyhow::Result<FontRef<'static>> {
    FontRef::try_from_slice(DEJAVU_SANS).map_err(|_| unreadable())
}

fn unreadable() -> anyhow::Error {
    anyhow::anyhow!("the embedded DejaVu Sans is not a font ab_glyph can read")
}
