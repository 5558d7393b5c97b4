//! The wasm side of the ABI, used by [`crate::export_transform!`]. Not a public API.
//!
//! Ownership (see ABI.md): a buffer the host got from `weir_alloc` and passed to `weir_init` or
//! `weir_transform` belongs to the guest from then on. The answer and the last error live in
//! guest-owned buffers that stay valid until the next call; the host copies them, never frees.

use crate::LogLevel;

#[cfg(target_arch = "wasm32")]
mod imp {
    use std::alloc::Layout;
    use std::any::Any;
    use std::cell::RefCell;
    use std::ptr::NonNull;
    use std::sync::Arc;

    use arrow_buffer::Buffer;

    use super::not_granted;
    use crate::abi::pack;
    use crate::{ipc, Error, LogLevel, Transform};

    const ALIGN: usize = 8;

    thread_local! {
        static STATE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
        /// The last answer: reused across calls, so steady state allocates nothing for it.
        static ANSWER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
        static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
    }

    pub fn alloc(len: i32) -> i32 {
        let Ok(layout) = Layout::from_size_align(len.max(1) as usize, ALIGN) else {
            return 0;
        };
        // SAFETY: the layout has a non-zero size.
        unsafe { std::alloc::alloc(layout) as i32 }
    }

    /// # Safety
    /// `ptr` and `len` come from one `alloc` call, not yet freed.
    pub unsafe fn free(ptr: i32, len: i32) {
        if ptr == 0 {
            return;
        }
        if let Ok(layout) = Layout::from_size_align(len.max(1) as usize, ALIGN) {
            // SAFETY: per this function's contract.
            unsafe { std::alloc::dealloc(ptr as *mut u8, layout) }
        }
    }

    /// An `alloc`ed host buffer, freed when the last Arrow buffer that borrows it is dropped.
    struct Owned {
        ptr: usize,
        len: i32,
    }

    impl Drop for Owned {
        fn drop(&mut self) {
            // SAFETY: `Owned` is built only from a buffer the host got from `alloc`.
            unsafe { free(self.ptr as i32, self.len) }
        }
    }

    /// # Safety
    /// `ptr`/`len` is a filled buffer from `alloc`, passed to the guest.
    unsafe fn take_buffer(ptr: i32, len: i32) -> Result<Buffer, Error> {
        let nn = NonNull::new(ptr as *mut u8).ok_or_else(|| Error::new("null input buffer"))?;
        let owner = Arc::new(Owned {
            ptr: ptr as usize,
            len,
        });
        // SAFETY: the region is ours for `len` bytes until `owner` drops.
        Ok(unsafe { Buffer::from_custom_allocation(nn, len.max(0) as usize, owner) })
    }

    fn answer(bytes: impl FnOnce(&mut Vec<u8>) -> Result<(), Error>) -> i64 {
        ANSWER.with_borrow_mut(|out| match bytes(out) {
            Ok(()) => pack(out.as_ptr() as u32, out.len() as u32),
            Err(e) => fail(e),
        })
    }

    fn fail(e: Error) -> i64 {
        LAST_ERROR.with_borrow_mut(|s| *s = e.0);
        -1
    }

    /// # Safety
    /// As for `take_buffer`.
    pub unsafe fn init<T: Transform>(ptr: i32, len: i32) -> i64 {
        std::panic::set_hook(Box::new(|info| {
            crate::guest::log(LogLevel::Error, &format!("plugin panicked: {info}"))
        }));
        // SAFETY: per this function's contract.
        let params = match unsafe { take_buffer(ptr, len) } {
            Ok(b) => b,
            Err(e) => return fail(e),
        };
        let built = serde_json::from_slice::<T::Params>(params.as_slice())
            .map_err(|e| Error::new(format!("invalid params: {e}")))
            .and_then(T::new);
        drop(params);
        match built {
            Ok(t) => {
                let manifest = crate::manifest_of(&t);
                STATE.with_borrow_mut(|s| *s = Some(Box::new(t)));
                answer(|out| {
                    out.clear();
                    serde_json::to_writer(out, &manifest).map_err(Error::from)
                })
            }
            Err(e) => fail(e),
        }
    }

    /// # Safety
    /// As for `take_buffer`.
    pub unsafe fn transform<T: Transform>(ptr: i32, len: i32) -> i64 {
        // SAFETY: per this function's contract.
        let input = match unsafe { take_buffer(ptr, len) } {
            Ok(b) => b,
            Err(e) => return fail(e),
        };
        let result = STATE.with_borrow_mut(|state| {
            let t = state
                .as_mut()
                .and_then(|s| s.downcast_mut::<T>())
                .ok_or_else(|| Error::new("weir_transform called before weir_init"))?;
            let batch = ipc::read_stream(input)?;
            let rows = batch.num_rows();
            Ok::<_, Error>(t.transform(batch)?.into_batch(rows)?)
        });
        match result {
            Ok(batch) => answer(|out| ipc::write_stream(&batch, out).map_err(Error::from)),
            Err(e) => fail(e),
        }
    }

    pub fn last_error() -> i64 {
        LAST_ERROR.with_borrow(|s| pack(s.as_ptr() as u32, s.len() as u32))
    }

    #[link(wasm_import_module = "weir")]
    unsafe extern "C" {
        #[link_name = "log"]
        fn weir_log(level: i32, ptr: *const u8, len: usize);
        // Linked only into guests that call `read_file`, so the others load on older hosts.
        #[link_name = "read_file"]
        fn weir_read_file(name: *const u8, name_len: usize, dst: *mut u8, dst_cap: usize) -> i64;
    }

    pub fn read_file(name: &str) -> Result<Vec<u8>, Error> {
        // SAFETY: the host reads `name`, valid for this call, and writes nothing with capacity 0.
        let size = unsafe { weir_read_file(name.as_ptr(), name.len(), std::ptr::null_mut(), 0) };
        let Ok(size) = usize::try_from(size) else {
            return Err(not_granted(name));
        };
        let mut bytes = Vec::new();
        bytes
            .try_reserve_exact(size)
            .map_err(|_| Error::new(format!("file `{name}`: no memory for its {size} bytes")))?;
        // SAFETY: the host writes at most `size` bytes, within the reserved capacity.
        let written = unsafe {
            weir_read_file(
                name.as_ptr(),
                name.len(),
                bytes.as_mut_ptr(),
                bytes.capacity(),
            )
        };
        if usize::try_from(written).ok() != Some(size) {
            return Err(Error::new(format!("file `{name}` changed size while read")));
        }
        // SAFETY: the host wrote `size` bytes at the start of the buffer.
        unsafe { bytes.set_len(size) };
        Ok(bytes)
    }

    pub fn log(level: LogLevel, message: &str) {
        // SAFETY: the host reads `len` bytes at `ptr`, which are valid for this call.
        unsafe { weir_log(level as i32, message.as_ptr(), message.len()) }
    }
}

#[cfg(target_arch = "wasm32")]
pub use imp::{alloc, free, init, last_error, transform};

#[cfg(target_arch = "wasm32")]
pub(crate) use imp::read_file;

/// The bytes of the granted file `name`: natively, from [`crate::testing::grant_file`].
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn read_file(name: &str) -> Result<Vec<u8>, crate::Error> {
    crate::testing::granted(name).ok_or_else(|| not_granted(name))
}

fn not_granted(name: &str) -> crate::Error {
    crate::Error::new(format!(
        "no file `{name}` is granted (the transform's `files:` in the config grants them)"
    ))
}

/// Sends a log line to the host (natively: to stderr, for tests).
pub fn log(level: LogLevel, message: &str) {
    #[cfg(target_arch = "wasm32")]
    imp::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{level:?}] {message}");
}
