# Semantic preload runs that do not pass against the current framework;
# registered only with -DNSTACK_TEST_PENDING=ON.
# Remove an entry once the framework passes it. Format: <mode>:<program>.
# Empty: every mode of every program passes.
set(SEM_PENDING)
