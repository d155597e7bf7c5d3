#!/usr/bin/env python3
"""Sum Google Test results over meson build dirs: prints 'N passed, N failed'.

Counts every gtest case from the XML files meson's gtest protocol writes
(<builddir>/<test>.xml).  A meson test that failed without a failing case in
its XML (crash, sanitizer report at exit, time-out, no XML) counts as one
failure, so nothing that failed can hide.  Exit status 1 when anything failed
or when no test ran at all.
"""
import json
import os
import sys
import xml.etree.ElementTree as ET


def main(dirs):
    passed = failed = 0
    for d in dirs:
        log = os.path.join(d, "meson-logs", "testlog.json")
        if not os.path.exists(log):
            print(f"test-summary: {d}: no test log (build failed?)")
            failed += 1
            continue
        with open(log) as f:
            for line in f:
                t = json.loads(line)
                name, ok = t["name"], t["result"] in ("OK", "EXPECTEDFAIL")
                # "amil:unit / unit_wire" -> unit_wire.xml
                xml = os.path.join(d, name.split(" / ")[-1] + ".xml")
                p = fl = 0
                if os.path.exists(xml):
                    try:
                        root = ET.parse(xml).getroot()
                        for tc in root.iter("testcase"):
                            if tc.get("result") == "skipped" or tc.get("status") == "notrun":
                                continue
                            if tc.find("failure") is not None or tc.find("error") is not None:
                                fl += 1
                            else:
                                p += 1
                    except ET.ParseError:
                        pass
                if not ok and fl == 0:
                    fl = 1
                    print(f"test-summary: {d}: {name}: {t['result']} (no failing case recorded)")
                if p + fl == 0:
                    p = 1 if ok else 0
                passed += p
                failed += fl
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
