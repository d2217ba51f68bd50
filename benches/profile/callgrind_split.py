#!/usr/bin/env python3
"""Per-keystroke and per-setup instruction counts of podgate from callgrind-relay.sh's dumps.

    callgrind_split.py DIR SESSIONS KEYSTROKES CHURN_SESSIONS

Dump 1 (cg.out.*.1) holds SESSIONS setups plus KEYSTROKES echo round trips; dump 2
(cg.out.*.2) CHURN_SESSIONS setups. Self cost per function is read from the raw files
(callgrind_annotate 3.19 misreports Rust symbols here), dump 2 scaled to SESSIONS is
subtracted from dump 1, and the rest is divided by KEYSTROKES: instructions per keystroke
round trip (one frame each way), by crate and by function.
"""
import collections
import glob
import re
import sys


def self_cost(path):
    """Self (exclusive) Ir per function, and the object each function is in."""
    names, objects = {}, {}
    cost, obj_of = collections.Counter(), {}
    fn, ob, skip = None, None, False
    for line in open(path, errors="replace"):
        if line.startswith(("ob=", "cob=")):
            m = re.match(r"c?ob=\((\d+)\)(?: (.*))?", line.rstrip("\n"))
            if m and m.group(2):
                objects[m.group(1)] = m.group(2)
            if m and line.startswith("ob="):
                ob = objects.get(m.group(1))
        elif line.startswith(("fn=", "cfn=")):
            m = re.match(r"c?fn=\((\d+)\)(?: (.*))?", line.rstrip("\n"))
            if m and m.group(2):
                names[m.group(1)] = m.group(2)
            if m and line.startswith("fn="):
                fn = names.get(m.group(1))
                obj_of[fn] = ob
        elif line.startswith("calls="):
            skip = True  # the next cost line is the call's inclusive cost
        elif line[:1] in "0123456789+-*":
            if skip:
                skip = False
                continue
            parts = line.split()
            if len(parts) >= 2 and fn is not None and parts[1].isdigit():
                cost[fn] += int(parts[1])
    return cost, obj_of


def group(sym, ob):
    ob = ob or ""
    if "libc" in ob or "ld-linux" in ob:
        if re.search(r"malloc|free|_int_|realloc|tcache|calloc", sym):
            return "libc malloc/free"
        return "libc memcpy/memmove" if "mem" in sym else "libc other"
    s = sym.lstrip("<")
    crypto = ("ring_core", "ring::", "x25519", "nistz", "fiat", "fe_", "table_select", "ge_")
    if any(c in s for c in crypto):
        return "ring (crypto)"
    return s.split("::")[0].split(" as ")[0]


def main():
    d, sessions, keys, churn_n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    inter, ob1 = self_cost(glob.glob(f"{d}/cg.out.*.1")[0])
    churn, ob2 = self_cost(glob.glob(f"{d}/cg.out.*.2")[0])
    scale = sessions / churn_n
    per = {k: inter.get(k, 0) - scale * churn.get(k, 0) for k in set(inter) | set(churn)}
    total = sum(per.values())
    print(f"session setup: {sum(churn.values()) / churn_n:,.0f} instructions")
    print(f"keystroke round trip: {total / keys:,.0f} instructions ({keys} keystrokes)")
    groups = collections.Counter()
    for k, c in per.items():
        groups[group(k, ob1.get(k) or ob2.get(k))] += c
    for k, c in groups.most_common(10):
        print(f"  {c / keys:8,.0f}  {100 * c / total:5.1f}%  {k}")
    print("  functions (self):")
    for k, c in sorted(per.items(), key=lambda x: -x[1])[:16]:
        print(f"  {c / keys:8,.0f}  {100 * c / total:5.1f}%  {k[:100]}")


if __name__ == "__main__":
    main()
