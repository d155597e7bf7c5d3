/* SPDX-License-Identifier: LicenseRef-Amil-Proprietary */
/*
 * DNS discovery poller; contract and semantics in dns_disc.h, reasoning in
 * docs/discovery.md.  Organised as: answer parser, configuration
 * (name, nameservers), the union table, queries, run().
 *
 * Why our own non-blocking query loop rather than res_nquery() in a
 * thread: res_nquery blocks for timeout x attempts x nameservers, so it
 * needs a thread, a pipe and a lock around the union; a handful of queries
 * every few seconds is simpler as a state machine on one socket the daemon
 * already polls.  libresolv is still used for the hard part, parsing
 * (ns_initparse/ns_parserr/dn_expand: name compression, bounds).
 *
 * Spoofing: answers must come from a configured nameserver, carry the
 * random id of a query in flight and echo its question.  The socket keeps
 * one ephemeral source port for its life (the fd must stay stable for the
 * daemon's poll set), which is weaker than per-query ports; a forged
 * answer can only propose a candidate endpoint, which must still pass
 * CURVE, and can never remove one.
 *
 * The union is a linear table: a cluster is a handful to a few hundred
 * endpoints, touched a few times per poll interval.
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ctype.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dns_disc.h"

#define RECV_BUDGET     64      /* datagrams read per run() */
#define RECV_BUF        4096    /* > the 1232-byte EDNS payload we advertise */
#define EDNS_PAYLOAD    1232    /* the DNS flag day 2020 recommendation */
#define QUERY_MAX_LEN   (12 + 255 + 4 + 11)
/* T_A, T_AAAA, T_SRV, T_OPT (1, 28, 33, 41) come from <arpa/nameser.h>. */

/* ------------------------------------------------------------------ */
/* Answer parser                                                       */

/* Copy a presentation-form name from libresolv, lower case, without the
 * trailing dot; "." (root) becomes "".  false when it does not fit. */
static bool
copy_name(char *dst, const char *src)
{
	size_t n = strlen(src);

	if (n == 1 && src[0] == '.')
		n = 0;
	else if (n > 0 && src[n - 1] == '.')
		n--;
	if (n > AMIL_DNS_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		dst[i] = (char)tolower((unsigned char)src[i]);
	dst[n] = '\0';
	return true;
}

/* One record from the answer or additional section: keep it, skip it, or
 * reject the whole message when its rdata contradicts its type. */
static int
take_rr(const uint8_t *msg, const uint8_t *eom, const ns_rr *rr, uint8_t section,
	struct amil_dns_answer *out)
{
	uint16_t type = ns_rr_type(*rr), rdlen = ns_rr_rdlen(*rr);
	const uint8_t *rd = ns_rr_rdata(*rr);
	struct amil_dns_rr *o;
	char tmp[NS_MAXDNAME];
	int n;

	if (type == T_A && rdlen != 4)
		return -EBADMSG;
	if (type == T_AAAA && rdlen != 16)
		return -EBADMSG;
	if (type == T_SRV && rdlen < 7)
		return -EBADMSG;
	if ((type != T_A && type != T_AAAA && type != T_SRV) || ns_rr_class(*rr) != ns_c_in ||
	    out->n_rr == AMIL_DNS_ANSWER_MAX) {
		out->n_skipped++;
		return 0;
	}
	o = &out->rr[out->n_rr];
	memset(o, 0, offsetof(struct amil_dns_rr, owner));
	o->type = type;
	o->section = section;
	if (!copy_name(o->owner, ns_rr_name(*rr))) {
		out->n_skipped++;
		return 0;
	}
	o->target[0] = '\0';
	if (type == T_SRV) {
		o->priority = ns_get16(rd);
		o->weight = ns_get16(rd + 2);
		o->port = ns_get16(rd + 4);
		/* The target must end exactly where the rdata ends (RFC 2782
		 * forbids compression here, but servers compress anyway and
		 * dn_expand handles both). */
		n = dn_expand(msg, eom, rd + 6, tmp, sizeof(tmp));
		if (n < 0 || n != rdlen - 6)
			return -EBADMSG;
		if (!copy_name(o->target, tmp)) {
			out->n_skipped++;
			return 0;
		}
	} else {
		memcpy(o->addr, rd, rdlen);
	}
	out->n_rr++;
	return 0;
}

int
amil_dns_parse_answer(const uint8_t *buf, size_t len, struct amil_dns_answer *out)
{
	static const ns_sect sections[] = {ns_s_an, ns_s_ar};
	static const uint8_t section_no[] = {1, 3};
	ns_msg h;
	ns_rr rr;

	if (buf == NULL || len < NS_HFIXEDSZ || len > NS_MAXMSG)
		return -EBADMSG;
	if (ns_initparse(buf, (int)len, &h) < 0)
		return -EBADMSG;
	if (!ns_msg_getflag(h, ns_f_qr) || ns_msg_getflag(h, ns_f_opcode) != ns_o_query ||
	    ns_msg_count(h, ns_s_qd) != 1)
		return -EBADMSG;
	if (ns_parserr(&h, ns_s_qd, 0, &rr) < 0 || !copy_name(out->qname, ns_rr_name(rr)))
		return -EBADMSG;
	out->id = ns_msg_id(h);
	out->rcode = (uint8_t)ns_msg_getflag(h, ns_f_rcode);
	out->truncated = ns_msg_getflag(h, ns_f_tc) != 0;
	out->qtype = ns_rr_type(rr);
	out->n_rr = 0;
	out->n_skipped = 0;
	for (size_t s = 0; s < sizeof(sections) / sizeof(sections[0]); s++) {
		int count = ns_msg_count(h, sections[s]);

		for (int i = 0; i < count; i++) {
			int rc;

			if (ns_parserr(&h, sections[s], i, &rr) < 0)
				return -EBADMSG;
			rc = take_rr(buf, buf + len, &rr, section_no[s], out);
			if (rc != 0)
				return rc;
		}
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* State                                                               */

struct server {
	struct sockaddr_storage sa;  /* native family (AF_INET or AF_INET6) */
	socklen_t len;
};

struct query {
	bool used;
	uint16_t id;
	uint16_t qtype;
	uint16_t port;               /* endpoint port for its address records */
	uint8_t tries;               /* attempts sent */
	uint8_t first_server;        /* attempts rotate from here */
	uint64_t deadline_ns;        /* current attempt's timeout */
	char qname[AMIL_DNS_NAME_MAX + 1];
};

struct slot {
	bool used;
	struct amil_dns_disc_entry e;
};

struct amil_dns_disc {
	int fd;
	int fd_family;
	char name[AMIL_DNS_NAME_MAX + 1];  /* lower case, no trailing dot */
	unsigned kinds;
	uint16_t port;
	uint64_t interval_ns;
	uint64_t timeout_ns;
	unsigned attempts;
	struct server servers[AMIL_DNS_SERVERS_MAX];
	unsigned n_servers;
	unsigned server_rr;                /* round-robin start for new queries */
	struct query q[AMIL_DNS_QUERIES_MAX];
	unsigned n_active;
	uint64_t next_round_ns;
	struct slot *tab;
	uint32_t max;
	uint32_t count;
	int added;                         /* additions in the current run() */
	amil_dns_disc_add_fn on_add;
	void *ctx;
	struct amil_dns_disc_counters c;
	struct amil_dns_answer ans;        /* scratch */
	uint8_t buf[RECV_BUF];
};

/* ------------------------------------------------------------------ */
/* Configuration                                                       */

/* Encode @name as a QNAME; returns its length or -EINVAL. */
static int
encode_name(uint8_t *p, size_t cap, const char *name)
{
	size_t n = strlen(name), pos = 0, start = 0;

	if (n > 0 && name[n - 1] == '.')
		n--;
	if (n == 0 || n > AMIL_DNS_NAME_MAX || n + 2 > cap)
		return -EINVAL;
	while (start <= n) {
		const char *dot = memchr(name + start, '.', n - start);
		size_t l = (dot ? (size_t)(dot - name) : n) - start;

		if (l == 0 || l > 63)
			return -EINVAL;
		p[pos++] = (uint8_t)l;
		memcpy(p + pos, name + start, l);
		pos += l;
		start += l + 1;
	}
	p[pos++] = 0;
	return (int)pos;
}

static int
parse_server(const char *text, struct server *out)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *port_s = NULL, *colon = strchr(text, ':');
	unsigned long port = 53;
	size_t hl;

	if (text[0] == '[') {
		const char *end = strchr(text, ']');

		if (end == NULL || (end[1] != '\0' && end[1] != ':'))
			return -EINVAL;
		hl = (size_t)(end - text - 1);
		text++;
		port_s = end[1] == ':' ? end + 2 : NULL;
	} else if (colon != NULL && strchr(colon + 1, ':') == NULL) {
		hl = (size_t)(colon - text);   /* a.b.c.d:port */
		port_s = colon + 1;
	} else {
		hl = strlen(text);             /* a.b.c.d or a bare IPv6 */
	}
	if (hl == 0 || hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, text, hl);
	host[hl] = '\0';
	if (port_s != NULL) {
		char *end;

		errno = 0;
		port = strtoul(port_s, &end, 10);
		if (errno != 0 || *port_s == '\0' || *end != '\0' || port == 0 || port > 65535)
			return -EINVAL;
	}
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)&out->sa)->sin_addr) == 1) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&out->sa;

		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		out->len = sizeof(*s4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)&out->sa)->sin6_addr) == 1) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&out->sa;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		out->len = sizeof(*s6);
		return 0;
	}
	return -EINVAL;
}

/* The "nameserver" lines of resolv.conf, as glibc reads them (first
 * AMIL_DNS_SERVERS_MAX); a link-local IPv6 with a %scope is skipped. */
static int
read_resolv_conf(struct amil_dns_disc *d, const char *path)
{
	char line[512];
	FILE *f = fopen(path, "re");

	if (f == NULL)
		return -ENOENT;
	while (d->n_servers < AMIL_DNS_SERVERS_MAX && fgets(line, sizeof(line), f) != NULL) {
		char *save = NULL, *kw = strtok_r(line, " \t\r\n", &save), *addr;

		if (kw == NULL || strcmp(kw, "nameserver") != 0)
			continue;
		addr = strtok_r(NULL, " \t\r\n", &save);
		if (addr == NULL || strchr(addr, '%') != NULL)
			continue;
		if (parse_server(addr, &d->servers[d->n_servers]) == 0)
			d->n_servers++;
	}
	fclose(f);
	return d->n_servers > 0 ? 0 : -ENOENT;
}

/* A dual-stack socket reaches IPv4 and IPv6 nameservers through one fd;
 * plain IPv4 when the kernel has no IPv6. */
static int
open_socket(struct amil_dns_disc *d)
{
	int off = 0;

	d->fd = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (d->fd >= 0 &&
	    setsockopt(d->fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off)) == 0) {
		d->fd_family = AF_INET6;
		return 0;
	}
	if (d->fd >= 0)
		close(d->fd);
	d->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (d->fd < 0)
		return -errno;
	d->fd_family = AF_INET;
	return 0;
}

struct amil_dns_disc *
amil_dns_disc_new(const struct amil_dns_disc_config *cfg, uint64_t now_ns)
{
	struct amil_dns_disc *d;
	uint8_t qn[256];
	int rc;

	if (cfg->name == NULL || encode_name(qn, sizeof(qn), cfg->name) < 0 ||
	    cfg->kinds == 0 || (cfg->kinds & ~(AMIL_DNS_A | AMIL_DNS_AAAA | AMIL_DNS_SRV)) ||
	    ((cfg->kinds & (AMIL_DNS_A | AMIL_DNS_AAAA)) && cfg->port == 0) || cfg->attempts > 8) {
		errno = EINVAL;
		return NULL;
	}
	d = calloc(1, sizeof(*d));
	if (d == NULL) {
		rc = -ENOMEM;
		goto fail_alloc;
	}
	copy_name(d->name, cfg->name);
	d->kinds = cfg->kinds;
	d->port = cfg->port;
	d->interval_ns = cfg->interval_ns ? cfg->interval_ns : 10ull * 1000000000ull;
	d->timeout_ns = cfg->timeout_ns ? cfg->timeout_ns : 1000000000ull;
	d->attempts = cfg->attempts ? cfg->attempts : 2;
	d->max = cfg->max_endpoints ? cfg->max_endpoints : 256;
	d->on_add = cfg->on_add;
	d->ctx = cfg->ctx;
	d->next_round_ns = now_ns;
	if (cfg->nameserver != NULL) {
		rc = parse_server(cfg->nameserver, &d->servers[0]);
		if (rc != 0)
			goto fail_config;
		d->n_servers = 1;
	} else {
		rc = read_resolv_conf(d, cfg->resolv_conf ? cfg->resolv_conf : "/etc/resolv.conf");
		if (rc != 0)
			goto fail_config;
	}
	d->tab = calloc(d->max, sizeof(*d->tab));
	if (d->tab == NULL) {
		rc = -ENOMEM;
		goto fail_config;
	}
	rc = open_socket(d);
	if (rc != 0)
		goto fail_socket;
	return d;

fail_socket:
	free(d->tab);
fail_config:
	free(d);
fail_alloc:
	errno = -rc;
	return NULL;
}

void
amil_dns_disc_destroy(struct amil_dns_disc **dp)
{
	if (dp == NULL || *dp == NULL)
		return;
	close((*dp)->fd);
	free((*dp)->tab);
	free(*dp);
	*dp = NULL;
}

int
amil_dns_disc_fd(const struct amil_dns_disc *d)
{
	return d->fd;
}

/* ------------------------------------------------------------------ */
/* Union                                                               */

static bool
same_ep(const struct amil_disc_endpoint *a, const struct amil_disc_endpoint *b)
{
	return a->family == b->family && a->port == b->port && memcmp(a->addr, b->addr, 16) == 0;
}

static struct slot *
find_ep(const struct amil_dns_disc *d, const struct amil_disc_endpoint *ep)
{
	for (uint32_t i = 0; i < d->max; i++)
		if (d->tab[i].used && same_ep(&d->tab[i].e.ep, ep))
			return &d->tab[i];
	return NULL;
}

static void
see_endpoint(struct amil_dns_disc *d, uint64_t now_ns, uint16_t rr_type, const uint8_t *addr,
	     uint16_t port)
{
	struct amil_disc_endpoint ep = {.port = port};
	struct slot *s;

	if (port == 0)
		return;
	ep.family = rr_type == T_A ? AF_INET : AF_INET6;
	memcpy(ep.addr, addr, rr_type == T_A ? 4 : 16);
	d->c.records++;
	s = find_ep(d, &ep);
	if (s != NULL) {
		s->e.last_seen_ns = now_ns;
		return;
	}
	for (uint32_t i = 0; i < d->max; i++) {
		if (d->tab[i].used)
			continue;
		s = &d->tab[i];
		s->used = true;
		s->e.ep = ep;
		s->e.first_seen_ns = now_ns;
		s->e.last_seen_ns = now_ns;
		d->count++;
		d->added++;
		d->c.endpoints_added++;
		if (d->on_add != NULL)
			d->on_add(d->ctx, &ep);
		return;
	}
	/* Full: keep what we have rather than evict a possibly live peer. */
	d->c.table_full++;
}

/* ------------------------------------------------------------------ */
/* Queries                                                             */

static int
build_query(uint8_t *p, uint16_t id, const char *name, uint16_t qtype)
{
	int n;

	memset(p, 0, 12);
	ns_put16(id, p);
	p[2] = 0x01;                 /* RD: the nameserver is a recursor */
	ns_put16(1, p + 4);          /* QDCOUNT */
	ns_put16(1, p + 10);         /* ARCOUNT: the OPT record */
	n = encode_name(p + 12, 256, name);
	if (n < 0)
		return n;
	p += 12 + n;
	ns_put16(qtype, p);
	ns_put16(ns_c_in, p + 2);
	/* EDNS0 OPT: root name, type 41, class = UDP payload size, TTL 0. */
	p[4] = 0;
	ns_put16(T_OPT, p + 5);
	ns_put16(EDNS_PAYLOAD, p + 7);
	memset(p + 9, 0, 6);
	return 12 + n + 4 + 11;
}

static uint16_t
fresh_id(const struct amil_dns_disc *d)
{
	for (;;) {
		uint16_t id;
		bool clash = false;

		/* getrandom() on a small request never blocks once the pool
		 * is initialised, which it is long before the daemon runs. */
		if (getrandom(&id, sizeof(id), 0) != (ssize_t)sizeof(id))
			id = (uint16_t)random();
		for (unsigned i = 0; i < AMIL_DNS_QUERIES_MAX; i++)
			clash |= d->q[i].used && d->q[i].id == id;
		if (!clash)
			return id;
	}
}

static void
send_attempt(struct amil_dns_disc *d, struct query *q, uint64_t now_ns)
{
	const struct server *sv = &d->servers[(q->first_server + q->tries) % d->n_servers];
	struct sockaddr_storage to;
	socklen_t to_len = sv->len;
	uint8_t pkt[QUERY_MAX_LEN];
	int n;

	/* A new id per attempt: a late answer to the previous one is then
	 * "mismatched" instead of being taken for this one. */
	q->id = fresh_id(d);
	if (q->tries > 0)
		d->c.retries++;
	q->tries++;
	q->deadline_ns = now_ns + d->timeout_ns;
	memcpy(&to, &sv->sa, sizeof(to));
	if (d->fd_family == AF_INET6 && sv->sa.ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)&sv->sa;
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&to;

		memset(s6, 0, sizeof(*s6));
		s6->sin6_family = AF_INET6;
		s6->sin6_port = s4->sin_port;
		s6->sin6_addr.s6_addr[10] = 0xff;
		s6->sin6_addr.s6_addr[11] = 0xff;
		memcpy(&s6->sin6_addr.s6_addr[12], &s4->sin_addr, 4);
		to_len = sizeof(*s6);
	} else if (d->fd_family == AF_INET && sv->sa.ss_family == AF_INET6) {
		d->c.send_errors++;      /* no IPv6 here: times out, next server */
		return;
	}
	n = build_query(pkt, q->id, q->qname, q->qtype);
	if (n < 0 || sendto(d->fd, pkt, (size_t)n, MSG_DONTWAIT, (struct sockaddr *)&to,
			    to_len) != n) {
		d->c.send_errors++;      /* the attempt times out like a lost one */
		return;
	}
	d->c.queries++;
}

static void
add_query(struct amil_dns_disc *d, const char *qname, uint16_t qtype, uint16_t port,
	  uint64_t now_ns)
{
	struct query *q = NULL;

	for (unsigned i = 0; i < AMIL_DNS_QUERIES_MAX; i++) {
		if (d->q[i].used) {
			if (d->q[i].qtype == qtype && d->q[i].port == port &&
			    strcmp(d->q[i].qname, qname) == 0)
				return;      /* same SRV target twice: asked already */
		} else if (q == NULL) {
			q = &d->q[i];
		}
	}
	if (q == NULL) {
		d->c.followups_dropped++;
		return;
	}
	memset(q, 0, sizeof(*q));
	q->used = true;
	q->qtype = qtype;
	q->port = port;
	q->first_server = (uint8_t)(d->server_rr++ % d->n_servers);
	snprintf(q->qname, sizeof(q->qname), "%s", qname);
	d->n_active++;
	send_attempt(d, q, now_ns);
}

static void
end_query(struct amil_dns_disc *d, struct query *q, bool ok)
{
	if (!ok)
		d->c.failed++;
	q->used = false;
	d->n_active--;
}

/* Retry on another nameserver if attempts remain, else give up. */
static void
retry_or_fail(struct amil_dns_disc *d, struct query *q, uint64_t now_ns)
{
	if (q->tries < d->attempts)
		send_attempt(d, q, now_ns);
	else
		end_query(d, q, false);
}

static void
use_srv(struct amil_dns_disc *d, const struct amil_dns_rr *srv, uint64_t now_ns)
{
	const struct amil_dns_answer *a = &d->ans;
	bool glue = false;

	if (srv->target[0] == '\0' || srv->port == 0)
		return;              /* "." : the service is decidedly not there */
	for (unsigned i = 0; i < a->n_rr; i++) {
		const struct amil_dns_rr *r = &a->rr[i];

		if ((r->type == T_A || r->type == T_AAAA) && strcmp(r->owner, srv->target) == 0) {
			see_endpoint(d, now_ns, r->type, r->addr, srv->port);
			glue = true;
		}
	}
	if (!glue) {
		add_query(d, srv->target, T_A, srv->port, now_ns);
		add_query(d, srv->target, T_AAAA, srv->port, now_ns);
	}
}

/* Family, port and address of a socket address, a v4-mapped IPv6 one
 * (dual-stack socket) as IPv4.  Copied out with memcpy: reading one
 * sockaddr type through another breaks strict aliasing (GCC -O2 reordered
 * such a read before the writes it depended on). */
struct sa_key {
	int family;
	uint16_t port;                 /* network order */
	uint8_t addr[16];
};

static void
sa_key_of(const struct sockaddr_storage *ss, struct sa_key *k)
{
	sa_family_t fam;

	memset(k, 0, sizeof(*k));
	memcpy(&fam, (const uint8_t *)ss + offsetof(struct sockaddr_storage, ss_family),
	       sizeof(fam));
	if (fam == AF_INET) {
		struct sockaddr_in a;

		memcpy(&a, ss, sizeof(a));
		k->family = AF_INET;
		k->port = a.sin_port;
		memcpy(k->addr, &a.sin_addr, 4);
	} else if (fam == AF_INET6) {
		struct sockaddr_in6 a;

		memcpy(&a, ss, sizeof(a));
		if (IN6_IS_ADDR_V4MAPPED(&a.sin6_addr)) {
			k->family = AF_INET;
			memcpy(k->addr, &a.sin6_addr.s6_addr[12], 4);
		} else {
			k->family = AF_INET6;
			memcpy(k->addr, &a.sin6_addr, 16);
		}
		k->port = a.sin6_port;
	}
}

static bool
from_server(const struct amil_dns_disc *d, const struct sockaddr_storage *from)
{
	struct sa_key f, s;

	sa_key_of(from, &f);
	if (f.family == 0)
		return false;
	for (unsigned i = 0; i < d->n_servers; i++) {
		sa_key_of(&d->servers[i].sa, &s);
		if (s.family == f.family && s.port == f.port &&
		    memcmp(s.addr, f.addr, f.family == AF_INET ? 4 : 16) == 0)
			return true;
	}
	return false;
}

static void
handle_datagram(struct amil_dns_disc *d, size_t len, const struct sockaddr_storage *from,
		uint64_t now_ns)
{
	struct amil_dns_answer *a = &d->ans;
	struct query *q = NULL;

	if (len > sizeof(d->buf) || amil_dns_parse_answer(d->buf, len, a) != 0) {
		d->c.malformed++;
		return;
	}
	if (from_server(d, from)) {
		for (unsigned i = 0; i < AMIL_DNS_QUERIES_MAX; i++) {
			struct query *c = &d->q[i];

			if (c->used && c->id == a->id && c->qtype == a->qtype &&
			    strcmp(c->qname, a->qname) == 0) {
				q = c;
				break;
			}
		}
	}
	if (q == NULL) {
		d->c.mismatched++;
		return;
	}
	d->c.answers++;
	if (a->truncated)
		d->c.truncated++;
	switch (a->rcode) {
	case ns_r_noerror:
		break;
	case ns_r_nxdomain:
		/* Authoritative "no such name": no point asking another server
		 * now; the next round asks again. */
		d->c.nxdomain++;
		end_query(d, q, false);
		return;
	case ns_r_servfail:
		d->c.servfail++;
		retry_or_fail(d, q, now_ns);
		return;
	default:
		d->c.other_rcode++;
		retry_or_fail(d, q, now_ns);
		return;
	}

	/* Copy what use_srv() may need before add_query() reuses the slot. */
	{
		uint16_t qtype = q->qtype, port = q->port;

		end_query(d, q, true);
		for (unsigned i = 0; i < a->n_rr; i++) {
			const struct amil_dns_rr *r = &a->rr[i];

			if (r->section != 1 || r->type != qtype)
				continue;
			if (qtype == T_SRV) {
				d->c.records++;
				use_srv(d, r, now_ns);
			} else {
				see_endpoint(d, now_ns, r->type, r->addr, port);
			}
		}
	}
}

static void
start_round(struct amil_dns_disc *d, uint64_t now_ns)
{
	d->c.rounds++;
	d->next_round_ns = now_ns + d->interval_ns;
	if (d->kinds & AMIL_DNS_A)
		add_query(d, d->name, T_A, d->port, now_ns);
	if (d->kinds & AMIL_DNS_AAAA)
		add_query(d, d->name, T_AAAA, d->port, now_ns);
	if (d->kinds & AMIL_DNS_SRV)
		add_query(d, d->name, T_SRV, 0, now_ns);
}

int
amil_dns_disc_run(struct amil_dns_disc *d, uint64_t now_ns)
{
	d->added = 0;
	for (unsigned budget = RECV_BUDGET; budget > 0; budget--) {
		struct sockaddr_storage from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(d->fd, d->buf, sizeof(d->buf), MSG_DONTWAIT | MSG_TRUNC,
				     (struct sockaddr *)&from, &fl);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			/* ECONNREFUSED: ICMP port unreachable from a server;
			 * that attempt simply times out. */
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNREFUSED)
				d->c.recv_errors++;
			if (errno == ECONNREFUSED)
				continue;
			break;
		}
		handle_datagram(d, (size_t)n, &from, now_ns);
	}
	for (unsigned i = 0; i < AMIL_DNS_QUERIES_MAX; i++) {
		struct query *q = &d->q[i];

		if (q->used && now_ns >= q->deadline_ns) {
			d->c.timeouts++;
			retry_or_fail(d, q, now_ns);
		}
	}
	if (d->n_active == 0 && now_ns >= d->next_round_ns)
		start_round(d, now_ns);
	return d->added;
}

uint64_t
amil_dns_disc_next_deadline_ns(const struct amil_dns_disc *d)
{
	uint64_t t = UINT64_MAX;

	if (d->n_active == 0)
		return d->next_round_ns;
	for (unsigned i = 0; i < AMIL_DNS_QUERIES_MAX; i++)
		if (d->q[i].used && d->q[i].deadline_ns < t)
			t = d->q[i].deadline_ns;
	return t;
}

bool
amil_dns_disc_busy(const struct amil_dns_disc *d)
{
	return d->n_active > 0;
}

unsigned
amil_dns_disc_foreach(const struct amil_dns_disc *d,
		      int (*fn)(void *ctx, const struct amil_dns_disc_entry *e), void *ctx)
{
	unsigned n = 0;

	for (uint32_t i = 0; i < d->max; i++) {
		if (!d->tab[i].used)
			continue;
		n++;
		if (fn(ctx, &d->tab[i].e) != 0)
			break;
	}
	return n;
}

int
amil_dns_disc_lookup(const struct amil_dns_disc *d, const struct amil_disc_endpoint *ep,
		     struct amil_dns_disc_entry *out)
{
	const struct slot *s = find_ep(d, ep);

	if (s == NULL)
		return -ENOENT;
	*out = s->e;
	return 0;
}

int
amil_dns_disc_forget(struct amil_dns_disc *d, const struct amil_disc_endpoint *ep)
{
	struct slot *s = find_ep(d, ep);

	if (s == NULL)
		return -ENOENT;
	s->used = false;
	d->count--;
	return 0;
}

unsigned
amil_dns_disc_count(const struct amil_dns_disc *d)
{
	return d->count;
}

void
amil_dns_disc_get_counters(const struct amil_dns_disc *d, struct amil_dns_disc_counters *out)
{
	*out = d->c;
}
