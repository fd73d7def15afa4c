//! The AWS options every command that talks to AWS takes, and the configuration they make:
//! the standard credential chain (environment, profile, SSO, instance role...), `--region`,
//! `--profile`, and `--endpoint-url` for a local AWS-compatible endpoint.

use anyhow::{Result, bail};
use aws_config::BehaviorVersion;
use aws_sdk_cloudformation::config::ProvideCredentials;
use std::collections::BTreeMap;

/// Logical id → physical id of every resource of `stack`: `ListStackResources`, every page
/// (`DescribeStackResources` answers only the first 100 resources of a stack). The error is
/// CloudFormation's, for the caller to explain (a stack that does not exist says so in it).
pub(crate) async fn stack_resources(
    client: &aws_sdk_cloudformation::Client,
    stack: &str,
) -> Result<BTreeMap<String, String>, String> {
    let mut pages = client.list_stack_resources().stack_name(stack).into_paginator().send();
    let mut resources = BTreeMap::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|error| aws_sdk_cloudformation::error::DisplayErrorContext(error).to_string())?;
        for summary in page.stack_resource_summaries.unwrap_or_default() {
            if let (Some(logical), Some(physical)) = (summary.logical_resource_id, summary.physical_resource_id) {
                resources.insert(logical, physical);
            }
        }
    }
    Ok(resources)
}

/// `--region`, `--profile`, `--endpoint-url`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct AwsArgs {
    /// The AWS region (default: AWS_REGION, else AWS_DEFAULT_REGION, else the stage's region;
    /// a profile's region is not used).
    #[arg(long)]
    pub(crate) region: Option<String>,
    /// The named profile to use (default: AWS_PROFILE, else the default chain).
    #[arg(long)]
    pub(crate) profile: Option<String>,
    /// Send every AWS request to this endpoint instead (a local AWS-compatible endpoint).
    #[arg(long, value_name = "URL", env = "AWS_ENDPOINT_URL")]
    pub(crate) endpoint_url: Option<String>,
}

impl AwsArgs {
    /// The SDK configuration; fails early, saying what to do, when there are no credentials.
    ///
    /// Its region is `--region`, else `AWS_REGION`, else `AWS_DEFAULT_REGION`, else
    /// `default_region` (the stage's); a profile's `region` setting is never consulted. Read
    /// the region that was chosen with [`region`], never from the stage again.
    pub(crate) async fn load(&self, default_region: &str) -> Result<aws_config::SdkConfig> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(profile) = &self.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(endpoint) = &self.endpoint_url {
            loader = loader.endpoint_url(endpoint);
        }
        let region = match &self.region {
            Some(region) => Some(region.clone()),
            None => std::env::var("AWS_REGION").or_else(|_| std::env::var("AWS_DEFAULT_REGION")).ok(),
        };
        loader = loader.region(aws_config::Region::new(region.unwrap_or_else(|| default_region.to_owned())));
        let config = loader.load().await;
        let Some(provider) = config.credentials_provider() else {
            bail!("no AWS credentials provider: set AWS_PROFILE (or pass --profile), or run `aws sso login`");
        };
        if let Err(error) = provider.provide_credentials().await {
            bail!("no AWS credentials ({error}): set AWS_PROFILE (or pass --profile), or run `aws sso login`");
        }
        Ok(config)
    }

    /// The `aws` CLI options that reach what this configuration reaches in `region`, for
    /// commands quoted in messages: ` --region R`, then `--profile` and `--endpoint-url` when
    /// given.
    pub(crate) fn cli_options(&self, region: &str) -> String {
        let mut options = format!(" --region {region}");
        if let Some(profile) = &self.profile {
            options.push_str(&format!(" --profile {profile}"));
        }
        if let Some(endpoint) = &self.endpoint_url {
            options.push_str(&format!(" --endpoint-url {endpoint}"));
        }
        options
    }
}

/// The region `config` talks to (set by [`AwsArgs::load`]): where resources such as the
/// assets bucket are created.
pub(crate) fn region(config: &aws_config::SdkConfig) -> Result<String> {
    match config.region() {
        Some(region) => Ok(region.to_string()),
        None => bail!("no AWS region: pass --region or set AWS_REGION"),
    }
}
