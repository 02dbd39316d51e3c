//! A phase's loss curves against the tokens seen and against wall-clock time, besides the
//! step: candidates that change the batch or the throughput compare fairly only so.

use plotters::style::RGBColor;

use super::FigureError;
use super::plots::loss_curves_by;
use crate::report::analysis::PhaseView;

/// Loss against tokens seen; `None` when no history records them.
pub fn loss_vs_tokens(view: &PhaseView<'_>, colors: &[RGBColor]) -> Result<Option<String>, FigureError> {
    loss_curves_by(view, colors, Some("tokens"))
}

/// Loss against seconds since the run started; `None` when no history records them.
pub fn loss_vs_time(view: &PhaseView<'_>, colors: &[RGBColor]) -> Result<Option<String>, FigureError> {
    loss_curves_by(view, colors, Some("elapsed"))
}
