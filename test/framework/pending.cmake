# Semantic preload runs that do not pass against the current framework
# (branch `framework`); registered only with -DNSTACK_TEST_PENDING=ON.
# Remove an entry once the framework passes it. Format: <mode>:<program>.
# Reasons are in doc/testing-framework.md ("Known failures").
set(SEM_PENDING)
foreach(p sem_epoll sem_poll sem_connect sem_data sem_dup sem_threads sem_fork sem_fortify)
  foreach(mode preload preload-kernel preload-shadow)
    list(APPEND SEM_PENDING "${mode}:${p}")
  endforeach()
endforeach()
list(APPEND SEM_PENDING "preload:nosocket")
