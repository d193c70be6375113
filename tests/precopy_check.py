#!/usr/bin/env python3
"""What the pre-copy tests (tests/e2e/42-49) ask of images and processes.

    precopy_check.py round SHOW_JSON OUTFILE STEP PARENT_STEP [--full]
        SHOW_JSON is `ferry show --json DIR` of a round taken after step STEP of
        the dirty workload whose OUTFILE is given; PARENT_STEP is the step after
        which its parent round was taken, or "none" for a round without parent.
        Replays OUTFILE up to STEP and checks every page of A and of the regions
        made in steps: a page written since the parent round (or every page, for
        a round without parent, or with --full) is a present run; an unwritten
        present page is a hole (in_parent); an unmapped or MADV_DONTNEED'd page
        has no run at all. Exit 1 naming the pages that differ.

    precopy_check.py stat SHOW_JSON FIELD
        Prints images["inventory.img"]["stats"][FIELD] (exit 1 if missing).

    precopy_check.py field SHOW_JSON FIELD
        Prints images["inventory.img"][FIELD] (exit 1 if missing).

    precopy_check.py keepers PID
        Prints the pids of the live (not zombie) ferry-keeper processes that
        track PID: named ferry-keeper, and started for `-t PID`, or holding the
        tracking socket of PID.
"""

import json
import os
import re
import sys

PAGE = os.sysconf("SC_PAGE_SIZE")

PRESENT, IN_PARENT, LAZY, ZERO = 1, 2, 4, 8


def die(msg):
    print(msg)
    sys.exit(1)


def load_show(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        die(f"cannot read {path}: {e}")


def inventory(show):
    inv = show.get("images", {}).get("inventory.img")
    if not isinstance(inv, dict):
        die("no inventory.img in ferry show --json")
    return inv


def page_flags(show):
    """vaddr -> flags of every page in every pagemap image of the round."""
    pages = {}
    found = False
    for name, img in show.get("images", {}).items():
        if not name.startswith("pagemap-"):
            continue
        found = True
        for run in img.get("runs", []):
            for i in range(run["nr_pages"]):
                pages[run["vaddr"] + i * PAGE] = run["flags"]
    if not found:
        die("no pagemap image in ferry show --json")
    return pages


def describe(flags):
    if flags is None:
        return "absent"
    if flags & IN_PARENT:
        return "in_parent"
    if flags & PRESENT:
        return "present"
    if flags & ZERO:
        return "zero"
    return f"flags={flags}"


class Model:
    """The dirty workload's memory after some step, from its OUTFILE."""

    def __init__(self, outfile, upto):
        self.a_addr = None
        self.a_pages = 0
        self.state = []  # per page of A: "data", "zero" or "gone"
        self.written = []  # per page of A: the step that last wrote it
        self.regions = []  # (name, addr, pages, step made)
        self.steps = 0
        with open(outfile) as f:
            lines = f.read().splitlines()
        for line in lines:
            m = re.match(r"# A 0x([0-9a-f]+) (\d+)$", line)
            if m:
                self.a_addr, self.a_pages = int(m[1], 16), int(m[2])
                self.state = ["data"] * self.a_pages
                self.written = [0] * self.a_pages
                continue
            m = re.match(r"# step (\d+) (\w+) ?(.*)$", line)
            if not m or int(m[1]) > upto:
                continue
            self.apply(int(m[1]), m[2], m[3])
        if self.a_addr is None:
            die(f"{outfile} has no '# A' line")
        if self.steps < upto:
            die(f"{outfile} shows step {self.steps} done, not step {upto}")

    def apply(self, k, what, rest):
        if what == "done":
            self.steps = k
        elif what == "written":
            for idx in filter(None, rest.split(",")):
                self.state[int(idx)] = "data"
                self.written[int(idx)] = k
        elif what in ("unmapped", "zeroed"):
            first, last = map(int, rest.split("-"))
            for i in range(first, last + 1):
                self.state[i] = "gone" if what == "unmapped" else "zero"
                self.written[i] = k
        elif what == "moved":
            m = re.match(r"(\d+)-(\d+) to 0x([0-9a-f]+)$", rest)
            first, last = int(m[1]), int(m[2])
            for i in range(first, last + 1):
                self.state[i] = "gone"
            self.regions.append((f"moved@{k}", int(m[3], 16), last - first + 1, k))
        elif what == "new":
            m = re.match(r"0x([0-9a-f]+) (\d+)$", rest)
            self.regions.append((f"new@{k}", int(m[1], 16), int(m[2]), k))


def ranges(items):
    """[(index, text)] -> "first-last text" for runs of consecutive indexes with one text."""
    out = []
    for idx, text in items:
        if out and out[-1][1] == idx - 1 and out[-1][2] == text:
            out[-1][1] = idx
        else:
            out.append([idx, idx, text])
    return [f"{a}-{b} {t}" if a != b else f"{a} {t}" for a, b, t in out]


def check_round(show_path, outfile, step, parent, full):
    show = load_show(show_path)
    pages = page_flags(show)
    model = Model(outfile, step)
    parent = None if parent == "none" else int(parent)
    whole = parent is None or full

    def want_data(made):
        return "present" if whole or made > parent else "in_parent"

    bad = []
    for i in range(model.a_pages):
        got = describe(pages.get(model.a_addr + i * PAGE))
        st = model.state[i]
        want = want_data(model.written[i]) if st == "data" else "absent"
        if got != want:
            what = {"data": f"written at step {model.written[i]}", "zero": "MADV_DONTNEED'd",
                    "gone": "unmapped"}[st]
            bad.append((i, f"({what}): expected {want}, image has {got}"))
    report = [f"A page {r}" for r in ranges(bad)]
    for name, addr, n, made in model.regions:
        bad = []
        for i in range(n):
            got = describe(pages.get(addr + i * PAGE))
            want = want_data(made)
            if got != want:
                bad.append((i, f"expected {want}, image has {got}"))
        report += [f"region {name} {addr:#x} page {r}" for r in ranges(bad)]
    if report:
        more = f" (+{len(report) - 8} more)" if len(report) > 8 else ""
        die(f"round after step {step} (parent after {parent}): " + "; ".join(report[:8]) + more)


def inventory_value(show_path, field, stats):
    inv = inventory(load_show(show_path))
    src = inv.get("stats", {}) if stats else inv
    if field not in src:
        die(f"no {field} in inventory.img{' stats' if stats else ''}")
    print(src[field])


def socket_inodes_of(pid):
    """Inodes of the unix sockets bound to ferry's tracking address for pid."""
    inodes = set()
    try:
        with open("/proc/net/unix") as f:
            next(f)
            for line in f:
                cols = line.split()
                if len(cols) >= 8 and re.match(rf"@ferry-track-{pid}-\d+$", cols[7]):
                    inodes.add(cols[6])
    except OSError:
        pass
    return inodes


def is_live_keeper(kpid):
    try:
        with open(f"/proc/{kpid}/comm") as f:
            if f.read().strip() != "ferry-keeper":
                return False
        with open(f"/proc/{kpid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def tracks(kpid, pid, inodes):
    try:
        with open(f"/proc/{kpid}/cmdline", "rb") as f:
            args = f.read().split(b"\0")
    except OSError:
        return False
    target = str(pid).encode()
    for i, a in enumerate(args[:-1]):
        if a in (b"-t", b"--tree") and args[i + 1] == target:
            return True
        if a == b"--tree=" + target:
            return True
    try:
        for fd in os.listdir(f"/proc/{kpid}/fd"):
            link = os.readlink(f"/proc/{kpid}/fd/{fd}")
            m = re.match(r"socket:\[(\d+)\]$", link)
            if m and m[1] in inodes:
                return True
    except OSError:
        pass
    return False


def keepers(pid):
    inodes = socket_inodes_of(pid)
    for d in os.listdir("/proc"):
        if d.isdigit() and is_live_keeper(d) and tracks(d, pid, inodes):
            print(d)


def main(argv):
    if len(argv) >= 5 and argv[0] == "round":
        full = "--full" in argv[5:]
        check_round(argv[1], argv[2], int(argv[3]), argv[4], full)
    elif len(argv) == 3 and argv[0] in ("stat", "field"):
        inventory_value(argv[1], argv[2], argv[0] == "stat")
    elif len(argv) == 2 and argv[0] == "keepers":
        keepers(int(argv[1]))
    else:
        print(__doc__.strip(), file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main(sys.argv[1:])
