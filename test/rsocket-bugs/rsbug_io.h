/*
 * rsbug_io.h - one set of known-bug cases, two ways of reaching the engine.
 *
 * Built with RSBUG_API, every socket call below is the rsocket API of
 * libdmm_rsocket.so (rsocket, rrecvmsg, rpoll, rselect, ...). Built without
 * it, they are the plain libc calls, and the program runs under the
 * libnStackAPI.so preload so the framework routes them to the rsocket
 * module. Non-socket descriptors (files, pipes) always use libc.
 */
#ifndef RSBUG_IO_H
#define RSBUG_IO_H

#include <poll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/uio.h>

#ifdef RSBUG_API
#include <rdma/rsocket.h>
#define SK(call) r##call
#define RSBUG_FLAVOUR "api"
#else
#define SK(call) call
#define RSBUG_FLAVOUR "fw"
#endif

#endif
