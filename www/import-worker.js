// Reads a Strava bulk export ZIP into the scrubbed rider document, off the page's thread
// (app.js, "import a Strava bulk export"). A worker per import: a large export takes minutes,
// which would freeze the page (and its progress bar) on the main thread; and wasm memory never
// shrinks, so the importer's memory (the document, the activity being read) and the archive's
// bytes all go when app.js ends the worker. The document comes back as bytes, transferred,
// not copied.
import init, { importStravaExport } from './pkg-import/kompass_wasm.js';

self.onmessage = async ({ data: file }) => {
  try {
    await init();
    const archive = new Uint8Array(await file.arrayBuffer());
    const result = importStravaExport(archive, (progress) => self.postMessage({ progress }));
    self.postMessage({ result }, [result.document.buffer]);
  } catch (e) {
    self.postMessage({ error: { name: e?.name ?? 'Error', message: e?.message ?? String(e) } });
  }
};
