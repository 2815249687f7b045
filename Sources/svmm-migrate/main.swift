import Glibc

// The storage-migration driver comes in the next commit; until then it refuses to run.
fputs("svmm-migrate: not built yet\n", stderr)
exit(1)
