#!/usr/bin/env python3
"""Scales a generated Strava bulk export (tests/strava_export/generate.py) up to N activities
without generating each one: activity files are copied round-robin, still compressed (their
bytes are never re-deflated, so a 500 MB archive takes seconds), under new names, and
activities.csv gets one row per copy (the source's rows, with the new file name and id).
Everything else is copied once. For bench/import.py: the importer reads every copy as a new
activity.

    scale_export.py SRC.zip OUT.zip --activities N
"""
import argparse
import csv
import io
import struct
import zipfile
import zlib


def raw_entry(src, info):
    """An entry's compressed bytes, as stored."""
    src.fp.seek(info.header_offset)
    head = src.fp.read(30)
    name_len, extra_len = struct.unpack("<HH", head[26:30])
    src.fp.seek(info.header_offset + 30 + name_len + extra_len)
    return src.fp.read(info.compress_size)


class RawZip:
    """A ZIP writer that takes entries already compressed (no zip64: under 4 GiB)."""

    def __init__(self, f):
        self.f, self.central, self.count = f, [], 0

    def add(self, name, method, crc, data, size):
        name = name.encode()
        offset = self.f.tell()
        dos_time, dos_date = 0x6000, (2024 - 1980) << 9 | 6 << 5 | 1
        self.f.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, dos_time, dos_date, crc,
                                 len(data), size, len(name), 0) + name + data)
        self.central.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, dos_time,
                                        dos_date, crc, len(data), size, len(name), 0, 0, 0, 0,
                                        0o644 << 16, offset) + name)
        self.count += 1

    def add_deflated(self, name, body):
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        data = c.compress(body) + c.flush()
        self.add(name, 8, zlib.crc32(body), data, len(body))

    def close(self):
        start = self.f.tell()
        for c in self.central:
            self.f.write(c)
        size = self.f.tell() - start
        self.f.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, self.count, self.count, size, start, 0))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src")
    ap.add_argument("out")
    ap.add_argument("--activities", type=int, required=True)
    a = ap.parse_args()
    src = zipfile.ZipFile(a.src)
    rows = list(csv.reader(io.StringIO(src.read("activities.csv").decode())))
    header, body = rows[0], [r for r in rows[1:]]
    col_file, col_id = header.index("Filename"), header.index("Activity ID")
    with_file = [r for r in body if r[col_file]]
    files = {i.filename: i for i in src.infolist()}
    out_rows = [header]
    with open(a.out, "wb") as f:
        z = RawZip(f)
        for info in src.infolist():
            if info.filename == "activities.csv" or info.filename in {r[col_file] for r in with_file}:
                continue
            z.add(info.filename, info.compress_type, info.CRC, raw_entry(src, info), info.file_size)
        for k in range(a.activities):
            row = list(with_file[k % len(with_file)])
            info = files[row[col_file]]
            ext = row[col_file].split(".", 1)[1]
            name = f"activities/{20_000_000_000 + k}.{ext}"
            row[col_file], row[col_id] = name, str(20_000_000_000 + k)
            out_rows.append(row)
            z.add(name, info.compress_type, info.CRC, raw_entry(src, info), info.file_size)
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(out_rows)
        z.add_deflated("activities.csv", buf.getvalue().encode())
        z.close()


if __name__ == "__main__":
    main()
