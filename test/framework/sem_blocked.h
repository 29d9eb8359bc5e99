/*
 * sem_blocked.h - a thread blocked in one call, and signals sent to it
 * (signal(7) cases of sem_signals.c and test/rsocket-fw/sem_faults.c).
 *
 * The call runs in its own thread; the main thread waits until that
 * thread sleeps (state S in /proc), sends it a signal with pthread_kill,
 * waits for the handler to have run and for the thread to sleep again
 * (restarted) or return. Every wait is bounded.
 */
#ifndef SEM_BLOCKED_H
#define SEM_BLOCKED_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct sem_blocked;
typedef long (*sem_blocked_op)(struct sem_blocked *b);

struct sem_blocked {
    pthread_t th;
    volatile pid_t tid;
    sem_blocked_op op;
    int fd;
    size_t len;
    uint8_t *buf;
    long r;
    int err;
    volatile int done;
};

/* Catches sig with a handler that counts its runs; flags: sa_flags
 * (SA_RESTART or 0). */
void sem_catch(int sig, int flags);
/* Back to SIG_DFL. */
void sem_uncatch(int sig);

/* Starts op(b) in a new thread; returns once it sleeps (or returned). */
void sem_start_blocked(struct sem_blocked *b, sem_blocked_op op, int fd, uint8_t *buf, size_t len);
/* The thread sleeps (state S) or has returned. */
void sem_wait_asleep(struct sem_blocked *b);
int sem_blocked_done(struct sem_blocked *b);
/* One sig (caught by sem_catch) to the sleeping thread; returns once its
 * handler ran and the thread sleeps again or returned. */
void sem_poke(struct sem_blocked *b, int sig);
/* restart: three signals, the call still blocked after each (checked).
 * Otherwise: signals until the call returns (one arriving before the
 * thread entered its call only runs the handler), at most 20. */
void sem_interrupt(struct sem_blocked *b, int sig, int restart);
void sem_blocked_join(struct sem_blocked *b);

/* The calls. */
long sem_op_recv(struct sem_blocked *b);
long sem_op_read(struct sem_blocked *b);
long sem_op_send(struct sem_blocked *b);    /* MSG_NOSIGNAL */
long sem_op_write(struct sem_blocked *b);
long sem_op_accept(struct sem_blocked *b);

/* A connected TCP pair (test address) that carried a byte each way, the
 * server end driven by a thread: an anchored connection has finished its
 * handshake (upgraded or on TCP), so calls on it block on the connection. */
void sem_warm_pair(int *cli, int *srv);
/* Echoes one byte on *(int *)fd (a pthread start routine). */
void *sem_echo_byte(void *fd);
/* A listener on the test address, or on the wildcard (a listener on every
 * stack that may carry a client); *port: its port. */
int sem_any_listener(int wildcard, uint16_t *port);
/* A blocking connect to the test address and port. */
int sem_connect_port(uint16_t port);

#endif
