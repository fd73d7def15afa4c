//! Check group `functions` (to be written).

use super::{Check, Context};

pub(super) const GROUP: &str = "functions";

/// The `functions` checks of the live stage.
pub(super) async fn checks(context: &Context) -> Vec<Check> {
    let _ = (context, GROUP);
    Vec::new()
}
