/* Provider libraries beside softrdma: Debian's libmlx5 and libefa (which
 * perftest links) load against the device's libibverbs with every symbol
 * bound (RTLD_NOW: their imports of the private IBVERBS_PRIVATE_34
 * interface resolve), and their direct-verbs entry points refuse softrdma0
 * with EOPNOTSUPP instead of treating it as their hardware. Also checks
 * ibv_query_gid_ex / ibv_query_gid_table, which perftest uses to choose a
 * GID. Run with LD_LIBRARY_PATH at the softrdma build. */
#include <dlfcn.h>
#include <errno.h>
#include <infiniband/efadv.h>
#include <infiniband/mlx5dv.h>
#include <infiniband/verbs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;
#define CHECK(cond, ...) do { if (!(cond)) { failures++; \
    fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

static void *must_dlsym(void *lib, const char *name)
{
    void *f = dlsym(lib, name);
    if (!f) {
        fprintf(stderr, "FAIL: %s not found: %s\n", name, dlerror());
        exit(1);
    }
    return f;
}

static void check_mlx5(struct ibv_device *dev)
{
    void *lib = dlopen("libmlx5.so.1", RTLD_NOW | RTLD_LOCAL);
    CHECK(lib, "libmlx5.so.1 does not load on softrdma: %s", dlerror());
    if (!lib)
        return;
    bool (*supported)(struct ibv_device *) = must_dlsym(lib, "mlx5dv_is_supported");
    struct ibv_context *(*open)(struct ibv_device *, struct mlx5dv_context_attr *) =
        must_dlsym(lib, "mlx5dv_open_device");
    CHECK(!supported(dev), "mlx5dv_is_supported claims softrdma0");
    struct mlx5dv_context_attr attr = { .flags = MLX5DV_CONTEXT_FLAGS_DEVX };
    errno = 0;
    CHECK(!open(dev, &attr) && errno == EOPNOTSUPP,
          "mlx5dv_open_device on softrdma0: errno %d, want EOPNOTSUPP", errno);
}

static void check_efa(struct ibv_context *ctx)
{
    void *lib = dlopen("libefa.so.1", RTLD_NOW | RTLD_LOCAL);
    CHECK(lib, "libefa.so.1 does not load on softrdma: %s", dlerror());
    if (!lib)
        return;
    int (*query)(struct ibv_context *, struct efadv_device_attr *, uint32_t) =
        must_dlsym(lib, "efadv_query_device");
    struct efadv_device_attr a;
    int rc = query(ctx, &a, sizeof a);
    CHECK(rc == EOPNOTSUPP, "efadv_query_device on softrdma0: %d, want EOPNOTSUPP", rc);
}

static void check_gid_ex(struct ibv_context *ctx)
{
    struct ibv_gid_entry e, table[64];
    union ibv_gid g;
    CHECK(ibv_query_gid_ex(ctx, 1, 0, &e, 0) == 0, "ibv_query_gid_ex port 1 index 0");
    CHECK(e.gid_type == IBV_GID_TYPE_ROCE_V2 && e.port_num == 1 && e.gid_index == 0,
          "gid entry: type %u port %u index %u", e.gid_type, e.port_num, e.gid_index);
    CHECK(ibv_query_gid(ctx, 1, 0, &g) == 0 && !memcmp(&g, &e.gid, sizeof g),
          "ibv_query_gid_ex and ibv_query_gid disagree");
    CHECK(ibv_query_gid_ex(ctx, 1, 15, &e, 0) == ENODATA, "empty GID slot: want ENODATA");
    CHECK(ibv_query_gid_ex(ctx, 200, 0, &e, 0) == EINVAL, "no port 200: want EINVAL");
    ssize_t n = ibv_query_gid_table(ctx, table, 64, 0);
    CHECK(n >= 1, "ibv_query_gid_table: %zd", n);
    CHECK(n < 1 || !memcmp(&table[0].gid, &g, sizeof g), "table[0] is not port 1's GID 0");
    CHECK(ibv_query_gid_table(ctx, table, 0, 0) == -EINVAL, "a table too small: want -EINVAL");
}

int main(void)
{
    int n = 0;
    struct ibv_device **l = ibv_get_device_list(&n);
    if (!l || n < 1 || strcmp(ibv_get_device_name(l[0]), "softrdma0")) {
        fprintf(stderr, "FAIL: softrdma0 not found (LD_LIBRARY_PATH?)\n");
        return 1;
    }
    struct ibv_context *ctx = ibv_open_device(l[0]);
    if (!ctx) {
        fprintf(stderr, "FAIL: ibv_open_device\n");
        return 1;
    }
    check_mlx5(l[0]);
    check_efa(ctx);
    check_gid_ex(ctx);
    ibv_close_device(ctx);
    ibv_free_device_list(l);
    printf("%s\n", failures ? "FAILED" : "PASS: provider libraries and GID table");
    return failures != 0;
}
