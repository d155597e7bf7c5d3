/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/* Port bring-up.  See port.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <rte_ethdev.h>

#include "port.h"

static int
fail(char *err, size_t errlen, uint16_t port, const char *what, int rc)
{
	char name[RTE_ETH_NAME_MAX_LEN] = "?";

	rte_eth_dev_get_name_by_port(port, name);
	snprintf(err, errlen, "port %u (%s): %s: %s", port, name, what, strerror(-rc));
	return rc;
}

int
amil_port_start(uint16_t port_id, const struct amil_port_conf *pc, struct amil_net_cfg *net,
		uint16_t *nb_txq, char *err, size_t errlen)
{
	struct rte_eth_conf conf;
	struct rte_eth_dev_info info;
	struct rte_eth_rxconf rxconf;
	struct rte_eth_txconf txconf;
	uint16_t rxd = pc->rx_desc, txd = pc->tx_desc, q, ntx;
	bool soft_mac = false;
	int socket = rte_eth_dev_socket_id(port_id);
	int rc;

	rc = rte_eth_dev_info_get(port_id, &info);
	if (rc != 0)
		return fail(err, errlen, port_id, "device info", rc);
	if (info.max_rx_queues < 1 || info.max_tx_queues < 1)
		return fail(err, errlen, port_id, "device has no RX or TX queue", -ENOTSUP);

	memset(&conf, 0, sizeof(conf));
	/* Checksums: verify on RX and compute on TX in hardware when offered;
	 * the fast path falls back to software per port otherwise. */
	conf.rxmode.offloads = info.rx_offload_capa &
			       (RTE_ETH_RX_OFFLOAD_IPV4_CKSUM | RTE_ETH_RX_OFFLOAD_UDP_CKSUM);
	conf.txmode.offloads = info.tx_offload_capa &
			       (RTE_ETH_TX_OFFLOAD_IPV4_CKSUM | RTE_ETH_TX_OFFLOAD_UDP_CKSUM |
				RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE);
	ntx = pc->nb_txq_wanted < info.max_tx_queues ? pc->nb_txq_wanted : info.max_tx_queues;
	if (ntx < 1)
		ntx = 1;

	rc = rte_eth_dev_configure(port_id, 1, ntx, &conf);
	if (rc != 0)
		return fail(err, errlen, port_id, "configure", rc);
	rc = rte_eth_dev_adjust_nb_rx_tx_desc(port_id, &rxd, &txd);
	if (rc != 0)
		return fail(err, errlen, port_id, "descriptor counts", rc);
	if (pc->mac != NULL) {
		rc = rte_eth_dev_default_mac_addr_set(port_id, (struct rte_ether_addr *)pc->mac);
		/* Drivers that cannot change their address (net_pcap on files,
		 * some vdevs) still work: the fast path matches the configured
		 * MAC in software and the port listens promiscuously. */
		if (rc == -ENOTSUP)
			soft_mac = true;
		else if (rc != 0)
			return fail(err, errlen, port_id, "set MAC address", rc);
	}

	rxconf = info.default_rxconf;
	rxconf.offloads = conf.rxmode.offloads;
	rc = rte_eth_rx_queue_setup(port_id, 0, rxd, socket < 0 ? SOCKET_ID_ANY : (unsigned)socket,
				    &rxconf, pc->mp);
	if (rc != 0)
		return fail(err, errlen, port_id, "RX queue setup", rc);
	txconf = info.default_txconf;
	txconf.offloads = conf.txmode.offloads;
	for (q = 0; q < ntx; q++) {
		rc = rte_eth_tx_queue_setup(port_id, q, txd,
					    socket < 0 ? SOCKET_ID_ANY : (unsigned)socket, &txconf);
		if (rc != 0)
			return fail(err, errlen, port_id, "TX queue setup", rc);
	}
	rc = rte_eth_dev_start(port_id);
	if (rc != 0)
		return fail(err, errlen, port_id, "start", rc);
	if (pc->want_ip6)
		(void)rte_eth_allmulticast_enable(port_id); /* NS to solicited-node groups */

	if (soft_mac) {
		(void)rte_eth_promiscuous_enable(port_id);
		rte_ether_addr_copy(pc->mac, &net->mac);
	} else {
		rc = rte_eth_macaddr_get(port_id, &net->mac);
		if (rc != 0)
			return fail(err, errlen, port_id, "read MAC address", rc);
	}
	net->tx_ip_csum_offload = !!(conf.txmode.offloads & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM);
	net->tx_udp_csum_offload = !!(conf.txmode.offloads & RTE_ETH_TX_OFFLOAD_UDP_CKSUM);
	*nb_txq = ntx;
	return 0;
}

void
amil_port_close(uint16_t port_id)
{
	if (!rte_eth_dev_is_valid_port(port_id))
		return;
	(void)rte_eth_dev_stop(port_id);
	(void)rte_eth_dev_close(port_id);
}
