#!/usr/bin/env python3
"""rusage_run.py OUT CMD...: run CMD, wait for it with wait4() and write
its resource usage to OUT as "nvcsw N nivcsw M utime_us U stime_us S"
(voluntary context switches = sleeps; the process's threads included).
Exits with CMD's status (128 + signal when killed)."""
import os
import sys


def main():
    if len(sys.argv) < 3:
        sys.stderr.write("usage: rusage_run.py OUT CMD...\n")
        return 2
    out, cmd = sys.argv[1], sys.argv[2:]
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(cmd[0], cmd)
        finally:
            os._exit(127)
    _, status, ru = os.wait4(pid, 0)
    with open(out, "w") as f:
        f.write("nvcsw %d nivcsw %d utime_us %d stime_us %d\n" % (
            ru.ru_nvcsw, ru.ru_nivcsw, int(ru.ru_utime * 1e6), int(ru.ru_stime * 1e6)))
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


if __name__ == "__main__":
    sys.exit(main())
