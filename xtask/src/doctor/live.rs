//! What the check groups share about live resources: the parts of an ARN, the domain of a
//! region's endpoints, a read that failed (a failed check naming the call and the permission),
//! and the two fixes most checks end with: deploy the stage, or repair a live edit.

use super::Check;
use stacks::StageConfig;
use std::fmt::Display;

/// The command that deploys `stage` from its synthesized template.
pub(super) fn deploy_command(stage: &StageConfig) -> String {
    format!("cargo xtask deploy --stage {}", stage.name)
}

/// The partition, region and account of an ARN (`arn:aws:lambda:eu-west-1:123456789012:...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ArnParts {
    pub(super) partition: String,
    pub(super) region: String,
    pub(super) account: String,
}

impl ArnParts {
    /// The parts of `arn`; `None` unless it names a partition, a region and an account.
    pub(super) fn of(arn: &str) -> Option<ArnParts> {
        let mut parts = arn.split(':');
        let (Some("arn"), Some(partition), Some(_service), Some(region), Some(account)) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        if partition.is_empty() || region.is_empty() || account.is_empty() {
            return None;
        }
        Some(ArnParts { partition: partition.to_owned(), region: region.to_owned(), account: account.to_owned() })
    }

    /// `arn:{partition}:execute-api:{region}:{account}:{rest}`.
    pub(super) fn execute_api(&self, rest: &str) -> String {
        format!("arn:{}:execute-api:{}:{}:{rest}", self.partition, self.region, self.account)
    }

    /// `arn:{partition}:iam::{account}:role/{name}` (the template gives its roles no path).
    pub(super) fn role(&self, name: &str) -> String {
        format!("arn:{}:iam::{}:role/{name}", self.partition, self.account)
    }
}

/// The domain API Gateway endpoints of `region` live under.
pub(super) fn url_suffix(region: &str) -> &'static str {
    if region.starts_with("cn-") { "amazonaws.com.cn" } else { "amazonaws.com" }
}

/// A read that failed: the API call, the IAM permission the doctor's caller needs for it, and
/// the error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Unreadable {
    pub(super) call: String,
    pub(super) permission: String,
    pub(super) error: String,
}

impl Unreadable {
    pub(super) fn new(call: &str, permission: &str, error: impl Display) -> Unreadable {
        Unreadable { call: call.to_owned(), permission: permission.to_owned(), error: error.to_string() }
    }

    /// The failed check that reports it.
    pub(super) fn check(&self, group: &'static str, id: impl Into<String>, what: &str) -> Check {
        Check::fail(
            group,
            id,
            format!("cannot read {what}: {} failed ({}), so this check could not judge it", self.call, self.error),
            format!("run doctor with credentials allowed {} (a throttled call: run it again)", self.permission),
        )
    }
}

/// The fix of a difference between a live resource and the template: a deploy when the
/// deployed template is behind, else the live repair (CloudFormation does not see live edits).
pub(super) fn deploy_or_live(stage: &StageConfig, live_fix: &str) -> String {
    format!(
        "{deploy} if `cargo xtask diff --stage {stage}` shows the change; if it shows none, \
         it was changed live, which CloudFormation does not see: {live_fix}",
        deploy = deploy_command(stage),
        stage = stage.name
    )
}

/// Every item of a listing that pages with a `NextToken` (API Gateway v2's `Get*s` calls have
/// no SDK paginator): `page` fetches one page from a token and returns its items and the next
/// token.
pub(super) async fn all_pages<T, Page>(mut page: impl FnMut(Option<String>) -> Page) -> anyhow::Result<Vec<T>>
where
    Page: Future<Output = anyhow::Result<(Vec<T>, Option<String>)>>,
{
    let mut items = Vec::new();
    let mut token = None;
    loop {
        let (mut found, next) = page(token).await?;
        items.append(&mut found);
        match next {
            Some(next) => token = Some(next),
            None => return Ok(items),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arn_parts_are_read_without_panicking() {
        assert_eq!(
            ArnParts::of("arn:aws-cn:lambda:cn-north-1:123:function:f"),
            Some(ArnParts { partition: "aws-cn".into(), region: "cn-north-1".into(), account: "123".into() })
        );
        assert_eq!(ArnParts::of("not an arn"), None);
        assert_eq!(ArnParts::of("arn:aws:lambda::123:function:f"), None);
        assert_eq!(url_suffix("cn-north-1"), "amazonaws.com.cn");
    }

    #[test]
    fn a_live_fix_comes_after_the_deploy_that_would_make_it() {
        let fix = deploy_or_live(&stacks::stages::dev(), "aws lambda update-function-configuration ...");
        assert!(fix.starts_with("cargo xtask deploy --stage dev if `cargo xtask diff --stage dev` shows"), "{fix}");
        assert!(fix.ends_with("aws lambda update-function-configuration ..."), "{fix}");
    }
}
