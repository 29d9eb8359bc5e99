#!/bin/bash
# libnStackAPI.so exports every libc entry of the interception list (so no
# socket call slips past the dispatcher), and nothing else but the built-in
# kernel stack's register function: in particular no json-c symbol (json-c
# is linked statically and hidden, so the preload cannot replace an
# application's own json-c) and no libjson-c.so in its NEEDED list.
set -u
LIB="$NSTACK_RELEASE/lib64/libnStackAPI.so"
[ -f "$LIB" ] || { echo "FAIL: $LIB missing" >&2; exit 1; }
FAILS=0
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }

# The interception list of the issue.
REQUIRED="socket socketpair bind listen accept accept4 connect send sendto sendmsg
sendmmsg recv recvfrom recvmsg recvmmsg read write readv writev close shutdown
getsockopt setsockopt getsockname getpeername fcntl fcntl64 ioctl select pselect
poll ppoll epoll_create epoll_create1 epoll_ctl epoll_wait epoll_pwait
epoll_pwait2 dup dup2 dup3 close_range fork sendfile sendfile64 __read_chk
__recv_chk __recvfrom_chk __poll_chk __ppoll_chk __fdelt_chk"
# Also exported on purpose: glibc's internal fcntl alias, vfork (made a
# fork), the exec family (TCP-anchored connections an exec'd image
# inherits, doc/fork.md), and the kernel stack's registration (the
# "static" loadtype).
# pipe, pipe2, eventfd and timerfd_create: the fds a module and its device
# library create during a module call go to the high range, out of the
# app's (wrap_modfd.c; any other caller gets libc's call unchanged).
# posix_spawn, posix_spawnp, system, popen: the exec rules for the program
# they start (wrap_spawn.c, wrap_system.c); the posix_spawn_file_actions_*
# calls that change fds, to know what the child gets (spawn_fa.c).
# setrlimit, setrlimit64, prlimit, prlimit64: the module stacks are started
# before RLIMIT_NPROC is lowered (wrap_rlimit.c; haproxy sets it to 0);
# prctl: what exit() needs is done before a seccomp filter (wrap_prctl.c).
# sigaction, __sigaction, signal, bsd_signal, ssignal, sysv_signal,
# __sysv_signal, sigset, siginterrupt: handlers run behind the trampoline
# that tells a wait in user space which signal interrupted it
# (wrap_signal.c, core/sig_track.c).
# syscall: the socket and fd calls made through it on descriptors the
# dispatcher tracks (libuv closes with syscall(SYS_close); wrap_syscall.c),
# and a fork made with the raw clone system call (wrap_clone.c).
# chroot: the configuration is read before the process confines itself
# (wrap_chroot.c; dovecot's imap-login).
# splice: between a pipe and a connection the module carries, made of the
# interposed calls (wrap_splice.c); fdopen, dprintf, vdprintf: libc writes
# those by itself (wrap_stdio.c, anchor_stdio.c).
ALSO="setrlimit setrlimit64 prlimit prlimit64 prctl syscall chroot splice fdopen dprintf vdprintf __dprintf_chk __vdprintf_chk sigaction __sigaction signal bsd_signal ssignal sysv_signal __sysv_signal sigset siginterrupt
__fcntl vfork execve execvpe execv execvp execl execlp execle fexecve execveat kernel_stack_register
pipe pipe2 eventfd timerfd_create posix_spawn posix_spawnp system popen
posix_spawn_file_actions_init posix_spawn_file_actions_destroy
posix_spawn_file_actions_addclose posix_spawn_file_actions_adddup2
posix_spawn_file_actions_addopen posix_spawn_file_actions_addclosefrom_np"

EXPORTED=$(nm -D --defined-only "$LIB" | awk '$2 ~ /^[TWiV]$/ {print $3}' | sed 's/@.*//' | sort -u)
[ -n "$EXPORTED" ] || fail "nm -D found no exported functions in $LIB"

for s in $REQUIRED; do
    grep -qx -- "$s" <<<"$EXPORTED" || fail "$s is not exported (calls to it bypass the dispatcher)"
done
for s in $EXPORTED; do
    case " $(echo $REQUIRED $ALSO) " in
        *" $s "*) ;;
        *) fail "unexpected exported symbol $s (would be injected into every application)" ;;
    esac
done
# Data symbols must not leak either.
DATA=$(nm -D --defined-only "$LIB" | awk '$2 ~ /^[BDGRS]$/ {print $3}')
[ -z "$DATA" ] || fail "exported data symbols: $DATA"
if readelf -d "$LIB" | grep -q 'NEEDED.*libjson-c'; then
    if [ -f /usr/lib/x86_64-linux-gnu/libjson-c.a ]; then
        fail "libjson-c.a is available but $LIB still needs libjson-c.so"
    fi
fi

if [ "$FAILS" -ne 0 ]; then
    echo "$FAILS check(s) failed" >&2
    exit 1
fi
echo "exports: $(wc -w <<<"$REQUIRED") interposed names present, nothing else exported"
