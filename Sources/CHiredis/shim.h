#ifndef ERP_GATEWAY_CHIREDIS_SHIM_H
#define ERP_GATEWAY_CHIREDIS_SHIM_H
#include <hiredis/hiredis.h>
#include <hiredis/read.h>

/* hiredis reports reader errors through fields of a struct Swift cannot reach portably;
   these accessors keep that detail in C. */
static inline int erp_redis_reader_has_error(const redisReader *reader) { return reader->err != 0; }
static inline const char *erp_redis_reader_error(const redisReader *reader) { return reader->errstr; }
#endif
