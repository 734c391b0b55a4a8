//! `[runners.cache]` and its `[runners.cache.s3]`, `.gcs` and `.azure` tables: the distributed
//! cache the helper uploads to and downloads from. Keys keep the official runner's PascalCase.
//! Credentials are [`Secret`]s.

use serde::{Deserialize, Serialize};

use crate::de::{keyword_enum, optional};
use crate::path::KeyPath;
use crate::secret::Secret;
use crate::validate::{Validate, Validator};

keyword_enum! {
    /// `Type`: which cache backend is used.
    pub enum CacheType {
        S3 = "s3",
        Gcs = "gcs",
        Azure = "azure",
    }
}

/// `[runners.cache]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CacheConfig {
    /// `s3`, `gcs` or `azure`; unset: no distributed cache (local only).
    #[serde(rename = "Type", default, deserialize_with = "optional")]
    pub cache_type: Option<CacheType>,
    /// Prefix of cache object names.
    #[serde(rename = "Path", default, deserialize_with = "optional")]
    pub path: Option<String>,
    /// Share the cache between runners (default false: one cache per runner).
    #[serde(rename = "Shared", default)]
    pub shared: bool,
    /// Largest archive uploaded, in bytes (default 0: no limit).
    #[serde(rename = "MaxUploadedArchiveSize", default)]
    pub max_uploaded_archive_size: i64,
    #[serde(rename = "s3", default)]
    pub s3: Option<S3Cache>,
    #[serde(rename = "gcs", default)]
    pub gcs: Option<GcsCache>,
    #[serde(rename = "azure", default)]
    pub azure: Option<AzureCache>,
}

/// `[runners.cache.s3]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct S3Cache {
    /// `host:port` of an S3-compatible server; unset: AWS.
    #[serde(default, deserialize_with = "optional")]
    pub server_address: Option<String>,
    #[serde(default, deserialize_with = "optional")]
    pub access_key: Option<Secret>,
    #[serde(default, deserialize_with = "optional")]
    pub secret_key: Option<Secret>,
    #[serde(default, deserialize_with = "optional")]
    pub session_token: Option<Secret>,
    #[serde(default)]
    pub bucket_name: String,
    #[serde(default, deserialize_with = "optional")]
    pub bucket_location: Option<String>,
    /// Plain HTTP to the server (default false).
    #[serde(default)]
    pub insecure: bool,
    /// `access-key` or `iam`; unset: `access-key` when keys are given, else `iam`.
    #[serde(default, deserialize_with = "optional")]
    pub authentication_type: Option<String>,
    #[serde(default, deserialize_with = "optional")]
    pub server_side_encryption: Option<String>,
    #[serde(rename = "ServerSideEncryptionKeyID", default, deserialize_with = "optional")]
    pub server_side_encryption_key_id: Option<String>,
    /// Dual-stack endpoints (default true).
    #[serde(default)]
    pub dual_stack: Option<bool>,
    /// Path-style bucket addressing; unset: decided from the endpoint.
    #[serde(default)]
    pub path_style: Option<bool>,
    #[serde(default)]
    pub accelerate: bool,
    #[serde(rename = "RoleARN", default, deserialize_with = "optional")]
    pub role_arn: Option<String>,
    #[serde(rename = "UploadRoleARN", default, deserialize_with = "optional")]
    pub upload_role_arn: Option<String>,
    #[serde(default)]
    pub assume_role_max_concurrency: i64,
    #[serde(default)]
    pub disable_assume_role_credentials_caching: bool,
}

/// `[runners.cache.gcs]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GcsCache {
    #[serde(rename = "AccessID", default, deserialize_with = "optional")]
    pub access_id: Option<String>,
    #[serde(default, deserialize_with = "optional")]
    pub private_key: Option<Secret>,
    /// File with `AccessID` and `PrivateKey` (GCP credentials JSON).
    #[serde(default, deserialize_with = "optional")]
    pub credentials_file: Option<String>,
    #[serde(default)]
    pub bucket_name: String,
    #[serde(default, deserialize_with = "optional")]
    pub universe_domain: Option<String>,
}

/// `[runners.cache.azure]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AzureCache {
    #[serde(default, deserialize_with = "optional")]
    pub account_name: Option<String>,
    #[serde(default, deserialize_with = "optional")]
    pub account_key: Option<Secret>,
    #[serde(default)]
    pub container_name: String,
    /// Default `blob.core.windows.net`.
    #[serde(default, deserialize_with = "optional")]
    pub storage_domain: Option<String>,
}

impl Validate for CacheConfig {
    fn validate(&self, path: &KeyPath, validator: &mut Validator) {
        let Some(cache_type) = self.cache_type else { return };
        // Notes, not errors: the official runner loads such a file and jobs still run, only
        // without the distributed cache (it warns in each job log).
        let (table, bucket_key, bucket) = match cache_type {
            CacheType::S3 => ("s3", "BucketName", self.s3.as_ref().map(|s3| s3.bucket_name.as_str())),
            CacheType::Gcs => (
                "gcs",
                "BucketName",
                self.gcs.as_ref().map(|gcs| gcs.bucket_name.as_str()),
            ),
            CacheType::Azure => (
                "azure",
                "ContainerName",
                self.azure.as_ref().map(|azure| azure.container_name.as_str()),
            ),
        };
        match bucket {
            None => validator.note(
                &path.key(table),
                format!("is missing while Type is {cache_type}: jobs will run without the distributed cache"),
            ),
            Some("") => validator.note(
                &path.key(table).key(bucket_key),
                "is empty: jobs will run without the distributed cache",
            ),
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_backend_and_masks_credentials() {
        let cache: CacheConfig = toml::from_str(
            r#"
            Type = "s3"
            Shared = true
            [s3]
            ServerAddress = "minio.example.com:9000"
            AccessKey = "my-access-key"
            SecretKey = "very-secret"
            BucketName = "runners-cache"
            Insecure = true
            [gcs]
            CredentialsFile = "/etc/gcs.json"
            BucketName = "b"
            [azure]
            AccountName = "acct"
            AccountKey = "azure-secret"
            ContainerName = "c"
            "#,
        )
        .unwrap();
        assert_eq!(cache.cache_type, Some(CacheType::S3));
        assert_eq!(
            cache.s3.as_ref().unwrap().secret_key.as_ref().unwrap().expose(),
            "very-secret"
        );
        let debug = format!("{cache:?}");
        for secret in ["very-secret", "my-access-key", "azure-secret"] {
            assert!(!debug.contains(secret), "{debug}");
        }
    }

    #[test]
    fn a_selected_backend_without_a_bucket_is_noted() {
        let mut validator = Validator::default();
        let cache: CacheConfig = toml::from_str("Type = \"gcs\"").unwrap();
        cache.validate(&KeyPath::root().key("cache"), &mut validator);
        let cache: CacheConfig = toml::from_str("Type = \"s3\"\n[s3]\nServerAddress = \"x\"").unwrap();
        cache.validate(&KeyPath::root().key("cache"), &mut validator);
        assert!(validator.errors.is_empty());
        let notes: Vec<String> = validator.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(
            notes,
            [
                "cache.gcs: is missing while Type is gcs: jobs will run without the distributed cache",
                "cache.s3.BucketName: is empty: jobs will run without the distributed cache",
            ]
        );
    }
}
