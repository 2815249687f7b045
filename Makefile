# svmm: `make run` sets up a fresh machine and boots the tiny guest; `make test` runs every test.
SHELL := /bin/bash
RELEASE := .build/release/svmm
DEBUG := .build/debug/svmm
GUEST := guest-images/out/blkguest.elf
SCRATCH := scratch

.PHONY: all deps guest build run test bench clean kvm-check

all: build

deps:
	@scripts/install-deps.sh

guest:
	@$(MAKE) -s -C guest-images

build: guest
	swift build -c release --product svmm

kvm-check:
	@test -c /dev/kvm && test -r /dev/kvm && test -w /dev/kvm || { echo "FATAL: /dev/kvm is missing or not accessible: svmm needs KVM" >&2; exit 1; }

run: deps build kvm-check
	@mkdir -p $(SCRATCH) && rm -f $(SCRATCH)/run.raw && truncate -s 64M $(SCRATCH)/run.raw
	@echo "== booting $(GUEST) in mode=selftest on a fresh 64 MiB raw disk"
	@$(RELEASE) -m 64M -kernel $(GUEST) -append "mode=selftest" \
	    -blockdev driver=file,node-name=disk0,filename=$(SCRATCH)/run.raw \
	    -device virtio-blk-device,drive=disk0,id=vblk0,serial=svmm-run; \
	  status=$$?; echo "== guest exit status $$status (1 = SELFTEST PASS)"; test $$status -eq 1

test: deps guest kvm-check
	swift build
	SVMM_BIN=$(CURDIR)/$(DEBUG) GUEST_ELF=$(CURDIR)/$(GUEST) swift test

bench: deps build kvm-check
	bench/run.sh

clean:
	rm -rf .build $(SCRATCH)
	@$(MAKE) -s -C guest-images clean
