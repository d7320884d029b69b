#ifndef COSTD_CHIREDIS_SHIM_H
#define COSTD_CHIREDIS_SHIM_H
/* hiredis 0.14 (Debian 12). Only binary-safe, non-variadic calls are used from Swift:
   redisCommandArgv / redisAppendCommandArgv / redisGetReply. */
#include <hiredis/hiredis.h>
#endif
