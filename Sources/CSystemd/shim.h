#ifndef COSTD_CSYSTEMD_SHIM_H
#define COSTD_CSYSTEMD_SHIM_H
/* libsystemd's sd-daemon API: sd_notify, sd_listen_fds, sd_watchdog_enabled, sd_is_socket_unix.
   (sd_notifyf is variadic and not used from Swift.) */
#include <systemd/sd-daemon.h>
#endif
