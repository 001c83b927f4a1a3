#!/usr/bin/python3
"""The boot working set of nbdboot's boot-storm benchmark: the NBD requests
one real boot of the demo station makes, in order.

    bench-working-set.py convert LOG IMAGE_SIZE [HEADER_LINE...] > Tests/bench/boot-working-set.txt
    bench-working-set.py summary FILE

`convert` reads the log of nbdkit's log filter (`nbdkit --filter=log file
IMAGE logfile=LOG`, nbdkit-log-filter(1)); each request is one line like

    2026-11-21 06:14:58.884187 connection=1 Read id=1 offset=0x2000 count=0x1000 ...

(the "...Read id=1 return=0" lines are the replies and are skipped). It
writes the working-set file format, which `load()` reads back:

    # comment lines (what was recorded, how to rebuild the image)
    image-size BYTES
    OP OFFSET LENGTH        one request per line, decimal bytes, in the order sent

OP is R (read), W (write), F (flush; offset and length 0), T (trim), Z
(write zeroes), C (cache). Requests are written in the order nbdkit logged
them across all connections of the boot, each as it was sent. Only when
there are more than MAX_LINES of them are consecutive requests of the same
op that continue each other exactly (offset == previous end) merged, up to
MERGE_LIMIT bytes each, which keeps the file to a few thousand lines
without changing which bytes are touched.
"""
import re
import sys

OPS = {"Read": "R", "Write": "W", "Flush": "F", "Trim": "T", "Zero": "Z", "Cache": "C"}
MERGE_LIMIT = 1 << 20
MAX_LINES = 4000
REQUEST = re.compile(
    r"connection=(\d+) (Read|Write|Flush|Trim|Zero|Cache) id=\d+(?: offset=(0x[0-9a-fA-F]+) count=(0x[0-9a-fA-F]+))?")


class WorkingSetError(Exception):
    pass


def parse_log(lines):
    """(op, offset, length) of every request line of an nbdkit log filter log."""
    out = []
    for line in lines:
        if " ..." not in line or "return=" in line:
            continue
        m = REQUEST.search(line)
        if not m:
            continue
        op = OPS[m.group(2)]
        off = int(m.group(3), 16) if m.group(3) else 0
        cnt = int(m.group(4), 16) if m.group(4) else 0
        out.append((op, off, cnt))
    return out


def merge(requests, limit=MERGE_LIMIT):
    """Merges each request into the previous one when it has the same op
    (R, W, T, Z, C) and starts where that one ended, up to `limit` bytes."""
    out = []
    for op, off, cnt in requests:
        if out and op != "F":
            pop, poff, pcnt = out[-1]
            if pop == op and poff + pcnt == off and pcnt + cnt <= limit:
                out[-1] = (op, poff, pcnt + cnt)
                continue
        out.append((op, off, cnt))
    return out


def load(path):
    """Reads a working-set file: returns (image_size, [(op, offset, length)]).
    Raises WorkingSetError naming the file and line on anything malformed."""
    size = None
    reqs = []
    try:
        f = open(path)
    except OSError as e:
        raise WorkingSetError(f"{path}: cannot read the working set ({e.strerror}); "
                              "regenerate it with scripts/bench-record-boot.sh")
    with f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split()
            if parts[0] == "image-size" and len(parts) == 2 and parts[1].isdigit():
                size = int(parts[1])
                continue
            if len(parts) != 3 or parts[0] not in OPS.values() or not parts[1].isdigit() or not parts[2].isdigit():
                raise WorkingSetError(f"{path}:{n}: '{line}' is not 'OP OFFSET LENGTH' "
                                      "(OP one of R W F T Z C, decimal bytes)")
            op, off, cnt = parts[0], int(parts[1]), int(parts[2])
            if size is not None and off + cnt > size:
                raise WorkingSetError(f"{path}:{n}: {op} {off}+{cnt} ends past image-size {size}")
            reqs.append((op, off, cnt))
    if size is None:
        raise WorkingSetError(f"{path}: no 'image-size BYTES' line")
    if not reqs:
        raise WorkingSetError(f"{path}: no requests")
    return size, reqs


def summary(reqs):
    by = {}
    for op, _, cnt in reqs:
        n, b = by.get(op, (0, 0))
        by[op] = (n + 1, b + cnt)
    read_set = set()
    for op, off, cnt in reqs:
        if op == "R":
            read_set.update(range(off // 4096, (off + cnt + 4095) // 4096))
    parts = [f"{op}: {n} requests, {b / 1048576:.2f} MiB" for op, (n, b) in sorted(by.items())]
    parts.append(f"distinct 4 KiB blocks read: {len(read_set)} ({len(read_set) * 4096 / 1048576:.2f} MiB)")
    return "; ".join(parts)


def main(argv):
    if len(argv) >= 3 and argv[0] == "convert":
        log, size = argv[1], argv[2]
        if not size.isdigit():
            raise WorkingSetError(f"IMAGE_SIZE '{size}' is not a number of bytes")
        with open(log) as f:
            raw = parse_log(f)
        if not raw:
            raise WorkingSetError(f"{log}: no request lines of nbdkit's log filter "
                                  "(was nbdkit started with --filter=log ... logfile=LOG?)")
        reqs = raw if len(raw) <= MAX_LINES else merge(raw)
        for h in argv[3:]:
            print(f"# {h}")
        merged = f", merged into {len(reqs)} lines (contiguous same-op runs)" if len(reqs) != len(raw) else ", one line each"
        print(f"# {len(raw)} requests as logged{merged}")
        print(f"# {summary(reqs)}")
        print("# columns: OP OFFSET LENGTH (OP: R read, W write, F flush, T trim, Z write zeroes, C cache; bytes)")
        print(f"image-size {int(size)}")
        for op, off, cnt in reqs:
            print(f"{op} {off} {cnt}")
        return 0
    if len(argv) == 2 and argv[0] == "summary":
        size, reqs = load(argv[1])
        print(f"{argv[1]}: image {size} bytes, {len(reqs)} requests; {summary(reqs)}")
        return 0
    print(__doc__.split("\n\n")[1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except WorkingSetError as e:
        print(f"bench-working-set.py: {e}", file=sys.stderr)
        sys.exit(1)
