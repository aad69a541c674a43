.PHONY: soak

# The long reliability run: every reliability test at full size, s3s-fs, fuzzing (see RELIABILITY.md).
soak:
	bash scripts/soak.sh
