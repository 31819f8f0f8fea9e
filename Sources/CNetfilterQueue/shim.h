#ifndef FTCP_CNETFILTERQUEUE_SHIM_H
#define FTCP_CNETFILTERQUEUE_SHIM_H
/* libnetfilter_queue's headers are not self-contained: these come first. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <linux/netlink.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <libnetfilter_queue/linux_nfnetlink_queue.h>

/* Function-like macros do not import into Swift; these wrap what the shell needs. */

/** Number of attribute slots nfq_nlmsg_parse fills (NFQA_MAX + 1). */
static inline int ftcp_nfqa_slots(void) { return NFQA_MAX + 1; }

/** Payload of a netlink attribute. */
static inline const void *ftcp_nla_data(const struct nlattr *a) {
    return (const char *)a + NLA_HDRLEN;
}

/** Payload length of a netlink attribute. */
static inline uint16_t ftcp_nla_payload_len(const struct nlattr *a) {
    return (uint16_t)(a->nla_len - NLA_HDRLEN);
}

/** Appends a big-endian 32-bit attribute to a message (what libmnl's mnl_attr_put_u32 does). */
static inline void ftcp_nlmsg_put_be32(struct nlmsghdr *nlh, uint16_t type, uint32_t host_value) {
    struct nlattr *a = (struct nlattr *)((char *)nlh + NLMSG_ALIGN(nlh->nlmsg_len));
    uint32_t be = htonl(host_value);
    a->nla_type = type;
    a->nla_len = (uint16_t)(NLA_HDRLEN + sizeof(be));
    memcpy((char *)a + NLA_HDRLEN, &be, sizeof(be));
    nlh->nlmsg_len = NLMSG_ALIGN(nlh->nlmsg_len) + NLA_ALIGN(a->nla_len);
}

static inline int ftcp_nlmsg_ok(const struct nlmsghdr *nlh, int len) { return NLMSG_OK(nlh, len); }
static inline struct nlmsghdr *ftcp_nlmsg_next(struct nlmsghdr *nlh, int *len) { return NLMSG_NEXT(nlh, *len); }
static inline void *ftcp_nlmsg_data(struct nlmsghdr *nlh) { return NLMSG_DATA(nlh); }
static inline int ftcp_nlmsg_error_code(struct nlmsghdr *nlh) {
    return ((struct nlmsgerr *)NLMSG_DATA(nlh))->error;
}

/* setns(2) is declared by <sched.h> only under _GNU_SOURCE; declare it here for Swift. */
int setns(int fd, int nstype);
/** Moves the calling thread into the network namespace `fd` refers to (CLONE_NEWNET). */
static inline int ftcp_setns_net(int fd) { return setns(fd, 0x40000000 /* CLONE_NEWNET */); }
#endif
