/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * Port bring-up: one RX queue (polled by the I/O lcore) and up to one TX
 * queue per transmitting lcore, checksum offloads where the device has
 * them, and the struct amil_net_cfg that tells the fast path what this
 * port answers to.  Works the same for PCI NICs and the virtual devices
 * (net_pcap, net_memif, net_af_packet, net_tap, net_null, net_ring).
 * Control path only.
 */
#ifndef AMIL_PORT_H
#define AMIL_PORT_H

#include <stddef.h>
#include <stdint.h>

#include <rte_ether.h>
#include <rte_mempool.h>

#include "net.h"

#ifdef __cplusplus
extern "C" {
#endif

struct amil_port_conf {
	uint16_t nb_txq_wanted;        /* 1 + number of lcores that transmit directly */
	uint16_t rx_desc;
	uint16_t tx_desc;
	struct rte_mempool *mp;        /* RX pool, on the port's socket */
	const struct rte_ether_addr *mac; /* set this MAC first, or NULL; when the
					   * driver cannot, it is matched in software */
	bool want_ip6;                 /* enable all-multicast for NS */
};

/**
 * Configure and start @port_id.  Fills in the MAC and offload flags of
 * @net (the addresses are the caller's).
 * @param nb_txq   out: TX queues configured (<= wanted; >= 1).
 * @param err      receives "port N (name): what failed: strerror".
 * @return 0 or a negative errno.
 */
int amil_port_start(uint16_t port_id, const struct amil_port_conf *pc, struct amil_net_cfg *net,
		    uint16_t *nb_txq, char *err, size_t errlen);

/** Stop and close a port; flushes what the driver buffers (pcap files).
 *  Ignores ports that were never started. */
void amil_port_close(uint16_t port_id);

#ifdef __cplusplus
}
#endif
#endif /* AMIL_PORT_H */
