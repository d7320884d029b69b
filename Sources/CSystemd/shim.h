#ifndef COSTD_CSYSTEMD_SHIM_H
#define COSTD_CSYSTEMD_SHIM_H
/* libsystemd's sd-daemon API: sd_notify, sd_listen_fds, sd_watchdog_enabled, sd_is_socket_unix.
   (sd_notifyf is variadic and not used from Swift.) */
#include <systemd/sd-daemon.h>
/* sd-journal's sd_journal_sendv: structured entries (an alert's MESSAGE_ID and fields). */
#include <systemd/sd-journal.h>
#endif
