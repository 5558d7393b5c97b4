//! # weir guest SDK
//!
//! Write a weir transform as one Rust type: it is built from the `params` of its YAML route, it
//! may declare which columns it reads (and which the host drops or selects afterwards), and it
//! answers each Arrow [`RecordBatch`] with an [`Output`]: a row selection, new columns, or a whole
//! new batch. [`export_transform!`] turns the type into a wasm module that speaks the weir ABI
//! (see `guest-sdk/ABI.md`). A transform may read the files its config grants with [`read_file`].
//!
//! ```
//! use std::sync::Arc;
//! use weir_guest_sdk::{arrow_array::{Array, Int64Array, BooleanArray, RecordBatch}, Error, Output, Transform};
//!
//! #[derive(serde::Deserialize)]
//! struct Params { min: i64 }
//!
//! struct AtLeast { min: i64 }
//!
//! impl Transform for AtLeast {
//!     type Params = Params;
//!     fn new(p: Params) -> Result<Self, Error> { Ok(AtLeast { min: p.min }) }
//!     fn reads(&self) -> Option<Vec<String>> { Some(vec!["n".into()]) }
//!     fn transform(&mut self, batch: RecordBatch) -> Result<Output, Error> {
//!         let n = batch.column_by_name("n").ok_or_else(|| Error::new("no column n"))?;
//!         let n = n.as_any().downcast_ref::<Int64Array>().ok_or_else(|| Error::new("n must be int64"))?;
//!         Ok(Output::keep(n.iter().map(|v| Some(v? >= self.min)).collect::<BooleanArray>()))
//!     }
//! }
//! weir_guest_sdk::export_transform!(AtLeast);
//!
//! // Plugin logic tests natively, through the same wire form and merge rules as the host:
//! let n: Arc<dyn Array> = Arc::new(Int64Array::from(vec![1, 5, 9]));
//! let batch = RecordBatch::try_from_iter(vec![("n", n)]).unwrap();
//! let mut t = weir_guest_sdk::testing::init::<AtLeast>(r#"{"min": 5}"#).unwrap();
//! let out = weir_guest_sdk::testing::run(&mut t, &batch).unwrap();
//! assert_eq!(out.batch.num_rows(), 2);
//! ```
#![deny(missing_docs)]

pub mod abi;
#[cfg(feature = "expr")]
pub mod expr;
#[doc(hidden)]
pub mod guest;
pub mod ipc;
pub mod testing;

pub use abi::{CopyColumn, LogLevel, Manifest, Merge, Output};
pub use arrow_array;
pub use arrow_schema;
pub use serde_json;

pub use arrow_array::RecordBatch;

/// A transform's error: a message the host shows with the plugin's name and the batch's origin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Error(pub String);

impl Error {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Error(message.into())
    }
}

impl From<arrow_schema::ArrowError> for Error {
    fn from(e: arrow_schema::ArrowError) -> Self {
        Error(e.to_string())
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error(e.to_string())
    }
}

/// A weir transform.
pub trait Transform: Sized + 'static {
    /// The route's `params`, deserialized from JSON. Use `serde(deny_unknown_fields)` so a typo
    /// in the YAML is refused at load time instead of silently ignored.
    type Params: serde::de::DeserializeOwned;

    /// Builds the transform; an error here refuses the plugin at load (and in `weir validate`).
    fn new(params: Self::Params) -> Result<Self, Error>;

    /// The columns this transform reads, or `None` for all: top-level names, or dotted paths
    /// into structs (`customer.name`). Only these cross into the sandbox: name them, and a wide
    /// batch costs no more than a narrow one.
    fn reads(&self) -> Option<Vec<String>> {
        None
    }

    /// Paths of lists this transform reads only the length (and nulls) of, or `None` (manifest
    /// key `lengths`): they cross as lists of nulls, without their elements.
    fn lengths(&self) -> Option<Vec<String>> {
        None
    }

    /// Columns to remove from the batch after the answer is applied (manifest key `drop`), or
    /// `None`. A transform that consumes columns drops them on the host, without their data
    /// ever crossing the boundary.
    fn drops(&self) -> Option<Vec<String>> {
        None
    }

    /// The only columns that remain after the answer is applied, in this order (manifest key
    /// `select`), or `None` to keep them all. Names the batch lacks are left out.
    fn selects(&self) -> Option<Vec<String>> {
        None
    }

    /// Columns the host sets from the input itself (manifest key `copy`): a transform that
    /// passes fields through names them here, and their data never crosses the boundary.
    fn copies(&self) -> Option<Vec<abi::CopyColumn>> {
        None
    }

    /// Transforms one batch, holding the columns of [`Transform::reads`].
    fn transform(&mut self, batch: RecordBatch) -> Result<Output, Error>;
}

/// The manifest a transform declares to the host at init.
pub(crate) fn manifest_of<T: Transform>(t: &T) -> Manifest {
    Manifest {
        reads: t.reads(),
        lengths: t.lengths(),
        drop: t.drops(),
        select: t.selects(),
        copy: t.copies(),
    }
}

/// The bytes of a file the route's config grants this transform (`files: { name: path }`), read
/// through the `weir.read_file` import; typically called once, from [`Transform::new`]. A name the
/// config does not grant is an error: the sandbox offers no other files. Natively (in tests) the
/// files come from [`testing::grant_file`].
pub fn read_file(name: &str) -> Result<Vec<u8>, Error> {
    guest::read_file(name)
}

/// Writes a line to the host's log, tagged with the plugin and route.
pub fn log(level: LogLevel, message: &str) {
    guest::log(level, message);
}

/// Exports a [`Transform`] as the weir ABI. Expands to nothing outside wasm, so the same crate
/// builds natively for tests.
#[macro_export]
macro_rules! export_transform {
    ($t:ty) => {
        #[cfg(target_arch = "wasm32")]
        mod __weir_exports {
            #[allow(unused_imports)]
            use super::*;
            #[unsafe(no_mangle)]
            pub extern "C" fn weir_abi_version() -> i32 {
                $crate::abi::ABI_VERSION
            }
            #[unsafe(no_mangle)]
            pub extern "C" fn weir_alloc(len: i32) -> i32 {
                $crate::guest::alloc(len)
            }
            /// # Safety
            /// The host passes back a buffer it got from `weir_alloc`.
            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn weir_free(ptr: i32, len: i32) {
                unsafe { $crate::guest::free(ptr, len) }
            }
            /// # Safety
            /// The host passes a buffer it got from `weir_alloc`, filled.
            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn weir_init(ptr: i32, len: i32) -> i64 {
                unsafe { $crate::guest::init::<$t>(ptr, len) }
            }
            /// # Safety
            /// The host passes a buffer it got from `weir_alloc`, filled.
            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn weir_transform(ptr: i32, len: i32) -> i64 {
                unsafe { $crate::guest::transform::<$t>(ptr, len) }
            }
            #[unsafe(no_mangle)]
            pub extern "C" fn weir_last_error() -> i64 {
                $crate::guest::last_error()
            }
        }
    };
}
