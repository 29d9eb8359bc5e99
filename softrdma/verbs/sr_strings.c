/* softrdma: names of enums and link rates, as the real library reports. */
#include "sr_internal.h"

SR_API const char *ibv_wc_status_str(enum ibv_wc_status s)
{
    static const char *const n[] = {
        "success", "local length error", "local QP operation error",
        "local EE context operation error", "local protection error", "Work Request Flushed Error",
        "memory management operation error", "bad response error", "local access error",
        "remote invalid request error", "remote access error", "remote operation error",
        "transport retry counter exceeded", "RNR retry counter exceeded",
        "local RDD violation error", "remote invalid RD request", "aborted error",
        "invalid EE context number", "invalid EE context state", "fatal error",
        "response timeout error", "general error", "TM error", "TM rendezvous error",
    };
    return (unsigned)s < sizeof n / sizeof n[0] ? n[s] : "unknown";
}

SR_API const char *ibv_node_type_str(enum ibv_node_type t)
{
    static const char *const n[] = { "unknown", "InfiniBand channel adapter",
        "InfiniBand switch", "InfiniBand router", "iWARP NIC", "usNIC", "usNIC UDP",
        "unspecified" };
    return (t >= 0 && (unsigned)t < sizeof n / sizeof n[0]) ? n[t] : "unknown";
}

SR_API const char *ibv_port_state_str(enum ibv_port_state s)
{
    static const char *const n[] = { "PORT_NOP", "PORT_DOWN", "PORT_INIT", "PORT_ARMED",
        "PORT_ACTIVE", "PORT_ACTIVE_DEFER" };
    return (unsigned)s < sizeof n / sizeof n[0] ? n[s] : "unknown";
}

SR_API const char *ibv_event_type_str(enum ibv_event_type e)
{
    static const char *const n[] = { "CQ error", "local work queue catastrophic error",
        "invalid request local work queue error", "local access violation work queue error",
        "communication established", "send queue drained", "path migrated",
        "path migration request error", "local catastrophic error", "port active",
        "port error", "LID change", "P_Key change", "SM change", "SRQ catastrophic error",
        "SRQ limit reached", "last WQE reached", "client reregistration", "GID table change",
        "WQ fatal" };
    return (unsigned)e < sizeof n / sizeof n[0] ? n[e] : "unknown";
}

static const int sr_rate_mult[] = { 0, 1, 4, 12, 2, 8, 16, 24, 32, 48 };

SR_API int ibv_rate_to_mult(enum ibv_rate r)
{
    return (unsigned)r < sizeof sr_rate_mult / sizeof sr_rate_mult[0] ? sr_rate_mult[r] : -1;
}

SR_API enum ibv_rate mult_to_ibv_rate(int mult)
{
    for (unsigned i = 1; i < sizeof sr_rate_mult / sizeof sr_rate_mult[0]; i++)
        if (sr_rate_mult[i] == mult)
            return (enum ibv_rate)i;
    return IBV_RATE_MAX;
}

SR_API int ibv_rate_to_mbps(enum ibv_rate r)
{
    int m = ibv_rate_to_mult(r);
    return m > 0 ? m * 2500 : -1;
}

SR_API enum ibv_rate mbps_to_ibv_rate(int mbps)
{
    return mult_to_ibv_rate(mbps / 2500);
}
