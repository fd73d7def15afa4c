//! Check group `tables` (to be written).

use super::{Check, Context};

pub(super) const GROUP: &str = "tables";

/// The `tables` checks of the live stage.
pub(super) async fn checks(context: &Context) -> Vec<Check> {
    let _ = (context, GROUP);
    Vec::new()
}
