//! Run a transform natively the way the host runs it in wasm: params as JSON, only the declared
//! columns in, the answer through the IPC wire form, merged by the host's rules.

use std::cell::RefCell;
use std::collections::HashMap;

use arrow_array::RecordBatch;
use arrow_buffer::Buffer;

use crate::abi::{self, Applied, Manifest, Output};
use crate::{ipc, Error, Transform};

/// Builds a transform from params given as JSON text, as `weir_init` does.
pub fn init<T: Transform>(params_json: &str) -> Result<T, Error> {
    let params = serde_json::from_str::<T::Params>(params_json)
        .map_err(|e| Error::new(format!("invalid params: {e}")))?;
    T::new(params)
}

/// The manifest the transform would declare to the host.
pub fn manifest<T: Transform>(t: &T) -> Manifest {
    crate::manifest_of(t)
}

thread_local! {
    /// Files granted to transforms built on this thread (each test runs on its own thread).
    static FILES: RefCell<HashMap<String, Vec<u8>>> = RefCell::new(HashMap::new());
}

/// Grants the file `name` with these bytes to [`crate::read_file`] on this thread, as a route's
/// `files: { name: path }` does in the host. Call it before [`init`].
pub fn grant_file(name: &str, bytes: impl Into<Vec<u8>>) {
    FILES.with_borrow_mut(|f| f.insert(name.to_string(), bytes.into()));
}

/// The bytes granted as `name` on this thread.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn granted(name: &str) -> Option<Vec<u8>> {
    FILES.with_borrow(|f| f.get(name).cloned())
}

/// Runs one batch through the transform and applies the answer to the full batch.
pub fn run<T: Transform>(t: &mut T, batch: &RecordBatch) -> Result<Applied, Error> {
    let manifest = manifest(t);
    let input = abi::project_reads(batch, &manifest)?;
    let mut wire = Vec::new();
    ipc::write_stream(&input, &mut wire)?;
    let input = ipc::read_stream(Buffer::from_vec(wire))?;
    let answer = t.transform(input)?.into_batch(batch.num_rows())?;
    let mut wire = Vec::new();
    ipc::write_stream(&answer, &mut wire)?;
    let answer = Output::from_batch(ipc::read_stream(Buffer::from_vec(wire))?)?;
    Ok(abi::apply(batch, answer, &manifest)?)
}
