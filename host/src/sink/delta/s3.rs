//! `s3://` (and `s3a://`) tables through object_store's own S3 client, registered with delta-rs.
//!
//! delta-rs's `s3` feature does the same through the AWS SDK (credential profiles, SSO), which
//! adds a dozen large crates to every build. object_store alone already covers what a worker
//! needs: keys, session tokens, web identity (EKS), container and instance credentials from the
//! environment or the table's `storage_options`, custom endpoints (MinIO, moto, R2...). Commits are
//! conditional puts (`If-None-Match: *`, object_store's default for S3): two writers never both
//! land a version, with no lock service.

use std::str::FromStr;
use std::sync::{Arc, Once};

use deltalake::logstore::{
    default_logstore, logstore_factories, object_store_factories, DeltaIOStorageBackend, LogStore,
    LogStoreFactory, ObjectStoreFactory, ObjectStoreRef, StorageConfig,
};
use deltalake::{DeltaResult, DeltaTableError};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path;
use object_store::{DynObjectStore, ObjectStoreScheme};

struct S3;

impl ObjectStoreFactory for S3 {
    fn parse_url_opts(
        &self,
        url: &url::Url,
        config: &StorageConfig,
    ) -> DeltaResult<(ObjectStoreRef, Path)> {
        let mut builder = AmazonS3Builder::from_env().with_url(url.as_str());
        for (key, value) in &config.raw {
            // Options that are not S3's (the table's own, say) are left to delta-rs.
            if let Ok(key) = AmazonS3ConfigKey::from_str(&key.to_ascii_lowercase()) {
                builder = builder.with_config(key, value);
            }
        }
        let store = builder.build()?;
        let (_, path) =
            ObjectStoreScheme::parse(url).map_err(|e| DeltaTableError::Generic(e.to_string()))?;
        let store: ObjectStoreRef = match &config.runtime {
            Some(rt) => {
                Arc::new(DeltaIOStorageBackend::new(store, rt.clone())) as Arc<DynObjectStore>
            }
            None => Arc::new(store),
        };
        Ok((store, path))
    }
}

impl LogStoreFactory for S3 {
    fn with_options(
        &self,
        prefixed_store: ObjectStoreRef,
        root_store: ObjectStoreRef,
        location: &url::Url,
        options: &StorageConfig,
    ) -> DeltaResult<Arc<dyn LogStore>> {
        Ok(default_logstore(
            prefixed_store,
            root_store,
            location,
            options,
        ))
    }
}

/// Registers the `s3://` and `s3a://` handlers, once per process.
pub(super) fn register() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let s3 = Arc::new(S3);
        for scheme in ["s3://", "s3a://"] {
            if let Ok(url) = url::Url::parse(scheme) {
                object_store_factories().insert(url.clone(), s3.clone());
                logstore_factories().insert(url, s3.clone());
            }
        }
    });
}
