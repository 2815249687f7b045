// NBD: wire codec, server and client (in progress).
