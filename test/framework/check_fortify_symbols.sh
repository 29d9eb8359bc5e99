#!/bin/sh
# check_fortify_symbols.sh BINARY - the fortified test program must call the
# _chk entries (otherwise sem_fortify would not test their interposition).
bin=$1
missing=""
for sym in __read_chk __recv_chk __recvfrom_chk __poll_chk __ppoll_chk __fdelt_chk; do
    nm -D --undefined-only "$bin" | grep -qw "$sym" || missing="$missing $sym"
done
if [ -n "$missing" ]; then
    echo "FAIL $bin does not reference:$missing (was it built with -O2 -D_FORTIFY_SOURCE=2?)" >&2
    exit 1
fi
echo "ok $bin references every fortified entry"
