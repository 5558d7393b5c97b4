//! The Arrow IPC stream framing used on both sides of the boundary: one schema message, one
//! record batch, end-of-stream.

use arrow_array::RecordBatch;
use arrow_buffer::Buffer;
use arrow_ipc::reader::StreamDecoder;
use arrow_ipc::writer::{IpcWriteOptions, StreamWriter};
use arrow_schema::ArrowError;

/// Writes `batch` as a complete IPC stream into `out`, reusing its allocation.
pub fn write_stream(batch: &RecordBatch, out: &mut Vec<u8>) -> Result<(), ArrowError> {
    out.clear();
    // 8-byte alignment is all the buffers need, and keeps narrow batches small.
    let options = IpcWriteOptions::try_new(8, false, arrow_ipc::MetadataVersion::V5)?;
    let mut writer = StreamWriter::try_new_with_options(out, &batch.schema(), options)?;
    writer.write(batch)?;
    writer.finish()
}

/// Reads the single record batch of an IPC stream without copying its buffers. Malformed bytes
/// are an error: arrow-ipc panics on some (a schema message without fields, found by
/// `host/fuzz`'s `guest_answer` target), so a panic while decoding is caught and returned as one.
/// The host reads what guests return with this; a guest must not be able to crash it.
pub fn read_stream(bytes: Buffer) -> Result<RecordBatch, ArrowError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| decode_one(bytes))).unwrap_or_else(
        |panic| {
            let why = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(ArrowError::IpcError(format!("malformed IPC stream: {why}")))
        },
    )
}

fn decode_one(bytes: Buffer) -> Result<RecordBatch, ArrowError> {
    let mut decoder = StreamDecoder::new();
    let mut buffer = bytes;
    let mut batch = None;
    while !buffer.is_empty() {
        if let Some(b) = decoder.decode(&mut buffer)? {
            if batch.replace(b).is_some() {
                return Err(ArrowError::IpcError(
                    "expected one record batch in the stream, found more".into(),
                ));
            }
        }
    }
    decoder.finish()?;
    batch.ok_or_else(|| ArrowError::IpcError("the stream holds no record batch".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{ArrayRef, Int32Array};
    use std::sync::Arc;

    #[test]
    fn roundtrip() {
        let a: ArrayRef = Arc::new(Int32Array::from(vec![Some(1), None, Some(3)]));
        let batch = RecordBatch::try_from_iter(vec![("a", a)]).unwrap();
        let mut out = Vec::new();
        write_stream(&batch, &mut out).unwrap();
        assert_eq!(read_stream(Buffer::from_vec(out)).unwrap(), batch);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [
            vec![],
            vec![0xff; 3],
            vec![0xff, 0xff, 0xff, 0xff, 8, 0, 0, 0, 1, 2],
            // The answer that made arrow-ipc panic in host/fuzz's guest_answer target.
            vec![
                0x1e, 0, 0, 0, 0x04, 0, 0, 0, 0xfa, 0xff, 0xff, 0xff, 0, 0x20, 0x0a, 0, 0, 0, 0, 0,
                0x10, 0, 0x08, 0, 0x01, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0x80, 0xff, 0xff, 0xff,
            ],
        ] {
            assert!(read_stream(Buffer::from_vec(bytes)).is_err());
        }
    }
}
