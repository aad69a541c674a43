# Developer entry points. The tests are `bash scripts/test.sh` (README); these are extra.
.PHONY: bench soak

# Runs every benchmark and rewrites BENCHMARKS.md from the results (bench/run.sh).
# `make bench PARTS="wasm migrate"` re-runs some of: scrub scrub_process fifo wasm migrate saves serve_load.
bench:
	bash bench/run.sh $(PARTS)

# The long reliability run: every reliability test at full size, s3s-fs, fuzzing (see RELIABILITY.md).
soak:
	bash scripts/soak.sh
