//! Strava's bulk export ZIP, read and scrubbed in the browser (feature `import`: the page loads
//! this build only when a rider chooses a ZIP, so its first load stays small).

use kompass_core::import::{self, ImportLimits, ImportReport, Progress};
use serde::Serialize;
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
  /** The scrubbed rider document as compact JSON text (ids dropped: the server adds pseudonyms). */
  document: string;
  report: ImportReport;
}
"#;

#[derive(Serialize)]
struct Imported<'a> {
    document: &'a str,
    report: &'a ImportReport,
}

/// Reads Strava's bulk export ZIP (`Uint8Array` or `ArrayBuffer`) into the scrubbed rider
/// document, calling `onProgress` (if given) after each archive entry. Throws an
/// `ImportError` when the archive is not a Strava export or is refused by a limit.
///
/// ```js
/// const { document, report } = importStravaExport(new Uint8Array(await file.arrayBuffer()),
///                                                 (p) => bar.value = p.bytes_done / p.bytes_total);
/// report.removed.map((r) => r.text);   // ["342,118 GPS points", "12 activity titles", ...]
/// ```
#[wasm_bindgen(js_name = importStravaExport, unchecked_return_type = "Imported")]
pub fn import_strava_export(
    #[wasm_bindgen(unchecked_param_type = "Uint8Array | ArrayBuffer")] archive: JsValue,
    #[wasm_bindgen(js_name = onProgress, unchecked_param_type = "((p: ImportProgress) => void) | undefined")]
    on_progress: JsValue,
) -> Result<JsValue, JsValue> {
    let bytes = if let Some(bytes) = archive.dyn_ref::<js_sys::Uint8Array>() {
        bytes.to_vec()
    } else if let Some(buffer) = archive.dyn_ref::<js_sys::ArrayBuffer>() {
        js_sys::Uint8Array::new(buffer).to_vec()
    } else {
        return Err(js_error(
            "TypeError",
            "archive: pass the ZIP as a Uint8Array or an ArrayBuffer",
        ));
    };
    let callback = on_progress.dyn_ref::<js_sys::Function>().cloned();
    let mut progress = |p: Progress| {
        if let (Some(f), Ok(v)) = (&callback, to_js(&p)) {
            // A throwing callback does not stop the import: progress is only shown.
            let _ = f.call1(&JsValue::NULL, &v);
        }
    };
    let imported =
        import::import_strava_export_with(&bytes, &ImportLimits::default(), &mut progress)
            .map_err(|e| js_error("ImportError", e))?;
    to_js(&Imported { document: &imported.document, report: &imported.report })
}
