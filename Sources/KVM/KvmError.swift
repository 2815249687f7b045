/// KVM's errors are system-call errors (the ioctl and its errno): Loop's type, under KVM's name.
public typealias KvmError = SystemCallError
