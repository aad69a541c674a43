# Developer entry points. The tests are `bash scripts/test.sh` (README); these are extra.

# Runs every benchmark and rewrites BENCHMARKS.md from the results (bench/run.sh).
# `make bench PARTS="wasm migrate"` re-runs some of: scrub fifo wasm migrate saves.
.PHONY: bench
bench:
	bash bench/run.sh $(PARTS)
