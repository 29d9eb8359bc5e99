# Semantic preload runs that do not pass against the current framework
# (branch `framework`); registered only with -DNSTACK_TEST_PENDING=ON.
# Remove an entry once the framework passes it. Format: <mode>:<program>.
#
# Status against framework 523da90: every `preload` and `preload-kernel` run
# passes (and sem.preload.nosocket). Every `preload-shadow` run fails with
# "the shadow module was never used": that build has no config library yet
# ("config: built without the config library; kernel stack only"), so no
# route reaches the shadow. Drop these once main carries framework + config.
set(SEM_PENDING)
foreach(p sem_epoll sem_poll sem_connect sem_data sem_dup sem_threads sem_fork sem_fortify)
  list(APPEND SEM_PENDING "preload-shadow:${p}")
endforeach()
