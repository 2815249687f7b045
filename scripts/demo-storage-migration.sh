#!/usr/bin/env bash
# The project's main job as a demo (`make run`): two svmm processes, the tiny guest writing its
# disk (mode=writer) on the source, storage migration with svmm-migrate (NBD export on the
# destination, mirror, live migration, the early resume refused, the export stopped, the resume
# that succeeds), then the guest's verification still passing on the destination.
# Logs and make graph's pictures of the destination (before/after resume) go to $SCRATCH.
set -euo pipefail
SVMM=${SVMM:-.build/release/svmm}
MIGRATE=${MIGRATE:-.build/release/svmm-migrate}
GUEST=${GUEST:-guest-images/out/blkguest.elf}
out=${SCRATCH:-scratch}/storage-migration
rm -rf "$out" && mkdir -p "$out"
truncate -s 64M "$out/source.raw" "$out/destination.raw"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

start() {  # name, extra options...
    local name=$1; shift
    "$SVMM" -m 64M -serial stdio -kernel "$GUEST" -append mode=writer \
        -qmp "unix:$out/$name.qmp,server=on,wait=off" \
        -blockdev "driver=file,node-name=d0,filename=$out/$name.raw" \
        -device virtio-blk-device,drive=d0,id=vblk0 "$@" > "$out/$name.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 200); do [ -S "$out/$name.qmp" ] && return; sleep 0.05; done
    echo "FATAL: $name: no QMP socket; log:" >&2; cat "$out/$name.log" >&2; exit 1
}
rounds() { grep -c "WRITER round [0-9]* ok" "$out/$1.log" || true; }

echo "== source: the writer guest on $out/source.raw; destination: -incoming defer on an empty disk"
start source
start destination -incoming defer
while [ "$(rounds source)" -lt 2 ]; do sleep 0.2; done
venv/bin/python scripts/render_block_graph.py "$out/destination.qmp" "$out/destination-before.svg" >/dev/null
echo "== svmm-migrate (its log: $out/svmm-migrate.log)"
status=0
"$MIGRATE" --source "unix:$out/source.qmp" --destination "unix:$out/destination.qmp" --device d0 \
    --target-node d0 --nbd "unix:$out/nbd.sock" --migrate-uri "unix:$out/migrate.sock" \
    2> "$out/svmm-migrate.progress" | tee "$out/svmm-migrate.log" || status=$?
venv/bin/python scripts/render_block_graph.py "$out/destination.qmp" "$out/destination-after.svg" >/dev/null
echo "== svmm-migrate exit status $status (0 = the destination runs with its device's permissions in force)"
test "$status" -eq 0
before=$(rounds destination)
for _ in $(seq 600); do [ "$(rounds destination)" -ge $((before + 3)) ] && break; sleep 0.1; done
if grep -q FAIL "$out/destination.log" "$out/source.log" || [ "$(rounds destination)" -lt $((before + 3)) ]; then
    echo "FATAL: the guest does not verify on the destination; see $out/destination.log" >&2; exit 1
fi
echo "== the guest verifies on the destination: $(grep "WRITER round" "$out/destination.log" | tail -1)"
echo "== graphs of the destination before and after resume: $out/destination-before.svg, $out/destination-after.svg"
