// Times scrub() of the wasm package (scripts/build-wasm.sh's www/pkg, `--target web`) under
// Node, on the bytes of the corpus files that core/benches/scrub_timing.rs wrote, with its iteration scheme:
// run for 800 ms to warm up, then until 200 ms more have passed (at least 3 runs) to estimate
// one run; then 21 samples, each a batch of runs lasting about 25 ms (at least one); a sample's time is its
// elapsed time divided by the batch size; report the median sample (and the fastest), in
// wall-clock time and in the process's CPU time (process.cpuUsage(): user + system, all of
// Node's threads, so the engine's compiler and GC threads count too), which leaves out time
// spent waiting for a CPU on a shared machine.
// The warm-up is as long as V8 needs to settle: wasm starts in its baseline compiler (Liftoff)
// and each function moves to the optimising one (TurboFan, compiled on a background thread)
// once it has run enough. At 1 activity that went on for 0.4-0.8 s of runs (Node 20,
// `--trace-wasm-compilation-times`), and functions first hot at 100 activities moved in the
// middle of that size's samples: with 200 ms of warm-up the medians of one module differed by
// up to 1.6x from process to process, baseline-tier runs and the compiler's CPU time counted
// as the scrub's. The native side runs the same scheme.
//
// Usage: node bench/wasm/scrub.mjs PKG_DIR CORPUS_DIR [SIZES] [keyless]   (SIZES: 1,100,5000)
// With `keyless`, scrub(text) without a key, as the page calls it (ids dropped).
// Prints one JSON line per size, like the native side, plus the document's length so the
// caller can check that both produced the same output.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const WARM_UP_MS = 800;
const ESTIMATE_MS = 200;
const MIN_ESTIMATE_RUNS = 3;
const SAMPLE_MS = 25;
const SAMPLES = 21;
// The key the native side uses too.
const KEY = { key_id: 'k1', secret: 'bench-secret-0123456789' };

const [pkgArg, corpusArg, sizesArg = '1,100,5000', modeArg = 'keyed'] = process.argv.slice(2);
const key = modeArg === 'keyless' ? undefined : KEY;
if (!pkgArg || !corpusArg) {
  console.error('usage: node bench/wasm/scrub.mjs PKG_DIR CORPUS_DIR [SIZES]');
  process.exit(2);
}
const pkg = resolve(pkgArg);
const mod = await import(pathToFileURL(join(pkg, 'kompass_wasm.js')).href);
mod.initSync({ module: readFileSync(join(pkg, 'kompass_wasm_bg.wasm')) });

const nowNs = () => Number(process.hrtime.bigint());
// The process's CPU time so far (user + system), in ns.
function cpuNs() {
  const { user, system } = process.cpuUsage();
  return (user + system) * 1000;
}

function measure(run) {
  const warmUp = nowNs();
  while (nowNs() - warmUp < WARM_UP_MS * 1e6) run();
  const start = nowNs();
  let runs = 0;
  while (runs < MIN_ESTIMATE_RUNS || nowNs() - start < ESTIMATE_MS * 1e6) {
    run();
    runs += 1;
  }
  const one = (nowNs() - start) / runs;
  const batch = Math.max(1, Math.round((SAMPLE_MS * 1e6) / one));
  const wall = [];
  const cpu = [];
  for (let s = 0; s < SAMPLES; s++) {
    const c = cpuNs();
    const t = nowNs();
    for (let i = 0; i < batch; i++) run();
    const elapsed = nowNs() - t;
    cpu.push((cpuNs() - c) / batch);
    wall.push(elapsed / batch);
  }
  wall.sort((a, b) => a - b);
  cpu.sort((a, b) => a - b);
  const mid = SAMPLES >> 1;
  return { median: wall[mid], min: wall[0], cpuMedian: cpu[mid], cpuMin: cpu[0], batch };
}

let sink = 0;
for (const n of sizesArg.split(',').map(Number)) {
  // The file's bytes, as the page passes them (`new Uint8Array(await file.arrayBuffer())`
  // in www/app.js): the native side also starts from the bytes.
  const input = new Uint8Array(readFileSync(join(corpusArg, `corpus-${n}.json`)));
  const first = mod.scrub(input, key);
  const { median, min, cpuMedian, cpuMin, batch } = measure(() => {
    sink += mod.scrub(input, key).document.length;
  });
  console.log(JSON.stringify({
    mode: key ? 'keyed' : 'keyless',
    activities: n,
    input_bytes: input.length,
    output_bytes: Buffer.byteLength(first.document),
    median_ns: Math.round(median),
    min_ns: Math.round(min),
    cpu_median_ns: Math.round(cpuMedian),
    cpu_min_ns: Math.round(cpuMin),
    samples: SAMPLES,
    batch,
    node: process.version,
  }));
}
if (sink === 0) console.error('nothing was scrubbed');
