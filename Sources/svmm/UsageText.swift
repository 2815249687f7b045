/// svmm's -version and -help texts, in the shape of QEMU's (qemu-options.hx): a version line, a
/// copyright line, then `usage: NAME [options]` and the options.
enum UsageText {
    static let version = "0.7.0"

    static var versionLines: String {
        "svmm emulator version \(version) (QEMU 7.2 compatible)\n"
            + "Copyright (c) 2026 the svmm developers\n"
    }

    static func help(program: String) -> String {
        versionLines + """
            usage: \(program) [options]

            Standard options:
            -h or -help     display this help and exit
            -version        display version information and exit
            -m SIZE         guest RAM (k/M/G suffixes; plain numbers are MiB)
            -smp 1          one vCPU
            -kernel ELF     PVH ELF kernel
            -append STR     kernel command line
            -S              start paused (run state prelaunch) until QMP 'cont'

            Block devices:
            -blockdev driver=file|raw|qcow2|null-co|nbd,node-name=N[,...]
            -drive file=F,format=raw|qcow2,if=none|virtio,id=ID[,readonly=on][,cache=...][,aio=...][,discard=...]
            -drive format=help  list the block drivers
            -device virtio-blk-device|virtio-blk,drive=N[,id=ID][,serial=S][,share-rw=on|off]
            -device help        list the devices
            -device isa-debug-exit,iobase=0x501,iosize=1

            Character devices and the monitor:
            -serial stdio|file:PATH|none
            -qmp unix:PATH,server=on,wait=off | tcp:HOST:PORT,server=on,wait=off
            -chardev socket,id=ID,path=PATH,server=on,wait=off  -mon chardev=ID,mode=control
            -chardev socket,id=ID,path=PATH | socket,id=ID,fd=N  (a monitor svmm connects to / inherits)
            -qtest unix:path=PATH | chardev:ID  (connected and held open; no qtest commands)

            Machine:
            -machine microvm|none[,accel=kvm|qtest] | help   (also -M)
            -accel kvm|qtest    qtest: no kernel, no guest code; QMP, block layer, jobs, migration work
            -vga none, -object iothread,id=ID

            Accepted as in QEMU: -nographic, -display none, -nodefaults, -no-user-config, -enable-kvm, -name N

            """
    }
}
