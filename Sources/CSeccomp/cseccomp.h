// libseccomp (Debian's libseccomp-dev) for `-sandbox on`: linkage only, no logic. Swift calls the
// non-variadic seccomp_rule_add_array (it cannot call the variadic seccomp_rule_add).
#include <seccomp.h>
