import Block

/// The `help` values QEMU answers on stdout with exit status 0, in QEMU 7.2's shapes, which the
/// qemu-iotests harness parses: `-machine help` (the ` (default)` line), `-drive format=help`
/// (the first line split at `:`), `-device help` (searched for `virtio-blk`).
enum HelpText {
    /// machine_help_func: name padded to 20 columns, description, the default marked.
    static var machines: String {
        "Supported machines are:\n"
            + line("microvm", "microvm (i386) (default)")
            + line("none", "empty machine")
    }

    /// bdrv_iterate_format's list, sorted as QEMU sorts it; every driver svmm has can write.
    static var formats: String {
        let names = BlockdevOptions.driverNames.sorted().joined(separator: " ")
        return "Supported formats: \(names)\nSupported formats (read-only): \(names)\n"
    }

    /// qdev_device_help's list: categories, then `name "...", bus ...[, alias "..."]`.
    static var devices: String {
        "Storage devices:\n"
            + "name \"virtio-blk-device\", bus virtio-bus, alias \"virtio-blk\"\n"
            + "\nMisc devices:\n"
            + "name \"isa-debug-exit\", bus ISA\n"
    }

    private static func line(_ name: String, _ description: String) -> String {
        name + String(repeating: " ", count: max(0, 20 - name.count)) + " " + description + "\n"
    }
}
