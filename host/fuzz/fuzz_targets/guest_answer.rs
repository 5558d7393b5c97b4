//! The ABI boundary on the host's side: whatever bytes a guest returns are read as an Arrow IPC
//! stream, taken as an answer (replace or merge, kept rows, row errors) and applied to the input
//! batch. Anything may fail with an error; nothing may panic.
#![no_main]

use std::sync::{Arc, OnceLock};

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_buffer::Buffer;
use libfuzzer_sys::fuzz_target;
use weir_guest_sdk::abi::{apply, Manifest, Output};
use weir_guest_sdk::ipc::read_stream;

fn input() -> &'static RecordBatch {
    static B: OnceLock<RecordBatch> = OnceLock::new();
    B.get_or_init(|| {
        let id: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, 3, 4]));
        let name: ArrayRef = Arc::new(StringArray::from(vec![
            Some("a"),
            None,
            Some("c"),
            Some("d"),
        ]));
        RecordBatch::try_from_iter([("id", id), ("name", name)]).expect("input batch")
    })
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks the manifest; the rest is the answer.
    let Some((&pick, answer)) = data.split_first() else {
        return;
    };
    let manifest: Manifest = match pick % 3 {
        0 => Manifest::default(),
        1 => serde_json_manifest(r#"{"drop": ["name"], "select": ["id", "x"]}"#),
        _ => serde_json_manifest(r#"{"copy": [{"name": "n2", "path": "name"}]}"#),
    };
    let Ok(batch) = read_stream(Buffer::from(answer.to_vec())) else {
        return;
    };
    let Ok(output) = Output::from_batch(batch) else {
        return;
    };
    let _ = apply(input(), output, &manifest);
});

fn serde_json_manifest(text: &str) -> Manifest {
    serde_json::from_str(text).expect("manifest")
}
