//! Check group `permissions` (to be written).

use super::{Check, Context};

pub(super) const GROUP: &str = "permissions";

/// The `permissions` checks of the live stage.
pub(super) async fn checks(context: &Context) -> Vec<Check> {
    let _ = (context, GROUP);
    Vec::new()
}
