# shellcheck shell=bash
# Writing a module_config.json / rd_config.json pair and the environment that
# puts an application under libnStackAPI.so, the way the README documents it.
# Shared by tools/demo.sh, tools/bench.sh and test/programs.
#
#   nstack_write_config DIR RSOCKET_SUBNET_STACK [RSOCKET_LIBNAME]
#       writes DIR/module_config.json and DIR/rd_config.json routing
#       192.168.21.0/24 to RSOCKET_SUBNET_STACK ("rsocket" or "kernel") and
#       192.168.22.0/24 to the kernel.
#       NSTACK_UPGRADE_AFTER=N in the environment adds the long-lived
#       policy ("upgrade_after_bytes": N) to the 192.168.21.0/24 route.
#   nstack_preload_env RELEASE DIR
#       fills the array NSTACK_PRELOAD_ENV with NAME=VALUE words for env(1).

nstack_write_config() {
    local dir=$1 stack21=$2 rsocket_lib=${3:-}
    local modules='{ "stack_name": "kernel", "libname": "./", "loadtype": "static",
      "deploytype": "1", "stackid": "0" }'
    if [ "$stack21" = rsocket ]; then
        modules="$modules,
    { \"stack_name\": \"rsocket\", \"libname\": \"${rsocket_lib:-libdmm_rsocket.so}\",
      \"loadtype\": \"dynamic\", \"deploytype\": \"1\", \"stackid\": \"1\" }"
    fi
    cat >"$dir/module_config.json" <<JSON
{
  "default_stack_name": "kernel",
  "module_list": [
    $modules
  ]
}
JSON
    cat >"$dir/rd_config.json" <<JSON
{
  "ip_route": [
    { "subnet": "192.168.21.0/24", "stack_name": "$stack21"${NSTACK_UPGRADE_AFTER:+, \"upgrade_after_bytes\": $NSTACK_UPGRADE_AFTER} },
    { "subnet": "192.168.22.0/24", "stack_name": "kernel" }
  ],
  "prot_route": []
}
JSON
}

nstack_preload_env() {
    local release=$1 dir=$2
    local libpath="$release/lib64"
    # The software RDMA device stands in for libibverbs.so.1/librdmacm.so.1
    # on machines without RDMA; it must be found before the system's.
    [ -d "$release/lib64/softrdma" ] && libpath="$release/lib64/softrdma:$libpath"
    NSTACK_PRELOAD_ENV=(
        "LD_LIBRARY_PATH=$libpath${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
        "LD_PRELOAD=$release/lib64/libnStackAPI.so"
        "NSTACK_MOD_CFG_FILE=$dir/module_config.json"
        "NSTACK_MOD_CFG_RD=$dir/rd_config.json"
    )
}
