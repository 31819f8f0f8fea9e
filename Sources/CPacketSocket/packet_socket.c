// Packet-socket plumbing the Swift side cannot reach through Glibc's module: recvmmsg (a GNU
// extension), control messages (CMSG_* are macros) and the layouts of <linux/if_packet.h>.
#define _GNU_SOURCE
#include "packet_socket.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int ftcp_packet_socket_open(int interface_index, const void *instructions, unsigned count, int buffer_bytes,
                            int promiscuous, const char **failed_step) {
    // Protocol 0: the socket receives nothing until it is bound with a protocol below.
    int descriptor = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (descriptor < 0) {
        *failed_step = "socket(AF_PACKET, SOCK_RAW)";
        return -1;
    }
    int on = 1;
    if (setsockopt(descriptor, SOL_PACKET, PACKET_AUXDATA, &on, sizeof on) != 0) {
        *failed_step = "setsockopt(PACKET_AUXDATA)";
        goto fail;
    }
    // SO_RCVBUFFORCE passes rmem_max with CAP_NET_ADMIN; without it, take what SO_RCVBUF gives.
    if (setsockopt(descriptor, SOL_SOCKET, SO_RCVBUFFORCE, &buffer_bytes, sizeof buffer_bytes) != 0 &&
        setsockopt(descriptor, SOL_SOCKET, SO_RCVBUF, &buffer_bytes, sizeof buffer_bytes) != 0) {
        *failed_step = "setsockopt(SO_RCVBUF)";
        goto fail;
    }
    struct sock_fprog program = {.len = (unsigned short)count, .filter = (struct sock_filter *)instructions};
    if (setsockopt(descriptor, SOL_SOCKET, SO_ATTACH_FILTER, &program, sizeof program) != 0) {
        *failed_step = "setsockopt(SO_ATTACH_FILTER)";
        goto fail;
    }
    if (promiscuous) {
        struct packet_mreq membership = {.mr_ifindex = interface_index, .mr_type = PACKET_MR_PROMISC};
        if (setsockopt(descriptor, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &membership, sizeof membership) != 0) {
            *failed_step = "setsockopt(PACKET_ADD_MEMBERSHIP, PACKET_MR_PROMISC)";
            goto fail;
        }
    }
    struct sockaddr_ll link = {
        .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL), .sll_ifindex = interface_index};
    if (bind(descriptor, (struct sockaddr *)&link, sizeof link) != 0) {
        *failed_step = "bind(AF_PACKET)";
        goto fail;
    }
    return descriptor;
fail:;
    int saved = errno;
    close(descriptor);
    errno = saved;
    return -1;
}

enum { batch_limit = 64 };

int ftcp_packet_socket_receive(int descriptor, uint8_t *buffers, size_t buffer_size, unsigned count,
                               struct ftcp_frame_info *info) {
    if (count > batch_limit) count = batch_limit;
    struct mmsghdr messages[batch_limit];
    struct iovec vectors[batch_limit];
    struct sockaddr_ll sources[batch_limit];
    union {
        struct cmsghdr align;
        char bytes[CMSG_SPACE(sizeof(struct tpacket_auxdata))];
    } controls[batch_limit];
    memset(messages, 0, sizeof(struct mmsghdr) * count);
    for (unsigned index = 0; index < count; index++) {
        vectors[index].iov_base = buffers + index * buffer_size;
        vectors[index].iov_len = buffer_size;
        messages[index].msg_hdr.msg_iov = &vectors[index];
        messages[index].msg_hdr.msg_iovlen = 1;
        messages[index].msg_hdr.msg_name = &sources[index];
        messages[index].msg_hdr.msg_namelen = sizeof sources[index];
        messages[index].msg_hdr.msg_control = controls[index].bytes;
        messages[index].msg_hdr.msg_controllen = sizeof controls[index].bytes;
    }
    // MSG_TRUNC: the length returned is the frame's, even when it did not fit.
    int received = recvmmsg(descriptor, messages, count, MSG_DONTWAIT | MSG_TRUNC, NULL);
    if (received < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
        return -1;
    }
    for (int index = 0; index < received; index++) {
        struct msghdr *header = &messages[index].msg_hdr;
        uint32_t length = messages[index].msg_len;
        info[index].length = length;
        info[index].stored = length < buffer_size ? length : (uint32_t)buffer_size;
        info[index].truncated = (header->msg_flags & MSG_TRUNC) != 0 || length > buffer_size;
        info[index].packet_type = sources[index].sll_pkttype;
        info[index].status = 0;
        for (struct cmsghdr *control = CMSG_FIRSTHDR(header); control != NULL; control = CMSG_NXTHDR(header, control)) {
            if (control->cmsg_level == SOL_PACKET && control->cmsg_type == PACKET_AUXDATA &&
                control->cmsg_len >= CMSG_LEN(sizeof(struct tpacket_auxdata))) {
                struct tpacket_auxdata auxiliary;
                memcpy(&auxiliary, CMSG_DATA(control), sizeof auxiliary);
                info[index].status = auxiliary.tp_status;
                // The frame's length before the filter cut it to the length the program returns.
                if (auxiliary.tp_len > info[index].length) {
                    info[index].length = auxiliary.tp_len;
                    info[index].truncated = 1;
                }
            }
        }
    }
    return received;
}

int ftcp_packet_socket_statistics(int descriptor, uint64_t *received, uint64_t *dropped) {
    struct tpacket_stats statistics;
    socklen_t length = sizeof statistics;
    if (getsockopt(descriptor, SOL_PACKET, PACKET_STATISTICS, &statistics, &length) != 0) return -1;
    *received = statistics.tp_packets;
    *dropped = statistics.tp_drops;
    return 0;
}
