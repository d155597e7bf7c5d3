#!/bin/sh
# Amil first boot: give this appliance its identity, once, and say so on the
# console.  Run by amil-firstboot.service (installed as
# /usr/libexec/amil/amil-firstboot) when the CURVE key or the identity file
# is missing; never overwrites either.
#   amil-firstboot            create what is missing, then print the status
#   amil-firstboot --status   only print the status (public key, node id, setup)
# Exit: 0 done, 1 a step failed (named on stderr), 2 bad argument.
#
# Identity: /var/lib/amil/keys/curve.{key,pub} (amil-controlplane keygen, owned
# by amil, 0600 secret) and AMIL_NODE_ID in /etc/amil/identity, read by both
# daemons' units.  The node id is random in 1..2^32-1 (the data plane's
# range); an operator who numbers appliances by hand edits that file before
# the appliance joins a cluster.
set -eu

ETC=${AMIL_ETC:-/etc/amil}
KEYS=${AMIL_KEYS:-/var/lib/amil/keys}
IDENTITY=$ETC/identity
USER_NAME=${AMIL_USER:-amil}
PROG=amil-firstboot

say() { printf '%s: %s\n' "$PROG" "$*"; }
fail() { printf '%s: %s\n' "$PROG" "$*" >&2; exit 1; }

node_id() {   # the AMIL_NODE_ID of the identity file, or nothing
	[ -r "$IDENTITY" ] || return 0
	sed -n 's/^[[:space:]]*AMIL_NODE_ID[[:space:]]*=[[:space:]]*"\{0,1\}\([0-9]*\)"\{0,1\}[[:space:]]*$/\1/p' \
		"$IDENTITY" | tail -n 1
}

make_keys() {
	if [ -e "$KEYS/curve.key" ]; then
		[ -e "$KEYS/curve.pub" ] || fail "$KEYS/curve.key exists but curve.pub does not: restore it from a backup" \
			"(a new pair would need a new allow-list entry on every appliance)"
		return 0
	fi
	install -d -m 0700 -o "$USER_NAME" -g "$USER_NAME" "$KEYS" ||
		fail "cannot create $KEYS (does the user $USER_NAME exist? reinstall the amil package)"
	# As the service user, so the files are its own and 0600 from the start.
	setpriv --reuid="$USER_NAME" --regid="$USER_NAME" --init-groups \
		amil-controlplane keygen --keys "$KEYS" >/dev/null ||
		fail "amil-controlplane keygen --keys $KEYS failed"
	say "created the CURVE key pair in $KEYS"
}

make_identity() {
	id=$(node_id)
	[ -z "$id" ] || [ "$id" -eq 0 ] 2>/dev/null || return 0
	[ ! -e "$IDENTITY" ] || fail "$IDENTITY has no AMIL_NODE_ID=N line (1..4294967295): fix or remove it"
	id=0
	while [ "$id" -eq 0 ]; do
		id=$(od -An -N4 -tu4 /dev/urandom | tr -d ' \n')
	done
	tmp=$IDENTITY.tmp.$$
	{
		echo "# This appliance's identity, written by $PROG on $(date -u +%Y-%m-%dT%H:%M:%SZ)."
		echo "# Read by amil-dataplane.service and amil-controlplane.service (--node-id)."
		echo "# The node id must be unique in the cluster and match the allow-list entry"
		echo "# of this appliance's public key ($KEYS/curve.pub) on every appliance."
		echo "AMIL_NODE_ID=$id"
	} >"$tmp" && chmod 0644 "$tmp" && mv "$tmp" "$IDENTITY" || { rm -f "$tmp"; fail "cannot write $IDENTITY"; }
	say "picked node id $id ($IDENTITY)"
}

# One line per fact, each starting "amil-firstboot:", so a console log or a
# boot test can grep for them.
status() {
	id=$(node_id)
	pub=$(cat "$KEYS/curve.pub" 2>/dev/null || true)
	say "node id ${id:-none (no $IDENTITY)}"
	say "public key ${pub:-none (no $KEYS/curve.pub)}"
	if [ -n "$id" ] && [ -n "$pub" ]; then
		say "allow-list line for every appliance of the cluster: $pub $id node-$id"
	fi
	ip=$(sed -n 's/^ip:[[:space:]]*\([0-9.]*\).*/\1/p' "$ETC/dataplane.yaml" 2>/dev/null | head -n 1)
	case "$ip" in
	198.18.0.1) note=" (the packaged placeholder: set ip: in $ETC/dataplane.yaml)" ;;
	*) note="" ;;
	esac
	centers=$(grep -cEv '^[[:space:]]*(#|$)' "$ETC/centers" 2>/dev/null || true)
	ports=$(grep -cEv '^[[:space:]]*(#|$)' "$ETC/ports" 2>/dev/null || true)
	pages=$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages 2>/dev/null || echo 0)
	if [ -n "$(ls -A /sys/kernel/iommu_groups 2>/dev/null)" ]; then iommu=on; else iommu="off (uio_pci_generic)"; fi
	say "data plane ip ${ip:-none}$note, centers ${centers:-0}, ports listed ${ports:-0}, hugepages $pages x 2 MiB, IOMMU $iommu"
	[ "${centers:-0}" -gt 0 ] || say "add centers to $ETC/centers, then: systemctl restart amil-dataplane"
}

case "${1:-}" in
"") ;;
--status) status; exit 0 ;;
-h | --help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
*) printf '%s: unknown argument %s (see --help)\n' "$PROG" "$1" >&2; exit 2 ;;
esac

[ "$(id -u)" -eq 0 ] || fail "must run as root (it creates $KEYS for user $USER_NAME and writes $IDENTITY)"
make_keys
make_identity
status
