//! The AWS options every command that talks to AWS takes, and the configuration they make:
//! the standard credential chain (environment, profile, SSO, instance role...), `--region`,
//! `--profile`, and `--endpoint-url` for a local AWS-compatible endpoint.

use anyhow::{Result, bail};
use aws_config::BehaviorVersion;
use aws_sdk_cloudformation::config::ProvideCredentials;

/// `--region`, `--profile`, `--endpoint-url`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct AwsArgs {
    /// The AWS region (default: the stage's region, overridden by AWS_REGION or the profile).
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
}
