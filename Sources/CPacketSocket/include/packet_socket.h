#ifndef FTCP_PACKET_SOCKET_H
#define FTCP_PACKET_SOCKET_H

#include <stddef.h>
#include <stdint.h>

/// What the kernel said about one frame a packet socket received.
struct ftcp_frame_info {
    /// Bytes of the frame, as it was on the link (more than were stored when truncated).
    uint32_t length;
    /// Bytes stored in the frame's buffer.
    uint32_t stored;
    /// `tp_status` of the frame's PACKET_AUXDATA (TP_STATUS_CSUMNOTREADY, TP_STATUS_CSUM_VALID, ...),
    /// or 0 when the kernel sent none.
    uint32_t status;
    /// `sll_pkttype`: PACKET_HOST, PACKET_OTHERHOST, PACKET_OUTGOING, ...
    uint8_t packet_type;
    /// Non-zero when the frame was longer than its buffer.
    uint8_t truncated;
};

/// The bits of `ftcp_frame_info.status` the capture reads.
enum {
    FTCP_STATUS_CHECKSUM_NOT_READY = 1 << 3, /* TP_STATUS_CSUMNOTREADY */
    FTCP_STATUS_CHECKSUM_VALID = 1 << 7,     /* TP_STATUS_CSUM_VALID */
    FTCP_PACKET_OUTGOING = 4,                /* PACKET_OUTGOING */
};

/// Opens a raw packet socket on interface `interface_index` that delivers every frame the BPF
/// program (`instructions`, `count` classic BPF instructions laid out as `struct sock_filter`)
/// accepts, with PACKET_AUXDATA, a receive buffer of `buffer_bytes`, nonblocking and
/// close-on-exec, in promiscuous mode if asked. The filter is attached before the socket is bound,
/// so no unfiltered frame is ever queued. Returns the descriptor, or -1 with errno set and
/// `*failed_step` naming the call that failed.
int ftcp_packet_socket_open(int interface_index, const void *instructions, unsigned count, int buffer_bytes,
                            int promiscuous, const char **failed_step);

/// Receives up to `count` waiting frames without blocking into `count` buffers of `buffer_size`
/// bytes laid end to end at `buffers`, describing each in `info`. Returns how many were received
/// (0 when none was waiting), or -1 with errno set.
int ftcp_packet_socket_receive(int descriptor, uint8_t *buffers, size_t buffer_size, unsigned count,
                               struct ftcp_frame_info *info);

/// The kernel's counters since the last call (PACKET_STATISTICS resets them): frames it passed
/// the filter and frames it dropped for lack of buffer. Returns 0, or -1 with errno set.
int ftcp_packet_socket_statistics(int descriptor, uint64_t *received, uint64_t *dropped);

#endif
