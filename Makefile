# svmm: `make run` sets up a fresh machine and boots the tiny guest; `make test` runs every test.
SHELL := /bin/bash
RELEASE := .build/release/svmm
DEBUG := .build/debug/svmm
GUEST := guest-images/out/blkguest.elf
SCRATCH := scratch

.PHONY: all deps guest build run test interop-test graph bench bench-plot bench-nbd bench-migrate fuzz clean kvm-check check-sanitizers iotests iotests-passing

all: build

deps:
	@scripts/install-deps.sh

guest:
	@$(MAKE) -s -C guest-images

# The release build links Swift's standard library and runtime statically (README "Figures": it
# starts sooner and maps less than the shared libraries); libaio, libfdt, libseccomp and ISA-L stay
# shared. It links with the toolchain's lld, every function in a section of its own, in the order
# scripts/svmm.order lists (the functions a profiled run executes, hottest first: see
# scripts/symbol-order.py), so the code that runs sits in few 64 KiB fault-around windows; and
# with packed relative relocations (DT_RELR), which the loader reads in a few pages instead of
# 1.8 MB. The debug build `make test` uses is left as it is.
RELEASE_FLAGS := -c release --static-swift-stdlib -Xswiftc -use-ld=lld -Xswiftc -Xfrontend -Xswiftc -function-sections \
    -Xlinker --symbol-ordering-file=$(CURDIR)/scripts/svmm.order -Xlinker --no-warn-symbol-ordering \
    -Xlinker -z -Xlinker pack-relative-relocs
build: guest
	swift build $(RELEASE_FLAGS) --product svmm

kvm-check:
	@test -c /dev/kvm && test -r /dev/kvm && test -w /dev/kvm || { echo "FATAL: /dev/kvm is missing or not accessible: svmm needs KVM" >&2; exit 1; }

run: deps build kvm-check
	@mkdir -p $(SCRATCH) && rm -f $(SCRATCH)/run.raw && truncate -s 64M $(SCRATCH)/run.raw
	@echo "== booting $(GUEST) in mode=selftest on a fresh 64 MiB raw disk"
	@$(RELEASE) -m 64M -kernel $(GUEST) -append "mode=selftest" \
	    -blockdev driver=file,node-name=disk0,filename=$(SCRATCH)/run.raw \
	    -device virtio-blk-device,drive=disk0,id=vblk0,serial=svmm-run; \
	  status=$$?; echo "== guest exit status $$status (1 = SELFTEST PASS)"; test $$status -eq 1
	@swift build $(RELEASE_FLAGS) --product svmm-migrate
	@echo "== the main job: storage migration between two svmm processes, the guest writing"
	@SCRATCH=$(SCRATCH) scripts/demo-storage-migration.sh

test: deps guest kvm-check
	swift build
	SVMM_BIN=$(CURDIR)/$(DEBUG) GUEST_ELF=$(CURDIR)/$(GUEST) swift test
	$(MAKE) interop-test
	$(MAKE) iotests-passing

# Python interop tests (Tests/interop): the real qemu.qmp client against svmm's QMP monitor,
# using the debug binary as `make test` builds it. INTEROP_TARGET=qemu runs the same tests
# against qemu-system-x86_64 (QEMU 7.2) for comparison; PYTEST_ARGS passes extra options
# (e.g. PYTEST_ARGS='-m "not qemu_deviation"' to leave out checks svmm does not meet yet).
# test_differential.py always runs both: each scenario of diff_scenarios.py against svmm and QEMU 7.2,
# transcripts compared (DIFF_SHOW=1 with PYTEST_ARGS=-s prints them).
interop-test: deps guest kvm-check
	SVMM_BIN=$(CURDIR)/$(DEBUG) GUEST_ELF=$(CURDIR)/$(GUEST) PYTHONDONTWRITEBYTECODE=1 \
	    venv/bin/python -m pytest -q Tests/interop $(PYTEST_ARGS)

# svmm under ThreadSanitizer and AddressSanitizer through the interop suite (slow: not in `make test`).
check-sanitizers: deps guest kvm-check
	scripts/check-sanitizers.sh

# swift test (unit and KVM integration tests, the latter with the sanitized svmm) under
# ThreadSanitizer / AddressSanitizer; a report from any process fails it. TEST_FILTER=Name narrows it.
.PHONY: test-tsan test-asan
test-tsan: deps guest kvm-check
	scripts/test-sanitized.sh thread
test-asan: deps guest kvm-check
	scripts/test-sanitized.sh address

# libFuzzer over every parser of outside input (README "Fuzzing"): FUZZ_SECONDS=N per target
# (default 60), FUZZ_TARGETS="elf qmp" for some of them. Crashes land in Tests/fuzz-corpus/<target>/crashes/.
fuzz:
	scripts/fuzz.sh

# Renders the block graph of a running svmm as SVG with Graphviz:
#   make graph QMP=/path/to/qmp.sock [OUT=block-graph.svg]
# (start svmm with -qmp unix:/path/to/qmp.sock,server=on,wait=off; the dot source goes beside OUT)
QMP ?=
OUT ?= block-graph.svg
graph:
	@test -x venv/bin/python || { echo "venv/ is missing: run make deps" >&2; exit 1; }
	@test -n "$(QMP)" || { echo "usage: make graph QMP=/path/to/qmp.sock [OUT=block-graph.svg]" >&2; exit 1; }
	venv/bin/python scripts/render_block_graph.py $(QMP) $(OUT)

# Every suite (bench.py, nbd.py, migrate.py, mirror.py), then one table of all their rows.
# QUICK=1: one or three short runs of each on 256 MiB disks (under 2 minutes), for before/after checks.
bench: deps build kvm-check
	bench/run.sh

# Draws the newest results of each bench suite (bench/results/*.json) as bench/results/chart.svg.
bench-plot:
	@command -v gnuplot >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gnuplot-nox >/dev/null; }
	python3 bench/plot.py

# nbdcopy of 1 GiB from/to svmm's NBD export vs qemu-nbd's, as ratios. Every bench target writes its rows
# to bench/results/<date>-<suite>.json (bench/results.py); make bench-plot draws them all.
bench-nbd: deps build
	python3 bench/nbd.py

# Live migration of a 512 MiB guest (idle, writer, ramdirty mb=64) and restore from exec:, svmm vs QEMU 7.2.
bench-migrate: deps build
	python3 bench/migrate.py

clean:
	rm -rf .build $(SCRATCH)
	@$(MAKE) -s -C guest-images clean

# blockdev-mirror of 1 GiB to a file and to an NBD export, guest idle and writing, vs QEMU (README "Mirror").
.PHONY: bench-mirror
bench-mirror: deps build kvm-check
	venv/bin/python bench/mirror.py

# QEMU 7.2's own qemu-iotests (Debian's source package, fetched once into .cache/iotests with a
# private apt configuration) against svmm's debug build, then against QEMU 7.2 (-accel qtest mapped
# to tcg); one table. IOTESTS="a b" picks tests; IOTESTS_QEMU=0 runs svmm only (scripts/iotests.py).
IOTESTS ?=
# The iotests svmm passes: `make test` runs them (add a test here once it passes).
IOTESTS_PASSING := migration-permissions mirror-top-perms 194 mirror-ready-cancel-error nbd-multiconn 132 152
iotests: deps guest
	swift build
	IOTESTS="$(IOTESTS)" IOTESTS_SVMM=$(CURDIR)/$(DEBUG) scripts/iotests.py

iotests-passing: deps guest
	swift build
	IOTESTS="$(IOTESTS_PASSING)" IOTESTS_QEMU=0 IOTESTS_SVMM=$(CURDIR)/$(DEBUG) scripts/iotests.py

# Storage migration (mirror to NBD + live migration) of a 256 MiB guest with a 1 GiB disk, idle and writing, vs QEMU 7.2.
.PHONY: bench-storage-migrate
bench-storage-migrate: deps build kvm-check
	venv/bin/python bench/storage_migrate.py

# The soak (README "Reliability"): the writer guest under a sandboxed release svmm, 1 request in
# 1000 failing (blkdebug) under werror/rerror=stop + cont, an NBD client on the neighbour node,
# mirror and storage migration in a loop; every image qemu-img checked. SOAK_SECONDS=240 bounds it.
.PHONY: soak
soak: deps build kvm-check
	python3 scripts/soak.py --svmm $(RELEASE) --workdir $(SCRATCH)/soak
