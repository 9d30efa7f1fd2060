/* Temporary: replaced by slot-manager-varlink.c once src/shared/varlink.c is on main. */
#include "log.h"
#include "slot-manager-varlink.h"
int slot_varlink_run(const SlotContext *c, const SlotAuth *auth, const char *listen_path, uint64_t idle_usec) {
        return log_error_errno(SYNTHETIC_ERRNO(EOPNOTSUPP), "varlink support not built.");
}
