#ifndef ERP_GATEWAY_CJWT_SHIM_H
#define ERP_GATEWAY_CJWT_SHIM_H
#include <jwt.h>
#endif
