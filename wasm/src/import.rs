//! Strava's bulk export ZIP, read and scrubbed in the browser (feature `import`: the page loads
//! this build only when a rider chooses a ZIP, so its first load stays small).

use kompass_core::import::{self, ImportLimits, Progress};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

use crate::error::{js_error, to_js};

#[wasm_bindgen(typescript_custom_section)]
const TS_IMPORT: &str = r#"
/** How far an import has come. */
export interface ImportProgress { entries_done: number; entries_total: number; bytes_done: number; bytes_total: number }

/** A kind of thing removed, how many, in words ("342,118 GPS points"), and where in the export. */
export interface ImportRemoved { kind: string; count: number; text: string; paths: string[] }

/** What an import kept, removed and skipped: counts and kinds, never a removed value or file name. */
export interface ImportReport {
  version: string;
  activities: number;
  activities_with_streams: number;
  samples: number;
  removed: ImportRemoved[];
  skipped: { reason: string; count: number }[];
  entries: number;
  archive_bytes: number;
  expanded_bytes: number;
  largest_entry_bytes: number;
  output_bytes: number;
}

export interface Imported {
  /**
   * The scrubbed rider document, compact JSON as UTF-8 bytes (ids dropped: the server adds
   * pseudonyms). Bytes, not a string: a large export's document is longer than the longest
   * string a JS engine makes (V8: ~537 M characters). Upload it as it is (`new Blob([document])`).
   */
  document: Uint8Array;
  /** The SHA-256 of `document` as 64 lower-case hex digits (the upload's `x-kompass-sha256`). */
  sha256: string;
  report: ImportReport;
}
"#;

/// Reads Strava's bulk export ZIP (`Uint8Array` or `ArrayBuffer`) into the scrubbed rider
/// document, calling `onProgress` (if given) after each archive entry. Throws an
/// `ImportError` when the archive is not a Strava export or is refused by a limit.
///
/// The document comes back as bytes, copied once out of wasm memory (the importer writes it in
/// chunks of 4 MiB, so wasm memory holds it once; nothing else of it is held), with its SHA-256
/// computed here so the page never copies it back into wasm to hash it.
///
/// ```js
/// const { document, sha256, report } = importStravaExport(new Uint8Array(await file.arrayBuffer()),
///                                                         (p) => bar.value = p.bytes_done / p.bytes_total);
/// report.removed.map((r) => r.text);   // ["342,118 GPS points", "12 activity titles", ...]
/// const body = new Blob([document], { type: "application/json" });   // POST /api/rider
/// ```
#[wasm_bindgen(js_name = importStravaExport, unchecked_return_type = "Imported")]
pub fn import_strava_export(
    #[wasm_bindgen(unchecked_param_type = "Uint8Array | ArrayBuffer")] archive: JsValue,
    #[wasm_bindgen(js_name = onProgress, unchecked_param_type = "((p: ImportProgress) => void) | undefined")]
    on_progress: JsValue,
) -> Result<JsValue, JsValue> {
    // The archive stays in JS memory: the importer reads it through a view, entry by entry,
    // so wasm memory holds the activity being read and the document, never the archive.
    let array = if let Some(bytes) = archive.dyn_ref::<js_sys::Uint8Array>() {
        bytes.clone()
    } else if let Some(buffer) = archive.dyn_ref::<js_sys::ArrayBuffer>() {
        js_sys::Uint8Array::new(buffer)
    } else {
        return Err(js_error(
            "TypeError",
            "archive: pass the ZIP as a Uint8Array or an ArrayBuffer",
        ));
    };
    let len = u64::from(array.length());
    let callback = on_progress.dyn_ref::<js_sys::Function>().cloned();
    let mut progress = |p: Progress| {
        if let (Some(f), Ok(v)) = (&callback, to_js(&p)) {
            // A throwing callback does not stop the import: progress is only shown.
            let _ = f.call1(&JsValue::NULL, &v);
        }
    };
    let reader = std::io::BufReader::with_capacity(64 << 10, JsReader { array, pos: 0, len });
    // In chunks, not one String: a String grown by doubling holds up to 2x the document in
    // wasm memory while it grows (and wasm memory never shrinks); chunks hold it once.
    let imported = import::import_strava_export_chunks_from(
        reader,
        len,
        &ImportLimits::default(),
        &mut progress,
    )
    .map_err(|e| js_error("ImportError", e))?;
    let sha256 = imported.sha256().to_hex();
    let report = to_js(&imported.report)?;
    // The one copy out of wasm memory, chunk by chunk, each freed once copied.
    let bytes = js_sys::Uint8Array::new_with_length(imported.report.output_bytes as u32);
    let mut at = 0u32;
    for chunk in imported.chunks {
        let end = at + chunk.len() as u32;
        bytes.subarray(at, end).copy_from(&chunk);
        at = end;
    }
    let out = js_sys::Object::new();
    js_sys::Reflect::set(&out, &"document".into(), &bytes)?;
    js_sys::Reflect::set(&out, &"sha256".into(), &sha256.into())?;
    js_sys::Reflect::set(&out, &"report".into(), &report)?;
    Ok(out.into())
}

/// A JS `Uint8Array` read as a seekable file: each read copies only the bytes asked for.
struct JsReader {
    array: js_sys::Uint8Array,
    pos: u64,
    len: u64,
}

impl std::io::Read for JsReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (self.len.saturating_sub(self.pos)).min(buf.len() as u64) as usize;
        if n > 0 {
            // Both ends fit in u32: a Uint8Array's length does.
            let start = self.pos as u32;
            self.array.subarray(start, start + n as u32).copy_to(&mut buf[..n]);
            self.pos += n as u64;
        }
        Ok(n)
    }
}

impl std::io::Seek for JsReader {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        let pos = match to {
            std::io::SeekFrom::Start(n) => Some(n),
            std::io::SeekFrom::End(d) => self.len.checked_add_signed(d),
            std::io::SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match pos {
            Some(p) => {
                self.pos = p;
                Ok(p)
            }
            None => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "seek before the start of the archive",
            )),
        }
    }
}
