//! The assets bucket: what a release puts on S3 for CloudFormation and Lambda to read — each
//! function's zip and the template itself — under content-addressed keys, so that only new
//! content is uploaded and an unchanged release costs one `HeadObject` per object.
//!
//! Which bucket, unless `--assets-bucket` names one ([`default_bucket`]): in an account and
//! region bootstrapped for the CDK, the bootstrap's assets bucket (the `BucketName` output of
//! the `CDKToolkit` stack), so that a team already on the CDK has no second bucket; otherwise
//! the project's own, `<stack>-assets-<account>-<region>` (bucket names are global: one per
//! region, so that a stage released to two regions has a bucket in each), or the
//! `<stack>-assets-<account>` of earlier releases where that one is in the region.
//!
//! The project's own bucket is created on first use, in the region the release goes to (Lambda
//! reads code only from a bucket in its own region); a bucket S3 places in another region is
//! refused.

use crate::build::Artifact;
use crate::step;
use anyhow::{Context, Result, bail};
use aws_sdk_s3::primitives::ByteStream;
use sha2::{Digest, Sha256};
use stacks::cdk::{TOOLKIT_BUCKET_OUTPUT, TOOLKIT_STACK};
use std::collections::BTreeMap;

/// The bucket a release uses when `--assets-bucket` names none: the CDK bootstrap's assets
/// bucket where the region has one ([`cdk_bootstrap_bucket`]), else
/// `<stack>-assets-<account>-<region>`.
pub(super) async fn default_bucket(
    sdk: &aws_config::SdkConfig,
    s3: &aws_sdk_s3::Client,
    stack_name: &str,
    region: &str,
) -> Result<String> {
    let cloudformation = aws_sdk_cloudformation::Client::new(sdk);
    if let Some(bucket) = cdk_bootstrap_bucket(&cloudformation).await {
        step(format!(
            "using the CDK bootstrap's assets bucket {bucket} (output {TOOLKIT_BUCKET_OUTPUT} of stack \
             {TOOLKIT_STACK}); --assets-bucket names another"
        ));
        return Ok(bucket);
    }
    let identity = aws_sdk_sts::Client::new(sdk).get_caller_identity().send().await.context("asking STS who we are")?;
    let account = identity.account().unwrap_or("account");
    // Releases before buckets were named per region used `<stack>-assets-<account>`: where that
    // bucket is in this region, it stays the stage's bucket (nothing moves, nothing is uploaded
    // twice).
    let earlier = format!("{stack_name}-assets-{account}");
    if s3.head_bucket().bucket(&earlier).send().await.is_ok_and(|found| found.bucket_region() == Some(region)) {
        step(format!("using the assets bucket of earlier releases, {earlier}"));
        return Ok(earlier);
    }
    Ok(format!("{stack_name}-assets-{account}-{region}"))
}

/// The assets bucket of the region's CDK bootstrap: the [`TOOLKIT_BUCKET_OUTPUT`] output of
/// the [`TOOLKIT_STACK`] stack that `cdk bootstrap` made, if there is one. A stack that cannot
/// be read is said and passed over: the release then uses the project's own bucket.
async fn cdk_bootstrap_bucket(cloudformation: &aws_sdk_cloudformation::Client) -> Option<String> {
    let toolkit = match super::describe(cloudformation, TOOLKIT_STACK).await {
        Ok(toolkit) => toolkit?,
        Err(error) => {
            step(format!("could not read the CDK bootstrap stack {TOOLKIT_STACK} ({error:#}); not using it"));
            return None;
        }
    };
    toolkit
        .outputs()
        .iter()
        .find(|output| output.output_key() == Some(TOOLKIT_BUCKET_OUTPUT))
        .and_then(|output| output.output_value())
        .filter(|bucket| !bucket.is_empty())
        .map(str::to_owned)
}

/// The assets bucket of one release, in the release's region.
#[derive(Debug)]
pub(super) struct Assets<'a> {
    s3: &'a aws_sdk_s3::Client,
    bucket: String,
    region: String,
}

impl<'a> Assets<'a> {
    /// The bucket `bucket` in `region`, created if it does not exist; refused if S3 has it in
    /// another region.
    pub(super) async fn open(s3: &'a aws_sdk_s3::Client, bucket: &str, region: &str) -> Result<Assets<'a>> {
        let exists = match s3.head_bucket().bucket(bucket).send().await {
            Ok(found) => {
                same_region(bucket, found.bucket_region(), region)?;
                true
            }
            Err(error) => {
                // S3 names the region of a bucket that exists elsewhere (301) in this header.
                let elsewhere = error.raw_response().and_then(|raw| raw.headers().get("x-amz-bucket-region"));
                same_region(bucket, elsewhere, region)?;
                false
            }
        };
        if !exists {
            step(format!("creating the assets bucket {bucket} in {region}"));
            let mut create = s3.create_bucket().bucket(bucket);
            if region != "us-east-1" {
                create = create.create_bucket_configuration(
                    aws_sdk_s3::types::CreateBucketConfiguration::builder()
                        .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(region))
                        .build(),
                );
            }
            create
                .send()
                .await
                .map_err(s3_error)
                .with_context(|| format!("creating the assets bucket {bucket}; pass --assets-bucket to use another"))?;
        }
        Ok(Assets { s3, bucket: bucket.to_owned(), region: region.to_owned() })
    }

    /// Uploads each zip as `assets/<function>/<sha256>.zip` unless it is there already;
    /// returns the keys by function.
    pub(super) async fn upload_zips(&self, artifacts: &[Artifact]) -> Result<BTreeMap<String, String>> {
        let mut keys = BTreeMap::new();
        for artifact in artifacts {
            let key = format!("assets/{}/{}.zip", artifact.function, artifact.sha256_hex);
            let body = ByteStream::from_path(&artifact.zip)
                .await
                .with_context(|| format!("reading {}", artifact.zip.display()))?;
            if self.put_once(&key, body).await.with_context(|| format!("uploading {}", artifact.zip.display()))? {
                println!("  {} uploaded ({key}, {:.2} MB)", artifact.function, artifact.size as f64 / 1e6);
            } else {
                println!("  {} unchanged ({key})", artifact.function);
            }
            keys.insert(artifact.function.clone(), key);
        }
        Ok(keys)
    }

    /// Uploads the template as `templates/<sha256>.json` unless it is there already; returns
    /// the URL CloudFormation reads it from (`TemplateURL`).
    ///
    /// Every release passes its template this way, never inline: an inline `TemplateBody`
    /// takes at most 51,200 bytes and the prod template is already ~40 KB. Always, rather than
    /// only above the limit, so that there is one path, taken by every release and every local
    /// test: the day a template outgrows the inline limit, nothing untried runs. The cost is
    /// one `HeadObject` for an unchanged template, and the bucket keeps the exact template of
    /// every release.
    pub(super) async fn upload_template(&self, body: &str) -> Result<String> {
        let key = format!("templates/{:x}.json", Sha256::digest(body.as_bytes()));
        let uploaded = self
            .put_once(&key, ByteStream::from(body.as_bytes().to_vec()))
            .await
            .context("uploading the template to the assets bucket")?;
        let verb = if uploaded { "uploaded" } else { "unchanged" };
        println!("  template {verb} ({key}, {:.1} KB)", body.len() as f64 / 1e3);
        Ok(object_url(&self.bucket, &self.region, &key))
    }

    /// Puts `body` at `key` unless an object is there already; whether it did.
    async fn put_once(&self, key: &str, body: ByteStream) -> Result<bool> {
        if self.s3.head_object().bucket(&self.bucket).key(key).send().await.is_ok() {
            return Ok(false);
        }
        self.s3.put_object().bucket(&self.bucket).key(key).body(body).send().await.map_err(s3_error)?;
        Ok(true)
    }
}

fn s3_error<E: std::error::Error + Send + Sync + 'static, R: std::fmt::Debug>(
    error: aws_sdk_s3::error::SdkError<E, R>,
) -> anyhow::Error {
    anyhow::anyhow!("{}", aws_sdk_s3::error::DisplayErrorContext(error))
}

/// Refuses a bucket S3 places in another region than the release's.
fn same_region(bucket: &str, found: Option<&str>, region: &str) -> Result<()> {
    match found {
        Some(elsewhere) if elsewhere != region => bail!(
            "the assets bucket {bucket} is in {elsewhere}, but this release goes to {region} and Lambda reads \
             code only from a bucket in its own region: pass --assets-bucket with a bucket in {region}"
        ),
        _ => Ok(()),
    }
}

/// The HTTPS URL of `key` in `bucket`, as CloudFormation takes it for `TemplateURL`:
/// virtual-hosted style (`https://<bucket>.s3.<region>.amazonaws.com/<key>`), or path style for
/// a bucket whose name has dots (they do not fit a TLS host name).
///
/// CloudFormation reads the object with the caller's credentials, whatever endpoint the SDK
/// talks to; moto's server, the local endpoint, resolves these same URLs from its own S3.
fn object_url(bucket: &str, region: &str, key: &str) -> String {
    let domain = if region.starts_with("cn-") { "amazonaws.com.cn" } else { "amazonaws.com" };
    if bucket.contains('.') {
        format!("https://s3.{region}.{domain}/{bucket}/{key}")
    } else {
        format!("https://{bucket}.s3.{region}.{domain}/{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_in_another_region_is_refused() {
        assert!(same_region("b", Some("eu-west-1"), "eu-west-1").is_ok());
        assert!(same_region("b", None, "eu-west-1").is_ok());
        let error = same_region("b", Some("eu-west-1"), "us-west-2").expect_err("refused").to_string();
        assert!(error.contains("is in eu-west-1") && error.contains("--assets-bucket"), "{error}");
    }

    #[test]
    fn a_template_url_names_the_bucket_region_and_key() {
        assert_eq!(
            object_url("stack-assets-1", "eu-west-1", "templates/ab.json"),
            "https://stack-assets-1.s3.eu-west-1.amazonaws.com/templates/ab.json"
        );
        assert_eq!(object_url("a.b", "us-east-1", "k"), "https://s3.us-east-1.amazonaws.com/a.b/k");
        assert_eq!(object_url("c", "cn-north-1", "k"), "https://c.s3.cn-north-1.amazonaws.com.cn/k");
    }
}
