/*
 * What the engine (src/net) needs of packet.c beyond the public
 * include/ringport/packet.h. Not exported (hidden visibility).
 */
#ifndef RP_PROTO_PACKET_INTERNAL_H
#define RP_PROTO_PACKET_INTERNAL_H

#include <ringport/packet.h>

/*
 * Appends one whole wire frame (header: u16 'len', u16 'type'; then
 * 'len' payload bytes) to the payload of 'pkt', so a packet sent as its
 * payload alone carries several frames back to back (the server's
 * rp_server_send_frame batch). Returns 0, or -ENOBUFS (nothing written,
 * the packet flagged) when it does not fit. Thread: the single holder.
 */
int rp__packet_put_frame(struct rp_packet *pkt, uint16_t type,
                         const void *payload, uint16_t len);

#endif
