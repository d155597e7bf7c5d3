#!/usr/bin/env python3
"""Query a running amil-dataplane through DPDK telemetry (no DPDK needed).

  dp-telemetry.py --prefix P [CMD ...]          print each command's JSON reply
  dp-telemetry.py --prefix P --wait-rx N        wait until N frames were received
                                                and TX went quiet; print progress

Used by the demo and the benchmark scripts.  Exit status 1 on time-out or when
the socket never appears.
"""
import argparse
import json
import os
import socket
import sys
import time


def connect(prefix, timeout):
    path = f"/var/run/dpdk/{prefix}/dpdk_telemetry.v2"
    deadline = time.monotonic() + timeout
    while True:
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            s.connect(path)
            info = json.loads(s.recv(16384).decode())
            return s, info
        except OSError:
            if time.monotonic() > deadline:
                sys.exit(f"dp-telemetry: no telemetry socket at {path}")
            time.sleep(0.1)


def query(s, cmd, bufsize):
    try:
        s.send(cmd.encode())
        reply = json.loads(s.recv(bufsize).decode())
    except (OSError, ValueError) as e:
        sys.exit(f"dp-telemetry: the data plane went away ({e})")
    return reply.get(cmd.split(",")[0])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prefix", required=True, help="the data plane's EAL --file-prefix")
    ap.add_argument("--wait-rx", type=int, help="wait until port_rx reaches N")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds (default 120)")
    ap.add_argument("--quiet-ms", type=int, default=300, help="TX idle time that means done")
    ap.add_argument("--sample", type=float, metavar="S",
                    help="measure rx/tx frame rates over S seconds, print them as JSON")
    ap.add_argument("commands", nargs="*", help="e.g. /amil/stats /amil/port,0 /amil/totals")
    a = ap.parse_args()

    s, info = connect(a.prefix, min(a.timeout, 30.0))
    bufsize = info.get("max_output_len", 16384)
    for cmd in a.commands:
        print(json.dumps({cmd: query(s, cmd, bufsize)}, indent=1))
    if a.sample is not None:
        st = None
        while st is None:                # wait for the data plane to start
            st = query(s, "/amil/stats", bufsize)
            time.sleep(0.05)
        t0 = time.monotonic()
        st0 = query(s, "/amil/stats", bufsize)
        time.sleep(a.sample)
        st1 = query(s, "/amil/stats", bufsize)
        dt = time.monotonic() - t0
        print(json.dumps({"seconds": round(dt, 3),
                          "rx_pps": round((st1["port_rx"] - st0["port_rx"]) / dt),
                          "tx_pps": round((st1["port_tx"] - st0["port_tx"]) / dt),
                          "accepted": st1["accepted"], "duplicate": st1["duplicate"],
                          "rejected": st1["rejected"]}))
        return 0
    if a.wait_rx is None:
        return 0
    deadline = time.monotonic() + a.timeout
    last_tx, quiet_since, last_print = -1, None, 0.0
    while time.monotonic() < deadline:
        st = query(s, "/amil/stats", bufsize)
        if st is None:          # EAL is up but the data plane not yet started
            time.sleep(0.05)
            continue
        rx, tx = st["port_rx"], st["port_tx"]
        now = time.monotonic()
        if now - last_print >= 1.0 and sys.stderr.isatty():
            print(f"\r  received {rx}/{a.wait_rx} frames, sent {tx}", end="", file=sys.stderr)
            last_print = now
        if rx >= a.wait_rx:
            if tx != last_tx:
                last_tx, quiet_since = tx, now
            elif (now - quiet_since) * 1000 >= a.quiet_ms:
                if sys.stderr.isatty():
                    print("", file=sys.stderr)
                return 0
        time.sleep(0.05)
    print(f"dp-telemetry: timed out after {a.timeout}s waiting for {a.wait_rx} frames", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
