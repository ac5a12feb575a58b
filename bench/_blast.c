/* The load generator of bench/mix.py: replays a file of prepared datagrams to
 * 127.0.0.1:PORT at RATE datagrams/s with sendmmsg, each from its own 127.x.y.z
 * source (IP_PKTINFO) and source port 6665, as N senders would.
 *
 * File: repeated [u32 source address, network order][u16 length, little endian][payload].
 * Usage: blast FILE PORT RATE    prints "sent SECONDS" when done.
 * A C sender, because a Python one tops out below the rates this measures.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 32

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: blast FILE PORT RATE\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f) { perror(argv[1]); return 2; }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(size);
    if (!buf || fread(buf, 1, size, f) != (size_t)size) { perror("read"); return 2; }
    fclose(f);

    long n = 0;
    for (long off = 0; off + 6 <= size; n++) {
        uint16_t len = buf[off + 4] | buf[off + 5] << 8;
        off += 6 + len;
    }
    long *offs = malloc(n * sizeof *offs);
    long off = 0;
    for (long i = 0; i < n; i++) {
        offs[i] = off;
        off += 6 + (buf[off + 4] | buf[off + 5] << 8);
    }

    int s = socket(AF_INET, SOCK_DGRAM, 0);
    int one = 1, sndbuf = 4 << 20;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(s, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    struct sockaddr_in src = {.sin_family = AF_INET, .sin_port = htons(6665)};
    if (bind(s, (struct sockaddr *)&src, sizeof src) < 0) { perror("bind"); return 2; }
    struct sockaddr_in dest = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
    dest.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    double rate = atof(argv[3]);

    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    union {
        char buf[CMSG_SPACE(sizeof(struct in_pktinfo))];
        struct cmsghdr align;
    } ctl[BATCH];

    long sent = 0;
    double start = now();
    while (sent < n) {
        long due = (long)(rate * (now() - start)) + 1;
        if (due > n) due = n;
        while (sent < due) {
            int k = due - sent < BATCH ? (int)(due - sent) : BATCH;
            memset(msgs, 0, sizeof msgs);
            for (int j = 0; j < k; j++) {
                unsigned char *e = buf + offs[sent + j];
                iov[j].iov_base = e + 6;
                iov[j].iov_len = e[4] | e[5] << 8;
                msgs[j].msg_hdr.msg_name = &dest;
                msgs[j].msg_hdr.msg_namelen = sizeof dest;
                msgs[j].msg_hdr.msg_iov = &iov[j];
                msgs[j].msg_hdr.msg_iovlen = 1;
                msgs[j].msg_hdr.msg_control = ctl[j].buf;
                msgs[j].msg_hdr.msg_controllen = sizeof ctl[j].buf;
                struct cmsghdr *c = CMSG_FIRSTHDR(&msgs[j].msg_hdr);
                c->cmsg_level = IPPROTO_IP;
                c->cmsg_type = IP_PKTINFO;
                c->cmsg_len = CMSG_LEN(sizeof(struct in_pktinfo));
                struct in_pktinfo *pi = (struct in_pktinfo *)CMSG_DATA(c);
                memset(pi, 0, sizeof *pi);
                memcpy(&pi->ipi_spec_dst, e, 4);
            }
            int r = sendmmsg(s, msgs, k, 0);
            if (r < 0) {
                if (errno == EAGAIN || errno == ENOBUFS) { usleep(100); continue; }
                perror("sendmmsg");
                return 1;
            }
            sent += r;
        }
        struct timespec pause = {0, 200000};
        nanosleep(&pause, NULL);
    }
    printf("%ld %.6f\n", sent, now() - start);
    return 0;
}
